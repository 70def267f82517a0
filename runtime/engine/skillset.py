"""Start an expert's skills for one run segment and close them when it ends.

Init order follows Perstack (§5.10): the bundled base skill (in process), then every MCP skill
**concurrently**, then interactive skills (coordinator only); delegates are added by the runner.
If any skill fails to start, the ones already started are closed by the caller's exit stack and
the error ends the run before it starts.

With a lockfile (``JobContext.lockfile``), an MCP skill whose definition is recorded there does
not start here at all: it advertises the recorded tools and connects on its first tool call, so
the first model request waits for no server (§7). A skill that is not recorded, or whose
definition changed since ``perstack install``, is reported and started live.

``lazyInit`` changes nothing by itself. Without a lockfile nobody knows a server's tools until it
has started and listed them, and the first model request must offer them, so a ``lazyInit = true``
skill starts here with the others (Perstack starts it in the background, but its first generation
waits for the tool list too). A warning says so once per job and points at ``perstack install``,
after which the skill starts on its first tool call, as every recorded skill does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from runtime.config.builtin import TOOLS_SKILL_NAME
from runtime.config.schema import BASE_SKILL_NAME, InteractiveSkill, McpStdioSkill, SkillConfig
from runtime.engine.context import JobContext
from runtime.errors import SkillError
from runtime.schema.events import ProxyAccess, SkillConnected, SkillDisconnected
from runtime.skills.base import BaseSkill
from runtime.skills.create_expert import CreateExpertSkill
from runtime.skills.delegate import InteractiveSkillTools
from runtime.skills.lockfile import skill_definition_hash
from runtime.skills.mcp import McpSkill, SkillRuntime, is_bundled_base
from runtime.skills.types import Skill, ToolDefinition

if TYPE_CHECKING:
    from runtime.sandbox import ProxyDecision, Sandbox

__all__ = [
    "close_all",
    "filter_tools",
    "interactive_definitions",
    "is_bundled_base",
    "open_skills",
    "start_all",
]

_MAX_REMEMBERED_WARNINGS = 1000
"""Warnings remembered to give each once per job (a long-lived studio runs many jobs)."""

_given_warnings: OrderedDict[str, None] = OrderedDict()


def _first_warning(key: str) -> bool:
    """True the first time ``key`` is seen (within the last thousand keys)."""
    if key in _given_warnings:
        return False
    _given_warnings[key] = None
    if len(_given_warnings) > _MAX_REMEMBERED_WARNINGS:
        _given_warnings.popitem(last=False)
    return True


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

    Skills are closed by ``stack``, in the caller's task. MCP skills start concurrently; each
    keeps its connection in a task of its own, which ``stack`` stops and waits for.

    Raises:
        SkillError: a skill could not be started (the message names the skill and its command).
    """
    sandbox = _sandbox(job, run_id)
    if sandbox is not None:
        # Registered first, so it runs last: after every skill process has been stopped.
        stack.callback(sandbox.close)
    runtime = SkillRuntime(
        sandbox=sandbox,
        env=job.env,
        workspace=job.workspace,
        publish=job.publish,
        job_id=job.job.id,
        run_id=run_id,
        verbose=job.verbose,
        warn=job.warn,
    )
    lockfile = job.lockfile
    opened: list[tuple[SkillConfig, Skill]] = []
    mcp_skills: list[McpSkill] = []
    for name, config in skills.items():
        if isinstance(config, InteractiveSkill):
            if coordinator:  # delegated runs never ask the user
                opened.append(
                    (config, InteractiveSkillTools(name, interactive_definitions(name, config)))
                )
            continue
        if name == TOOLS_SKILL_NAME and job.nested_runner is not None:
            # create-expert's own tools: in process, like the bundled base skill.
            tools = CreateExpertSkill(
                job.workspace,
                job.nested_runner,
                run_job=job.run_job,
                storage_root=job.storage.root if job.storage is not None else None,
            )
            opened.append((config, tools))
            job.publish(
                SkillConnected(
                    job_id=job.job.id, run_id=run_id, skill_name=name, spawn_duration_ms=0
                )
            )
            continue
        if is_bundled_base(name, config, base_command):
            domains = list(getattr(config, "allowed_domains", None) or [])
            opened.append((config, _open_bundled_base(job, stack, name, run_id, sandbox, domains)))
            continue
        cached = None
        if lockfile is not None:
            cached = lockfile.cached_tools(name, config, base_command)
            digest = skill_definition_hash(name, config, base_command)
            if cached is None and lockfile.first_report(f"{name}:{digest}"):
                job.warn(
                    f'perstack.lock has no up-to-date entry for skill "{name}" (added or changed '
                    "since `perstack install`); starting it now. Run `perstack install` to "
                    "update the lockfile."
                )
        elif _lazy(name, config) and _first_warning(f"{job.job.id}:{name}:lazyInit"):
            job.warn(
                f'skill "{name}" has lazyInit = true, but without perstack.lock its tools are '
                "unknown until it starts, so it starts now, before the first model call. Run "
                "`perstack install` to record its tools; it then starts on its first tool call."
            )
        mcp_skill = McpSkill(name, config, runtime, base_command=base_command, cached_tools=cached)
        mcp_skills.append(mcp_skill)
        opened.append((config, mcp_skill))
    if mcp_skills:
        # Registered before starting, so a failed start still stops the servers that came up.
        stack.push_async_callback(close_all, mcp_skills)
        await start_all([s for s in mcp_skills if not s.deferred])
    index: dict[str, tuple[Skill, ToolDefinition]] = {}
    for config, skill in opened:
        pick = getattr(config, "pick", [])
        omit = getattr(config, "omit", [])
        for definition in filter_tools(skill.tools(), pick, omit):
            index.setdefault(definition.name, (skill, definition))
    return index


