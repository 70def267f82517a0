"""What every skill provides to the loop: tool definitions and a way to call them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from runtime.schema.messages import FileInlinePart, ImageInlinePart, TextPart

SkillKind = Literal["mcp", "delegate", "interactive"]


@dataclass(frozen=True)
class ToolDefinition:
    """A tool offered by a skill."""

    skill_name: str
    name: str
    description: str
    input_schema: dict[str, Any]


ResultPart = TextPart | ImageInlinePart | FileInlinePart


@dataclass(frozen=True)
class ToolOutcome:
    """What a tool call produced. ``is_error`` results go back to the model as errors."""

    contents: list[ResultPart]
    is_error: bool = False

    @classmethod
    def error(cls, message: str) -> ToolOutcome:
        """An error result carrying ``message`` as text."""
        return cls(contents=[TextPart(text=message)], is_error=True)


class Skill(Protocol):
    """A started skill. Created and closed in the run's own task."""

    name: str
    kind: SkillKind

    def tools(self) -> list[ToolDefinition]:
        """The tools this skill offers (after pick/omit)."""
        ...

    async def call(self, tool_name: str, args: dict[str, Any]) -> ToolOutcome:
        """Call one tool. Failures the model can react to are returned, not raised."""
        ...

    async def close(self) -> None:
        """Release the skill (stop its process, close its session)."""
        ...
