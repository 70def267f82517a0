"""A cancelled ``run()`` ends its job as ``interrupted``: every open run gets a final event, the
job's lock is released, and the job continues from where it stopped."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from runtime import PerstackEvent, RunSetting, job_is_live, parse_config, run
from runtime.testing import Reply, ScriptedModel, call, reply, scripted_team

TOML = """
[experts."solo"]
instruction = "You work alone."

[experts."lead"]
instruction = "You lead the team."
delegates = ["helper"]

[experts."helper"]
description = "Helps"
instruction = "You help the lead."

[experts."slow"]
instruction = "You start slowly."
[experts."slow".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
[experts."slow".skills."toy"]
type = "mcpStdioSkill"
command = "{python}"
args = ["{server}"]
"""


def config(tmp_path: Path) -> Any:
    import sys

    server = Path(__file__).resolve().parents[1] / "mcp_servers" / "toy_server.py"
    text = TOML.replace("{python}", sys.executable).replace("{server}", str(server))
    return parse_config(text, path=tmp_path / "perstack.toml")


async def cancelled_run(
    tmp_path: Path, expert: str, model: Any, when: Any, **setting: Any
) -> list[PerstackEvent]:
    """Run until an event matches ``when``, then cancel the run as Ctrl+C would."""
    events: list[PerstackEvent] = []
    task: asyncio.Task[Any] | None = None

    def listen(event: PerstackEvent) -> None:
        events.append(event)
        if when(event):
            assert task is not None
            task.cancel("interrupted by SIGINT (Ctrl+C)")

    task = asyncio.create_task(
        run(
            RunSetting(expert_key=expert, query="go", workspace=tmp_path, **setting),
            listen,
            model=model,
            config=config(tmp_path),
        )
    )
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(30):
            await task
    return events


def job_file(tmp_path: Path, job_id: str) -> dict[str, Any]:
    data = json.loads((tmp_path / "perstack/jobs" / job_id / "job.json").read_text())
    assert isinstance(data, dict)
    return data


async def test_cancelled_before_the_first_step(tmp_path: Path) -> None:
    # The toy MCP server takes a moment to start: the run is cancelled before its loop starts.
    events = await cancelled_run(
        tmp_path, "slow", ScriptedModel([]), lambda e: e.type == "initializeRuntime"
    )
    job_id = events[0].job_id
    assert "startRun" not in [e.type for e in events]
    stops = [e for e in events if e.type == "stopRunByError"]
    assert len(stops) == 1, [e.type for e in events]
    stop = stops[0]
    assert stop.run_id == events[0].run_id
    assert stop.error.name == "Interrupted"
    assert "SIGINT" in stop.error.message
    assert stop.checkpoint.status == "init"  # it continues as the fresh start it was
    job = job_file(tmp_path, job_id)
    assert job["status"] == "interrupted"
    assert not job_is_live(tmp_path / "perstack/jobs" / job_id)

    model = ScriptedModel([reply("started at last")])
    final = await run(
        RunSetting(expert_key="slow", query="go again", workspace=tmp_path, continue_latest=True),
        model=model,
        config=config(tmp_path),
    )
    assert final.status == "completed"
    sent = model.requests[0].messages
    assert sent[0].type == "instructionMessage"  # a fresh start: the instruction is there
    assert job_file(tmp_path, job_id)["status"] == "completed"


async def test_cancelled_mid_generation(tmp_path: Path) -> None:
    model = ScriptedModel([call("todo", newTodos=["a"]), Reply(text="too slow", delay=30)])
    events = await cancelled_run(
        tmp_path, "solo", model, lambda e: e.type == "startGeneration" and e.step_number == 2
    )
    (stop,) = [e for e in events if e.type == "stopRunByError"]
    assert stop.error.name == "Interrupted" and stop.error.is_retryable
    assert stop.checkpoint.status == "stoppedByError"
    job = job_file(tmp_path, stop.job_id)
    assert job["status"] == "interrupted"
    assert job["totalSteps"] == 2 and job["finishedAt"] is not None

    model = ScriptedModel([reply("done")])
    final = await run(
        RunSetting(expert_key="solo", query="go on", workspace=tmp_path, continue_latest=True),
        model=model,
        config=config(tmp_path),
    )
    assert final.status == "completed"
    assert model.requests[0].messages[-1].type == "userMessage"


async def test_cancelled_while_a_delegate_runs(tmp_path: Path) -> None:
    team = scripted_team(
        {
            "You lead the team.": [call("helper", query="part"), reply("never")],
            "You help the lead.": [Reply(text="too slow", delay=30)],
        }
    )
    events = await cancelled_run(
        tmp_path,
        "lead",
        team,
        lambda e: e.type == "startGeneration" and e.expert_key == "helper",
    )
    ends = [(e.type, e.expert_key) for e in events if e.type.startswith("stopRun")]
    assert ends == [("stopRunByDelegate", "lead"), ("stopRunByError", "helper")]
    assert job_file(tmp_path, events[0].job_id)["status"] == "interrupted"

    team = scripted_team(
        {"You lead the team.": [reply("all done")], "You help the lead.": [reply("part done")]}
    )
    final = await run(
        RunSetting(expert_key="lead", query="go on", workspace=tmp_path, continue_latest=True),
        model=team,
        config=config(tmp_path),
    )
    assert final.status == "completed"