def _lazy(name: str, config: SkillConfig) -> bool:
    return isinstance(config, McpStdioSkill) and config.lazy_init and name != BASE_SKILL_NAME


async def start_all(skills: Sequence[McpSkill]) -> None:
    """Start MCP skills concurrently; the first failure cancels the rest and is raised.

    Raises:
        SkillError: a skill could not be started.
    """
    if not skills:
        return
    if len(skills) == 1:
        await skills[0].start()
        return
    try:
        async with asyncio.TaskGroup() as group:
            for skill in skills:
                group.create_task(skill.start(), name=f"start-skill:{skill.name}")
    except BaseExceptionGroup as failures:
        # One clear error (the first skill that failed) instead of a group.
        first = failures.exceptions[0]
        while isinstance(first, BaseExceptionGroup) and first.exceptions:
            first = first.exceptions[0]
        raise first from None


async def close_all(skills: Sequence[McpSkill]) -> None:
    """Close MCP skills concurrently (each waits up to a few seconds for its server to exit)."""
    await asyncio.gather(*(skill.close() for skill in skills))


def _sandbox(job: JobContext, run_id: str) -> Sandbox | None:
    if not job.sandbox:
        return None
    from runtime.sandbox import Sandbox  # only with --sandbox: it probes bubblewrap

    def on_access(decision: ProxyDecision) -> None:
        job.publish(
            ProxyAccess(
                job_id=job.job.id,
                run_id=run_id,
                action=decision.action,
                domain=decision.domain,
                port=decision.port,
                reason=decision.reason,
            )
        )

    return Sandbox(
        job.workspace,
        storage_dir=job.storage.root if job.storage else None,
        on_proxy_access=on_access,
        # The run's env files, wherever envPath puts them, read as empty like .env and .env.local.
        hidden_paths=job.env_files,
    )


def _open_bundled_base(
    job: JobContext,
    stack: AsyncExitStack,
    name: str,
    run_id: str,
    sandbox: Sandbox | None,
    allowed_domains: list[str],
) -> Skill:
    fields: dict[str, Any] = {"job_id": job.job.id, "run_id": run_id}
    started = time.perf_counter()
    base = BaseSkill(
        job.workspace,
        storage_dir=job.storage.root if job.storage else None,
        sandbox=sandbox,
        allowed_domains=allowed_domains,
        env_files=job.env_files,
    )
    base.tools()
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

    async def close_base() -> None:
        await base.close()
        job.publish(SkillDisconnected(**fields, skill_name=name))

    stack.push_async_callback(close_base)
    return base


def interactive_definitions(name: str, config: InteractiveSkill) -> list[ToolDefinition]:
    """The tools of an interactive skill, from their ``inputJsonSchema`` strings.

    Raises:
        SkillError: a schema is not a JSON object.
    """
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
                f'Interactive skill "{name}": inputJsonSchema of "{tool_name}" must be a JSON '
                "object",
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
