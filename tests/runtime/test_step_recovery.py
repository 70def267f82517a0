"""A step whose tools ran but whose end was never stored is rebuilt from its events, not redone."""

from __future__ import annotations

import json
from pathlib import Path

from runtime import RunSetting, run
from runtime.engine.states import recover_unstored_step
from runtime.jobs.events import read_job_events
from runtime.jobs.store import Storage
from runtime.testing import ScriptedModel, call, reply

TOML = '[experts."solo"]\ninstruction = "Write files."\n'


async def two_steps(workspace: Path) -> tuple[Storage, str]:
    (workspace / "perstack.toml").write_text(TOML)
    model = ScriptedModel(
        [
            call("writeTextFile", path="log.txt", text="step 1\n"),
            call("appendTextFile", path="log.txt", text="step 2\n"),
            reply("done"),
        ]
    )
    final = await run(RunSetting(expert_key="solo", query="go", workspace=workspace), model=model)
    return Storage(workspace / "perstack"), final.job_id


def without_ids(value: object) -> object:
    """Message parts get fresh ids when rebuilt; everything else must be the same."""
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


async def test_the_rebuilt_step_equals_the_one_the_loop_stored(tmp_path: Path) -> None:
    storage, job_id = await two_steps(tmp_path)
    first, second = [c for c in storage.checkpoints(job_id) if c.status == "proceeding"]
    events = read_job_events(storage.job_dir(job_id))
    rebuilt = recover_unstored_step(first, events)
    assert rebuilt.step_number == second.step_number == 2
    assert rebuilt.status == "proceeding"
    assert rebuilt.usage == second.usage
    assert [without_ids(m.to_dict()) for m in rebuilt.messages] == [
        without_ids(m.to_dict()) for m in second.messages
    ]


async def test_a_step_without_its_results_is_not_rebuilt(tmp_path: Path) -> None:
    storage, job_id = await two_steps(tmp_path)
    first = next(c for c in storage.checkpoints(job_id) if c.status == "proceeding")
    events = [e for e in read_job_events(storage.job_dir(job_id)) if e.type != "resolveToolResults"]
    assert recover_unstored_step(first, events) is first


async def test_a_continuation_does_not_run_a_finished_tool_again(tmp_path: Path) -> None:
    storage, job_id = await two_steps(tmp_path)
    # As if the process died after step 2's tool ran, before step 2 (and the rest) was stored.
    job_dir = storage.job_dir(job_id)
    for checkpoint in storage.checkpoints(job_id):
        if checkpoint.step_number >= 2:
            (job_dir / "checkpoints" / f"{checkpoint.id}.json").unlink()
    lines = (tmp_path / "log.txt").read_text()
    assert lines == "step 1\nstep 2\n"
    model = ScriptedModel([reply("picked up")])
    final = await run(
        RunSetting(expert_key="solo", query="go on", workspace=tmp_path, continue_latest=True),
        model=model,
    )
    assert final.status == "completed"
    assert (tmp_path / "log.txt").read_text() == lines, "step 2's tool ran once"
    sent = [json.dumps(m.to_dict()) for m in model.requests[0].messages]
    assert sum("step 2" in m for m in sent) >= 1, "the model saw step 2 and its result"


TEAM = """
[experts."lead"]
instruction = "Lead."
delegates = ["helper"]

[experts."helper"]
description = "Helps"
instruction = "Help."
"""


async def test_a_delegate_killed_after_its_first_tool_goes_on_from_it(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text(TEAM)
    model = ScriptedModel(
        [
            call("helper", query="write the log"),
            call("writeTextFile", path="log.txt", text="helper step 1\n"),
            reply("helper done"),
            reply("lead done"),
        ]
    )
    final = await run(RunSetting(expert_key="lead", query="go", workspace=tmp_path), model=model)
    storage = Storage(tmp_path / "perstack")
    job_dir = storage.job_dir(final.job_id)
    # As if killed right after the helper's first tool ran: nothing of the helper is stored as
    # a checkpoint, and the lead's latest is the one that waits for it.
    for checkpoint in storage.checkpoints(final.job_id):
        if checkpoint.delegated_by is not None or checkpoint.status != "stoppedByDelegate":
            (job_dir / "checkpoints" / f"{checkpoint.id}.json").unlink()
    resumed = ScriptedModel([reply("helper done again"), reply("lead done again")])
    again = await run(
        RunSetting(expert_key="lead", query="go on", workspace=tmp_path, continue_latest=True),
        model=resumed,
    )
    assert again.status == "completed"
    assert (tmp_path / "log.txt").read_text() == "helper step 1\n", "the tool ran once"
    helper_request = resumed.requests[0]
    assert [m.type for m in helper_request.messages][-2:] == ["expertMessage", "toolMessage"]
