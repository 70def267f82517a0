"""Resuming from a delegate's checkpoint resumes that delegate, then its parent (issue 16, bug 2:
it always failed with "Checkpoint expert key 'writer' does not match input expert key 'lead'")."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime import CheckpointError, RunSetting, parse_config, run
from runtime.jobs import Jobs
from runtime.schema.messages import Message, TextPart
from runtime.testing import call, reply, scripted_team

TEAM = """\
[experts."lead"]
instruction = "You lead: ask the writer."
delegates = ["writer"]

[experts."writer"]
instruction = "You write poems."
"""


def text_of(message: Message) -> str:
    return " ".join(part.text for part in message.contents if isinstance(part, TextPart))


async def test_a_delegate_checkpoint_resumes_the_delegate_then_its_parent(tmp_path: Path) -> None:
    config = parse_config(TEAM, path=tmp_path / "perstack.toml")
    model = scripted_team(
        {
            "You lead": [
                call("writer", query="Write a poem."),
                reply("lead: done"),
                reply("again"),
            ],
            "You write": [reply("a long poem"), reply("a short poem")],
        }
    )
    first = await run(
        RunSetting(expert_key="lead", query="go", workspace=tmp_path), model=model, config=config
    )
    jobs = Jobs.for_workspace(tmp_path)
    (done,) = [
        c
        for c in jobs.checkpoints(first.job_id)
        if c.expert_key == "writer" and c.status == "completed"
    ]
    second = await run(
        RunSetting(
            expert_key="lead",
            query="Make it short.",
            workspace=tmp_path,
            continue_job=first.job_id,
            resume_from=done.id,
        ),
        model=model,
        config=config,
    )
    assert second.status == "completed" and second.job_id == first.job_id
    results = [
        part
        for message in second.messages
        if message.type == "toolMessage"
        for part in message.contents
        if part.tool_name == "writer"
    ]
    assert "a short poem" in "".join(c.text for c in results[-1].contents if c.type == "textPart")
    # The writer went on from its checkpoint with the new query after its own conversation.
    asked = model.requests[-2].messages
    assert [m.type for m in asked][-3:] == ["userMessage", "expertMessage", "userMessage"]
    assert "Make it short." in text_of(asked[-1])
    # The new writer run hangs under the same call as before.
    writers = [r for r in jobs.runs(first.job_id) if r.expert_key == "writer"]
    assert len(writers) == 2
    assert len({str((r.delegated_by or {}).get("toolCallId")) for r in writers}) == 1


async def test_a_delegate_checkpoint_without_its_waiting_parent_is_a_clear_error(
    tmp_path: Path,
) -> None:
    config = parse_config(TEAM, path=tmp_path / "perstack.toml")
    model = scripted_team(
        {"You lead": [call("writer", query="Write."), reply("done")], "You write": [reply("ok")]}
    )
    first = await run(
        RunSetting(expert_key="lead", query="go", workspace=tmp_path), model=model, config=config
    )
    jobs = Jobs.for_workspace(tmp_path)
    writer = next(c for c in jobs.checkpoints(first.job_id) if c.expert_key == "writer")
    for parent in jobs.checkpoints(first.job_id):
        if parent.status == "stoppedByDelegate":
            (jobs.job_dir(first.job_id) / "checkpoints" / f"{parent.id}.json").unlink()
    with pytest.raises(CheckpointError, match="that waits for it is not stored"):
        await run(
            RunSetting(
                expert_key="lead",
                query="again",
                workspace=tmp_path,
                continue_job=first.job_id,
                resume_from=writer.id,
            ),
            model=model,
            config=config,
        )
