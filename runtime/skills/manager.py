"""Start an expert's skills for one run segment and close them when it ends."""

from __future__ import annotations

import json
import re
import time
from contextlib import AsyncExitStack
from typing import Any

from runtime.config import (
    BASE_SKILL_NAME,
    InteractiveSkill,
    McpStdioSkill,
    SkillConfig,
)
from runtime.errors import SkillError
from runtime.events import SkillConnected, SkillDisconnected
from runtime.loop.context import JobContext
from runtime.skills.base import BaseSkill
from runtime.skills.delegate import InteractiveSkillTools
from runtime.skills.types import Skill, ToolDefinition

_PINNED_BASE = re.compile(re.escape(BASE_SKILL_NAME) + r"@\S+")


def is_bundled_base(name: str, skill: SkillConfig, base_command: list[str] | None) -> bool:
    """Whether the base skill runs in process (unpinned @perstack/base, no override command)."""
    if name != BASE_SKILL_NAME or not isinstance(skill, McpStdioSkill) or base_command:
        return False
    argv = [skill.package_name] if skill.package_name else skill.args
    return not any(_PINNED_BASE.fullmatch(arg or "") for arg in argv)


def filter_tools(
    definitions: list[ToolDefinition], pick: list[str], omit: list[str]
) -> list[ToolDefinition]:
    """Apply omit, then pick (empty pick keeps everything)."""
    kept = [d for d in definitions if d.name not in omit]
    return [d for d in kept if d.name in pick] if pick else kept


async def open_skills(
    job: JobContext,
    stack: AsyncExitStack,
    skills: dict[str, SkillConfig],
    *,
    run_id: str,
    coordinator: bool,
    base_command: list[str] | None = None,
) -> dict[str, tuple[Skill, ToolDefinition]]:
    """Start every skill and return the tool index (tool name → skill and definition).

    Skills are closed by ``stack``, in the caller's task.

    Raises:
        SkillError: a skill could not be started.
    """
    index: dict[str, tuple[Skill, ToolDefinition]] = {}
    for name, config in skills.items():
        if isinstance(config, InteractiveSkill) and not coordinator:
            continue  # delegated runs never ask the user
        skill = await _start(job, stack, name, config, run_id=run_id, base_command=base_command)
        pick = getattr(config, "pick", [])
        omit = getattr(config, "omit", [])
        for definition in filter_tools(skill.tools(), pick, omit):
            index.setdefault(definition.name, (skill, definition))
    return index


async def _start(
    job: JobContext,
    stack: AsyncExitStack,
    name: str,
    config: SkillConfig,
    *,
    run_id: str,
    base_command: list[str] | None,
) -> Skill:
    fields: dict[str, Any] = {"job_id": job.job.id, "run_id": run_id}
    if is_bundled_base(name, config, base_command):
        started = time.perf_counter()
        base = BaseSkill(job.workspace, storage_dir=job.storage.root if job.storage else None)
        tools = base.tools()
        elapsed = round((time.perf_counter() - started) * 1000)
        job.publish(
            SkillConnected(
                **fields,
                skill_name=name,
                spawn_duration_ms=0,
                handshake_duration_ms=0,
                tool_discovery_duration_ms=elapsed,
                connect_duration_ms=0,
                total_duration_ms=elapsed,
            )
        )
        del tools

        async def close_base() -> None:
            await base.close()
            job.publish(SkillDisconnected(**fields, skill_name=name))

        stack.push_async_callback(close_base)
        return base
    if isinstance(config, InteractiveSkill):
        return InteractiveSkillTools(name, _interactive_definitions(name, config))
    raise SkillError(
        f'Skill "{name}" ({config.type}) cannot be started: this runtime supports the bundled '
        f'"{BASE_SKILL_NAME}" skill only so far.',
        title="Skill not supported",
    )


def _interactive_definitions(name: str, config: InteractiveSkill) -> list[ToolDefinition]:
    definitions = []
    for tool_name, tool in config.tools.items():
        try:
            schema = json.loads(tool.input_json_schema)
        except ValueError as error:
            raise SkillError(
                f'Interactive skill "{name}": tool "{tool_name}" has an inputJsonSchema that is '
                f"not valid JSON ({error})",
                title="Invalid interactive tool",
            ) from error
        if not isinstance(schema, dict):
            raise SkillError(
                f'Interactive skill "{name}": inputJsonSchema of "{tool_name}" '
                "must be a JSON object",
                title="Invalid interactive tool",
            )
        definitions.append(
            ToolDefinition(
                skill_name=name,
                name=tool_name,
                description=tool.description or f"Ask the user ({tool_name})",
                input_schema=schema,
            )
        )
    return definitions
