"""Delegates as tools: each delegate expert is a tool taking one ``query`` (§5.7)."""

from __future__ import annotations

from typing import Any

from runtime.skills.types import SkillKind, ToolDefinition, ToolOutcome

QUERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"query": {"type": "string", "description": "The task for this expert."}},
    "required": ["query"],
}


def delegate_tool_name(expert_name: str) -> str:
    """The tool name for a delegate: the last path segment (``@org/writer`` → ``writer``)."""
    return expert_name.rsplit("/", 1)[-1].split("@", 1)[0]


class DelegateSkill:
    """One delegate expert offered as a tool. Calls are run by the loop, not by this object."""

    kind: SkillKind = "delegate"

    def __init__(self, expert_key: str, description: str | None) -> None:
        self.name = expert_key
        self._definition = ToolDefinition(
            skill_name=expert_key,
            name=delegate_tool_name(expert_key),
            description=description or f"Delegate a task to the expert {expert_key}.",
            input_schema=QUERY_SCHEMA,
        )

    def tools(self) -> list[ToolDefinition]:
        """The single delegate tool."""
        return [self._definition]

    async def call(self, tool_name: str, args: dict[str, Any]) -> ToolOutcome:
        """Never used: the loop stops the run and starts the delegate instead."""
        return ToolOutcome.error(f"Delegate {self.name!r} must be run by the loop")

    async def close(self) -> None:
        """Nothing to release."""


class InteractiveSkillTools:
    """An interactive skill: tools the user answers; calling one pauses the run."""

    kind: SkillKind = "interactive"

    def __init__(self, name: str, definitions: list[ToolDefinition]) -> None:
        self.name = name
        self._definitions = definitions

    def tools(self) -> list[ToolDefinition]:
        """The tools declared in perstack.toml."""
        return list(self._definitions)

    async def call(self, tool_name: str, args: dict[str, Any]) -> ToolOutcome:
        """Never used: the loop stops the run for the user's answer instead."""
        return ToolOutcome.error(f"Interactive tool {tool_name!r} is answered by the user")

    async def close(self) -> None:
        """Nothing to release."""
