"""Shared helpers of the MCP skill tests (tests/runtime/test_mcp_*.py): a scripted run on a
perstack.toml, a SkillRuntime without a run, the toy server of tests/mcp_servers as a skill,
and readers of the events and results they produce."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from runtime import RunSetting, parse_config, run
from runtime.config.schema import McpStdioSkill
from runtime.schema.checkpoint import Checkpoint
from runtime.schema.events import PerstackEvent, ResolveToolResults, SkillStderr
from runtime.schema.messages import TextPart
from runtime.skills.mcp import SkillRuntime
from runtime.skills.types import ToolOutcome
from runtime.testing import Reply, ScriptedModel

PY = sys.executable
TOY = str(Path(__file__).resolve().parents[1] / "mcp_servers" / "toy_server.py")


async def go(
    workspace: Path, toml: str, replies: list[Reply], *, expert: str = "agent", **overrides: Any
) -> tuple[Checkpoint, list[PerstackEvent], ScriptedModel]:
    events: list[PerstackEvent] = []
    model = ScriptedModel(replies)
    setting = RunSetting(
        expert_key=expert, query="go", workspace=workspace, retry_base_delay_ms=0, **overrides
    )
    async with asyncio.timeout(30):
        checkpoint = await run(
            setting,
            events.append,
            model=model,
            config=parse_config(toml, path=workspace / "perstack.toml"),
        )
    return checkpoint, events, model


def skill_events(events: list[PerstackEvent], skill: str) -> list[str]:
    return [e.type for e in events if getattr(e, "skill_name", None) == skill]


def results(events: list[PerstackEvent]) -> list[tuple[str, str, bool]]:
    """(tool, text, is_error) for every tool result, in order."""
    found = []
    for event in events:
        if isinstance(event, ResolveToolResults):
            for result in event.tool_results:
                text = "".join(p.text for p in result.result if isinstance(p, TextPart))
                found.append((result.tool_name, text, bool(result.is_error)))
    return found


def index_of(events: list[PerstackEvent], kind: str, skill: str | None = None) -> int:
    for position, event in enumerate(events):
        if event.type == kind and (skill is None or getattr(event, "skill_name", None) == skill):
            return position
    raise AssertionError(f"no {kind} event for {skill}")


def direct_runtime(
    workspace: Path, env: dict[str, str] | None = None, *, verbose: bool = False
) -> tuple[SkillRuntime, list[PerstackEvent]]:
    events: list[PerstackEvent] = []
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    runtime = SkillRuntime(
        env={**base_env, **(env or {})},
        workspace=workspace,
        publish=events.append,
        job_id="job",
        run_id="run",
        verbose=verbose,
    )
    return runtime, events


def toy(*extra: str, **fields: Any) -> McpStdioSkill:
    return McpStdioSkill(type="mcpStdioSkill", command=PY, args=[TOY, *extra], **fields)


def toy_table(expert: str, name: str, *lines: str) -> str:
    body = "\n".join(lines)
    return f"""
[experts."{expert}".skills."{name}"]
type = "mcpStdioSkill"
command = {json.dumps(PY)}
args = [{json.dumps(TOY)}]
{body}
"""


BASE = """
[experts."agent".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
"""


def text_of(outcome: ToolOutcome) -> str:
    return "".join(p.text for p in outcome.contents if isinstance(p, TextPart))


def stderr_messages(events: list[PerstackEvent], skill: str) -> list[str]:
    return [e.message for e in events if isinstance(e, SkillStderr) and e.skill_name == skill]
