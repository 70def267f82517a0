"""MCP skills' lifecycle in the run's task: cancelling the run or a failed start stops
every server, and lazyInit starts a skill on its first tool call once perstack.lock
records its tools (at once, with a warning, without it)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from runtime.engine.context import JobContext
from runtime.engine.skillset import open_skills
from runtime.errors import SkillError
from runtime.schema.checkpoint import Job
from runtime.schema.events import PerstackEvent, SkillConnected, SkillDisconnected, now_ms
from runtime.skills.lockfile import LockedExpert, LockedTool, Lockfile, skill_definition_hash
from runtime.skills.mcp import McpSkill
from runtime.testing import ScriptedModel
from tests.runtime.mcp_skill_helpers import skill_events, text_of, toy


def job_context(workspace: Path, events: list[PerstackEvent]) -> JobContext:
    return JobContext(
        job=Job(id="job", status="running", coordinator_expert_key="agent", started_at=now_ms()),
        model=ScriptedModel([]),
        workspace=workspace,
        max_steps=10,
        max_retries=0,
        timeout_ms=60_000,
        reasoning_budget="low",
        retry_base_delay_ms=0,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        storage=None,
        listener=events.append,
    )


def processes_with(marker: str) -> list[int]:
    """Live processes whose command line contains ``marker`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().split(") ", 1)[1][:1]
        except OSError:
            continue
        if marker in command and state != "Z":
            found.append(int(entry.name))
    return found


async def test_cancelling_the_run_task_stops_every_server(tmp_path: Path) -> None:
    events: list[PerstackEvent] = []
    job = job_context(tmp_path, events)
    skills: dict[str, Any] = {
        "a": toy(pick=["echo"]),
        "b": toy(pick=["shout"]),
    }
    opened = asyncio.Event()
    found: dict[str, McpSkill] = {}

    async def run_task() -> None:
        async with AsyncExitStack() as stack:
            index = await open_skills(job, stack, skills, run_id="run", coordinator=True)
            for skill, _ in index.values():
                assert isinstance(skill, McpSkill)
                found[skill.name] = skill
            opened.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(run_task())
    async with asyncio.timeout(20):
        await opened.wait()
    pids = [skill.pid for skill in found.values()]
    assert len(pids) == 2 and all(pids)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for pid in pids:
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert sorted(e.skill_name for e in events if isinstance(e, SkillDisconnected)) == ["a", "b"]


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc")
async def test_a_failed_start_stops_the_servers_that_were_starting(tmp_path: Path) -> None:
    marker = f"marker-{os.getpid()}-{time.monotonic_ns()}"
    events: list[PerstackEvent] = []
    job = job_context(tmp_path, events)
    skills: dict[str, Any] = {
        "good": toy("--name", marker),
        # Fails once Python is up, while "good" is still starting (or just started).
        "broken": toy("--exit-before-handshake", "5"),
    }
    with pytest.raises(SkillError, match="exited with code 5"):
        async with asyncio.timeout(20), AsyncExitStack() as stack:
            await open_skills(job, stack, skills, run_id="run", coordinator=True)
    assert processes_with(marker) == []
    # Whether or not "good" had connected when "broken" failed, it was closed.
    connected = {e.skill_name for e in events if isinstance(e, SkillConnected)}
    disconnected = {e.skill_name for e in events if isinstance(e, SkillDisconnected)}
    assert connected == disconnected


async def test_lazy_init_without_a_lockfile_starts_at_once_and_warns_once_per_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[PerstackEvent] = []
    job = job_context(tmp_path, events)
    skills: dict[str, Any] = {"lazy": toy(lazy_init=True, pick=["echo"])}
    with caplog.at_level(logging.WARNING, logger="runtime"):
        for run_id in ("run-1", "run-2"):  # a second segment of the job (a delegate, a resume)
            async with asyncio.timeout(20), AsyncExitStack() as stack:
                index = await open_skills(job, stack, skills, run_id=run_id, coordinator=True)
                # Started before open_skills returned: the first model call can offer its tools.
                assert list(index) == ["echo"]
                skill = index["echo"][0]
                assert isinstance(skill, McpSkill) and skill.connected
    assert [e.type for e in events if e.type != "skillStderr"] == [
        "skillStarting",
        "skillConnected",
        "skillDisconnected",
    ] * 2
    warnings = [r.getMessage() for r in caplog.records if r.name == "runtime"]
    assert warnings == [
        'skill "lazy" has lazyInit = true, but without perstack.lock its tools are unknown until '
        "it starts, so it starts now, before the first model call. Run `perstack install` to "
        "record its tools; it then starts on its first tool call."
    ]


async def test_lazy_init_with_a_lockfile_starts_on_the_first_tool_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[PerstackEvent] = []
    job = job_context(tmp_path, events)
    config = toy(lazy_init=True)
    job.lockfile = Lockfile(
        version="1",
        generated_at=0,
        config_path="perstack.toml",
        experts={
            "agent": LockedExpert(
                key="agent",
                name="agent",
                version="1.0.0",
                instruction="x",
                tool_definitions=[LockedTool(skill_name="lazy", name="echo")],
                skill_hashes={"lazy": skill_definition_hash("lazy", config)},
            )
        },
    )
    with caplog.at_level(logging.WARNING, logger="runtime"):
        async with asyncio.timeout(20), AsyncExitStack() as stack:
            index = await open_skills(job, stack, {"lazy": config}, run_id="run", coordinator=True)
            assert list(index) == ["echo"]
            assert events == []  # nothing started yet
            skill = index["echo"][0]
            outcome = await skill.call("echo", {"text": "now"})
            assert text_of(outcome) == "now"
            started = [e for e in skill_events(events, "lazy") if e != "skillStderr"]
            assert started == ["skillStarting", "skillConnected"]
    assert not [r for r in caplog.records if r.name == "runtime"]
