"""What an MCP skill is given: its configuration table and the run it belongs to."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.config.schema import McpSseSkill, McpStdioSkill, McpStreamableHttpSkill
from runtime.schema.events import PerstackEvent

if TYPE_CHECKING:
    from runtime.sandbox import Sandbox

__all__ = ["McpSkillConfig", "SkillRuntime"]

McpSkillConfig = McpStdioSkill | McpSseSkill | McpStreamableHttpSkill


def _stderr_warning(message: str) -> None:
    print(f"perstack: warning: {message}", file=sys.stderr)


@dataclass(frozen=True)
class SkillRuntime:
    """What an MCP skill needs from whoever runs it (a job's run, or ``perstack install``).

    Attributes:
        env: The loaded environment (process env plus env files); ``requiredEnv`` and header
            ``${VAR}`` references are resolved against it.
        workspace: Working directory of stdio servers.
        publish: Receives the skill's runtime events (``skillStarting``, ``skillConnected``,
            ``skillStderr``, ``skillDisconnected``).
        job_id: Job id stamped on the events.
        run_id: Run id stamped on the events (the segment that opened the skill).
        verbose: Also echo the servers' stderr to our own stderr.
        warn: Operator diagnostics (stderr), e.g. a skill that failed at first use.
    """

    env: Mapping[str, str]
    workspace: Path
    publish: Callable[[PerstackEvent], None]
    job_id: str
    run_id: str
    verbose: bool = False
    warn: Callable[[str], None] = field(default=_stderr_warning)
    sandbox: Sandbox | None = None
    """When set, stdio servers are spawned inside it."""
