"""The base skill itself: the tool families over one workspace, and how a call is answered."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.config.schema import BASE_SKILL_NAME
from runtime.schema.messages import TextPart
from runtime.skills.base.entries import EntryTools
from runtime.skills.base.exec import ExecTool
from runtime.skills.base.files import FileTools
from runtime.skills.base.health import HealthCheck
from runtime.skills.base.todo import TodoList
from runtime.skills.base.tool import (
    ShapedFailure,
    ToolFailure,
    dumps,
    failure,
    os_message,
    schema,
    validate,
)
from runtime.skills.base.workspace import Workspace
from runtime.skills.confine import Denied
from runtime.skills.types import SkillKind, ToolDefinition, ToolOutcome

if TYPE_CHECKING:
    from runtime.sandbox import Sandbox

__all__ = ["BaseSkill"]


class BaseSkill:
    """Perstack's base skill, in process: the 17 tools of §6.3 over one workspace.

    Args:
        workspace: The directory every path is confined to. Resolved (symlinks included) once.
        storage_dir: Where jobs and checkpoints live; denied to every tool and hidden from
            ``listDirectory``. Defaults to ``workspace/perstack``, which is denied in any case,
            as Perstack does.
        sandbox: When given (``--sandbox``), ``exec`` runs every command inside it: read-only
            root, writable workspace, no network but ``allowed_domains``.
        allowed_domains: Domains a sandboxed ``exec`` command may reach (the base skill's
            ``allowedDomains``); ignored without ``sandbox``.
        env_files: The run's env files (``envPath`` / ``--env-path``). The file tools refuse
            them, as they refuse ``.env`` and ``.env.*`` anywhere: they hold API keys.
    """

    name: str = BASE_SKILL_NAME
    kind: SkillKind = "mcp"

    def __init__(
        self,
        workspace: Path,
        *,
        storage_dir: Path | None = None,
        sandbox: Sandbox | None = None,
        allowed_domains: Sequence[str] = (),
        env_files: Sequence[Path] = (),
    ) -> None:
        self._workspace = Workspace(workspace, storage_dir=storage_dir, env_files=env_files)
        self._exec = ExecTool(self._workspace, sandbox=sandbox, allowed_domains=allowed_domains)
        families = (
            TodoList(),
            HealthCheck(self._workspace.root),
            self._exec,
            FileTools(self._workspace),
            EntryTools(self._workspace),
        )
        self._tools = {tool.name: tool for family in families for tool in family.tools()}
        self._definitions = [
            ToolDefinition(
                skill_name=self.name,
                name=tool.name,
                description=tool.description,
                input_schema=schema(tool.params),
            )
            for tool in self._tools.values()
        ]

    @property
    def workspace(self) -> Path:
        """The resolved workspace directory."""
        return Path(self._workspace.root)

    def tools(self) -> list[ToolDefinition]:
        """The 17 base tools, with Perstack's names and parameters."""
        return list(self._definitions)

    async def call(self, tool_name: str, args: dict[str, Any]) -> ToolOutcome:
        """Run one tool. Every failure comes back as an ``is_error`` outcome, never raised.

        Args:
            tool_name: One of the names :meth:`tools` lists.
            args: The tool's arguments as the model sent them; checked against its schema.

        Returns:
            One text part holding the result as compact JSON. Failures hold
            ``{"error": name, "message": text}`` (``exec``: ``{error, stdout?, stderr?}``).
        """
        tool = self._tools.get(tool_name)
        if tool is None:
            return failure("Error", f"Tool {tool_name} not found in {self.name}")
        try:
            result = tool.handler(validate(tool, args))
            if inspect.isawaitable(result):
                result = await result
        except ToolFailure as error:
            return failure(error.name, error.message)
        except Denied as denied:
            return failure("Error", denied.message)
        except ShapedFailure as error:
            return ToolOutcome(contents=[TextPart(text=dumps(error.payload))], is_error=True)
        except OSError as error:
            return failure(type(error).__name__, os_message(error))
        except Exception as error:  # a tool bug must reach the model, not end the run (§18.4)
            return failure(type(error).__name__, str(error) or repr(error))
        return ToolOutcome(contents=[TextPart(text=dumps(result))])

    async def close(self) -> None:
        """Kill commands still running from ``exec``; release the workspace descriptor."""
        self._workspace.close()
        await self._exec.close()
