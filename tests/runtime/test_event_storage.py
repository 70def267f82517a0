"""Stored events: compact on disk (no repeated conversation), read back exactly as emitted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runtime import RunSetting, parse_config, read_job_events, run
from runtime.schema.events import PerstackEvent
from runtime.testing import Reply, ScriptedModel, call, calls, reply, scripted_team

TEAM = """
[experts."lead"]
instruction = "You lead the team."
delegates = ["@team/designer", "@team/coder"]

[experts."@team/designer"]
description = "Designs levels"
instruction = "You design levels."

[experts."@team/coder"]
description = "Writes code"
instruction = "You write code."
"""

UNSTORED = ("streamReasoning", "streamRunResult")


async def go(
    workspace: Path, model: ScriptedModel, expert: str, **overrides: Any
) -> tuple[Path, list[PerstackEvent]]:
    events: list[PerstackEvent] = []
    setting = RunSetting(
        expert_key=expert, query="go", workspace=workspace, retry_base_delay_ms=0, **overrides
    )
    config = parse_config(TEAM, path=workspace / "perstack.toml")
    checkpoint = await run(setting, events.append, model=model, config=config)
    return workspace / "perstack" / "jobs" / checkpoint.job_id, events


def steps(count: int) -> list[Reply]:
    # Results of the same size each step, so only repetition could make the file grow faster.
    return [call("readTextFile", path=f"missing-{i:03}.txt") for i in range(count)] + [
        reply("done")
    ]


def stored_lines(job_dir: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(job_dir.glob("runs/*/events.jsonl"))
        for line in path.read_text().splitlines()
    ]


async def test_team_events_read_back_exactly_as_emitted(tmp_path: Path) -> None:
    model = scripted_team(
        {
            "You lead": [
                calls(
                    ("designer", {"query": "a level"}),
                    ("coder", {"query": "the code"}),
                ),
                call("todo", newTodos=["check"]),
                reply("Team done."),
            ],
            "You design": [call("todo", newTodos=["sketch"]), reply("Level designed.")],
            "You write code": [reply("Code written.")],
        }
    )
    job_dir, live = await go(tmp_path, model, "lead")
    emitted = {event.id: event.to_json() for event in live if event.type not in UNSTORED}

    read = list(read_job_events(job_dir))

    assert {event.id: event.to_json() for event in read} == emitted
    # Time order across the runs of the job.
    assert [e.timestamp for e in read] == sorted(e.timestamp for e in read)
    # One run segment alone: only its own events.
    designer = next(e.run_id for e in live if e.type == "startRun" and "designer" in e.expert_key)
    alone = list(read_job_events(job_dir, run_ids=[designer]))
    assert [e.id for e in alone] == [e.id for e in read if e.run_id == designer]


async def test_stored_lines_refer_to_checkpoints_instead_of_repeating_messages(
    tmp_path: Path,
) -> None:
    job_dir, _ = await go(tmp_path, ScriptedModel(steps(5)), "@team/coder")
    lines = stored_lines(job_dir)
    carrying = [line for line in lines if line["type"] in ("continueToNextStep", "completeRun")]
    assert len(carrying) == 6
    for line in carrying:
        checkpoint = line["checkpoint"]
        assert "messages" not in checkpoint
        ref = checkpoint["messagesRef"]
        assert (job_dir / "checkpoints" / f"{ref['checkpointId']}.json").is_file()
        stored = json.loads((job_dir / "checkpoints" / f"{ref['checkpointId']}.json").read_text())
        assert ref["count"] == len(stored["messages"])
        assert ref["lastMessageId"] == stored["messages"][-1]["id"]
    # The first prompt (instruction + query) is in no checkpoint file yet; later ones are.
    first, *later = [line for line in lines if line["type"] == "startGeneration"]
    assert len(first["messages"]) == 2
    assert len(later) == 5 and all("messages" not in g and "messagesRef" in g for g in later)
    # A fresh run starts from an empty conversation: nothing to refer to, stored inline.
    start = next(line for line in lines if line["type"] == "startRun")
    assert start["initialCheckpoint"]["messages"] == []


async def test_events_file_grows_linearly_with_steps(tmp_path: Path) -> None:
    sizes = {}
    for count in (20, 60):
        job_dir, _ = await go(tmp_path / str(count), ScriptedModel(steps(count)), "@team/coder")
        sizes[count] = sum(p.stat().st_size for p in job_dir.glob("runs/*/events.jsonl"))
    # Three times the steps: about three times the bytes (repeating messages would give ~9x).
    assert sizes[60] / sizes[20] < 3.5


async def test_lines_with_inline_messages_still_read(tmp_path: Path) -> None:
    """Jobs stored before references existed (messages inline) read the same."""
    job_dir, live = await go(tmp_path, ScriptedModel(steps(2)), "@team/coder")
    stored = [e for e in live if e.type not in UNSTORED]
    (events_file,) = job_dir.glob("runs/*/events.jsonl")
    events_file.write_text("".join(event.to_json() + "\n" for event in stored))

    assert [e.to_json() for e in read_job_events(job_dir)] == [e.to_json() for e in stored]


async def test_structure_only_reading_needs_no_checkpoint_files(tmp_path: Path) -> None:
    job_dir, live = await go(tmp_path, ScriptedModel(steps(3)), "@team/coder")
    for path in (job_dir / "checkpoints").iterdir():
        path.unlink()

    light = list(read_job_events(job_dir, messages=False))

    assert [e.id for e in light] == [e.id for e in live if e.type not in UNSTORED]
    next_step = next(e for e in light if e.type == "continueToNextStep")
    assert next_step.checkpoint.messages == []  # type: ignore[union-attr]
    assert next_step.checkpoint.step_number == 1  # type: ignore[union-attr]
    # With messages asked for, the events whose checkpoint is gone are skipped, not invented.
    full = list(read_job_events(job_dir))
    assert {e.type for e in full}.isdisjoint({"continueToNextStep", "completeRun"})


async def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    job_dir, live = await go(tmp_path, ScriptedModel(steps(1)), "@team/coder")
    (events_file,) = job_dir.glob("runs/*/events.jsonl")
    with events_file.open("a") as handle:
        handle.write('{"type":"callTools","jobId":')

    assert len(list(read_job_events(job_dir))) == len([e for e in live if e.type not in UNSTORED])


async def test_start_run_reports_the_definition_it_runs(tmp_path: Path) -> None:
    from runtime import resolve_expert

    _, events = await go(tmp_path, ScriptedModel([reply("done")]), "@team/coder")
    (start,) = [e for e in events if e.type == "startRun"]
    config = parse_config(TEAM, path=tmp_path / "perstack.toml")
    coder = resolve_expert(config, "@team/coder")
    assert start.definition_sha256 == coder.sha256  # type: ignore[union-attr]
    # Only the expert's own definition counts: comments and other experts do not change it.
    edited = "# note\n" + TEAM.replace("You lead the team.", "You lead.")
    assert resolve_expert(parse_config(edited), "@team/coder").sha256 == coder.sha256
    changed = TEAM.replace("You write code.", "You write tests.")
    assert resolve_expert(parse_config(changed), "@team/coder").sha256 != coder.sha256
