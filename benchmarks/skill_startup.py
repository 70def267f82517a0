"""MCP skill start-up: spawn / handshake / discovery / total, and time to the first model call.

Run: ``.venv/bin/python benchmarks/skill_startup.py [--iterations N]``

1. Start-up phases (from ``skillConnected``) of two stdio servers: the project's base skill
   (``python -m runtime.skills.base_server``) and the third-party ``mcp-server-time``.
2. Time from calling ``runtime.run`` to the first model request, for an expert with the bundled
   base skill and ``mcp-server-time``: without a lockfile (the server starts before the first
   generation) and with one written by ``perstack install`` (it starts on first use; target:
   under 5 ms, Perstack measured 7 ms in its own benchmark, 21 ms on this machine).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import runtime.engine.runner
from runtime import RunSetting, load_config, run
from runtime.config.schema import McpStdioSkill
from runtime.engine.context import JobContext
from runtime.install import install
from runtime.llm import GenerationRequest
from runtime.schema.events import PerstackEvent, SkillConnected
from runtime.skills.lockfile import load_lockfile
from runtime.skills.mcp import McpSkill, SkillRuntime
from runtime.testing import Reply, ScriptedModel, reply

PY = sys.executable
SERVERS = {
    "base skill (stdio)": [PY, "-m", "runtime.skills.base_server"],
    "mcp-server-time": [PY, "-m", "mcp_server_time", "--local-timezone", "UTC"],
}

TOML = f"""
model = "scripted"

[experts."timekeeper"]
instruction = "Tell the time."
[experts."timekeeper".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
[experts."timekeeper".skills."time"]
type = "mcpStdioSkill"
command = {json.dumps(PY)}
args = ["-m", "mcp_server_time", "--local-timezone", "UTC"]
"""


async def startup_phases(argv: list[str], workspace: Path) -> SkillConnected:
    events: list[PerstackEvent] = []
    runtime_ = SkillRuntime(
        env={"PATH": "/usr/bin:/bin"},
        workspace=workspace,
        publish=events.append,
        job_id="bench",
        run_id="bench",
    )
    config = McpStdioSkill(type="mcpStdioSkill", command=argv[0], args=argv[1:])
    skill = McpSkill("bench", config, runtime_)
    await skill.start()
    await skill.close()
    return next(e for e in events if isinstance(e, SkillConnected))


async def first_generation_ms(project: Path, *, with_lockfile: bool) -> float:
    first: list[float] = []

    def answer(request: GenerationRequest) -> Reply:
        first.append(time.perf_counter())
        return reply("It is time.")

    loaded = load_config(None, project)
    original = runtime.engine.runner.JobContext
    if with_lockfile:
        # What runner.run does once wired: JobContext(..., lockfile=load_lockfile(loaded)).
        lock = load_lockfile(loaded)
        assert lock is not None
        runtime.engine.runner.JobContext = functools.partial(JobContext, lockfile=lock)  # type: ignore[misc]
    try:
        started = time.perf_counter()
        await run(
            RunSetting(expert_key="timekeeper", query="time?", workspace=project, store=False),
            model=ScriptedModel(answer),
            config=loaded,
        )
    finally:
        runtime.engine.runner.JobContext = original  # type: ignore[misc]
    return (first[0] - started) * 1000


async def main(iterations: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        workspace = Path(directory)
        print(f"Start-up phases, median of {iterations} (ms)")
        print(f"  {'server':<22}{'spawn':>8}{'handshake':>11}{'discovery':>11}{'total':>8}")
        for label, argv in SERVERS.items():
            samples = [await startup_phases(argv, workspace) for _ in range(iterations)]

            def median(field: str, samples: list[SkillConnected] = samples) -> float:
                return statistics.median(getattr(s, field) or 0 for s in samples)

            print(
                f"  {label:<22}{median('spawn_duration_ms'):>8.0f}"
                f"{median('handshake_duration_ms'):>11.0f}"
                f"{median('tool_discovery_duration_ms'):>11.0f}"
                f"{median('total_duration_ms'):>8.0f}"
            )
        (workspace / "perstack.toml").write_text(TOML)
        without = [
            await first_generation_ms(workspace, with_lockfile=False) for _ in range(iterations)
        ]
        await install(cwd=workspace, out=io.StringIO())
        await first_generation_ms(workspace, with_lockfile=True)  # warm imports once
        with_lock = [
            await first_generation_ms(workspace, with_lockfile=True) for _ in range(iterations)
        ]
        print(f"Time to first model call, median of {iterations} (ms)")
        print(f"  without perstack.lock: {statistics.median(without):8.1f}")
        print(f"  with perstack.lock:    {statistics.median(with_lock):8.1f}  (target < 5)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5)
    asyncio.run(main(parser.parse_args().iterations))
