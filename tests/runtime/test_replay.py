"""Recording every model call, and replaying a job from its recording (issue 17, items 1-2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime import RunSetting, parse_config, run
from runtime.jobs import recording
from runtime.jobs.recording import read_recording
from runtime.schema.events import PerstackEvent
from runtime.testing import Reply, ScriptedModel, call, calls, reply, scripted_team
from tests.runtime.test_delegation import TEAM

UNSTORED = {"streamRunResult", "streamReasoning"}


def team_model(*, designer_delay: float = 0.0) -> ScriptedModel:
    return scripted_team(
        {
            "You lead the team.": [
                calls(("designer", {"query": "design it"}), ("coder", {"query": "build it"})),
                reply("shipped"),
            ],
            "You design levels.": [
                Reply(tool_calls=[("writeTextFile", {"path": "level.txt", "text": "L1"})]),
                call("attemptCompletion"),
                Reply(text="designed", delay=designer_delay),
            ],
            "You write code.": [reply("built")],
        }
    )


def nothing_left() -> ScriptedModel:
    """The model a replay is given: it has no reply, so any call it gets fails the test."""
    return ScriptedModel([])


async def go(
    workspace: Path,
    model: ScriptedModel,
    query: str = "make a game",
    *,
    toml: str = TEAM,
    expert: str = "lead",
    storage: Path | None = None,
    **overrides: Any,
) -> tuple[Any, list[PerstackEvent]]:
    events: list[PerstackEvent] = []
    setting = RunSetting(
        expert_key=expert,
        query=query,
        workspace=workspace,
        retry_base_delay_ms=0,
        storage_path=storage,
        **overrides,
    )
    config = parse_config(toml, path=workspace / "perstack.toml")
    checkpoint = await run(setting, events.append, model=model, config=config)
    return checkpoint, events


def stored_types(events: list[PerstackEvent]) -> dict[str, list[str]]:
    """The stored event types of each expert's runs, in order (parallel runs interleave)."""
    by_expert: dict[str, list[str]] = {}
    for event in events:
        if event.type not in UNSTORED:
            by_expert.setdefault(getattr(event, "expert_key", ""), []).append(event.type)
    return by_expert


def job_json(workspace: Path, job_id: str) -> dict[str, Any]:
    return json.loads((workspace / "perstack" / "jobs" / job_id / "job.json").read_text())


async def test_every_model_call_is_recorded_with_hashes_and_the_answer(tmp_path: Path) -> None:
    first, _ = await go(tmp_path, team_model())
    calls_, cut = read_recording(tmp_path / "perstack" / "jobs" / first.job_id)
    assert not cut
    assert sorted(c.expert_key for c in calls_) == sorted(
        ["lead", "lead", "@team/designer", "@team/designer", "@team/designer", "@team/coder"]
    )
    assert [c.seq for c in calls_] == list(range(6))
    lead = calls_[0]
    assert lead.model == "scripted" and lead.step_number == 1
    assert len(lead.message_hashes) == 2 and lead.request_hash and lead.tools_hash
    assert {"designer", "coder", "exec"} <= set(lead.tool_names)
    assert [t.name for t in lead.answer.tool_calls] == ["designer", "coder"]
    assert lead.answer.finish_reason == "tool-calls"
    assert lead.answer.usage.total_tokens == 15
    # The conversation itself is not kept a second time: previews only, each short.
    assert [p.index for p in lead.previews] == [0, 1]
    assert lead.previews[1].text == "make a game"
    assert all(len(p.text) <= recording.PREVIEW_CHARS for c in calls_ for p in c.previews)


async def test_an_unchanged_team_replays_with_no_model_call(tmp_path: Path) -> None:
    first, original = await go(tmp_path, team_model(designer_delay=0.05))
    live = nothing_left()
    second, replayed = await go(tmp_path, live, replay_of=first.job_id)

    assert second.status == "completed", second.error
    assert live.requests == []  # not one call reached the model
    assert second.job_id != first.job_id
    assert job_json(tmp_path, second.job_id)["origin"] == {"kind": "replay", "jobId": first.job_id}
    # The same stored events in the same order, run by run (parallel delegates may interleave
    # differently: the replay answers at once where the designer took its time).
    assert stored_types(replayed) == stored_types(original)
    assert second.usage == first.usage
    assert (tmp_path / "level.txt").read_text() == "L1"
    # A replay records what it answered: a replay of the replay is free too.
    third, _ = await go(tmp_path, nothing_left(), replay_of=second.job_id)
    assert third.status == "completed", third.error


async def test_a_changed_instruction_stops_the_replay_and_says_where_and_why(
    tmp_path: Path,
) -> None:
    first, _ = await go(tmp_path, team_model())
    changed = TEAM.replace("You write code.", "You write code, with tests.")
    second, events = await go(tmp_path, nothing_left(), toml=changed, replay_of=first.job_id)

    assert second.status == "stoppedByError"
    assert second.error is not None and second.error.name == "ReplayDiverged"
    report = second.error.message
    # The coordinator's own call then fails too, but with the delegate's cause: the first one.
    assert report.startswith(f"replay of job {first.job_id} diverged at @team/coder's model call")
    assert "message 1 of 2 (instructionMessage) differs from the recording" in report
    assert "recorded: You write code. ---" in report
    assert "now:      You write code, with tests. ---" in report
    errors = [e for e in events if e.type == "stopRunByError"]
    assert errors and not any(e.type == "retry" for e in events)  # a divergence is not retried


async def test_a_different_tool_result_is_reported_with_both_texts(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("alpha")
    script = [
        call("readTextFile", path="notes.txt"),
        call("attemptCompletion"),
        reply("read it"),
    ]
    toml = '[experts."solo"]\ninstruction = "Read notes."\n'
    first, _ = await go(tmp_path, ScriptedModel(script), toml=toml, expert="solo")
    (tmp_path / "notes.txt").write_text("beta")
    second, _ = await go(tmp_path, nothing_left(), toml=toml, expert="solo", replay_of=first.job_id)
    assert second.error is not None
    report = second.error.message
    assert "diverged at solo's model call (step 2)" in report
    assert "message 4 of 4 (toolMessage) differs" in report
    recorded_line = next(line for line in report.splitlines() if "recorded:" in line)
    now_line = next(line for line in report.splitlines() if "now:" in line)
    assert "alpha" in recorded_line and "beta" in now_line


async def test_live_goes_on_with_the_model_from_the_first_difference(tmp_path: Path) -> None:
    first, _ = await go(tmp_path, team_model())
    changed = TEAM.replace("You write code.", "You write code, with tests.")
    live = ScriptedModel([reply("built, with tests"), reply("shipped again")])
    second, _ = await go(tmp_path, live, toml=changed, replay_of=first.job_id, replay_live=True)
    assert second.status == "completed", second.error
    # The designer's three calls and the lead's first came from the recording.
    assert len(live.requests) == 2
    assert "shipped again" in json.dumps(second.model_dump(mode="json"))


async def test_a_replay_in_another_workspace_still_matches(tmp_path: Path) -> None:
    # Eval cases run in scratch folders: the workspace path in the system prompt and in tool
    # results must not make every call a divergence.
    storage = tmp_path / "store"
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    first, _ = await go(one, team_model(), storage=storage)
    second, _ = await go(two, nothing_left(), storage=storage, replay_of=first.job_id)
    assert second.status == "completed", second.error


async def test_an_interactive_stop_and_its_answer_replay(tmp_path: Path) -> None:
    from runtime.replay import recorded_runs

    script = [
        call("askColor", question="Which colour?"),
        call("attemptCompletion"),
        reply("painted it blue"),
    ]
    model = ScriptedModel(script)
    stopped, _ = await go(tmp_path, model, "paint it", expert="asker")
    assert stopped.status == "stoppedByInteractiveTool"
    done, _ = await go(
        tmp_path,
        model,
        "blue",
        expert="asker",
        continue_job=stopped.job_id,
        interactive_answer=True,
    )
    assert done.status == "completed"

    runs = recorded_runs(tmp_path / "perstack", stopped.job_id)
    assert [(r.text, r.interactive) for r in runs] == [("paint it", False), ("blue", True)]
    live = nothing_left()
    replay, _ = await go(tmp_path, live, "paint it", expert="asker", replay_of=stopped.job_id)
    assert replay.status == "stoppedByInteractiveTool"
    replayed, _ = await go(
        tmp_path,
        live,
        "blue",
        expert="asker",
        continue_job=replay.job_id,
        interactive_answer=True,
        replay_of=stopped.job_id,
    )
    assert replayed.status == "completed", replayed.error
    assert live.requests == []


async def test_the_recording_keeps_no_secret(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("DEMO_API_KEY", "sk-live-0123456789abcdef")
    model = ScriptedModel([reply("the key is sk-live-0123456789abcdef")])
    toml = '[experts."solo"]\ninstruction = "Answer."\n'
    first, _ = await go(tmp_path, model, toml=toml, expert="solo")
    text = (tmp_path / "perstack" / "jobs" / first.job_id / "recording.jsonl").read_text()
    assert "sk-live-0123456789abcdef" not in text
    calls_, _ = read_recording(tmp_path / "perstack" / "jobs" / first.job_id)
    assert calls_[-1].redacted and "***" in calls_[-1].answer.text


async def test_the_recording_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.engine import recording as engine_recording

    monkeypatch.setattr(engine_recording, "MAX_RECORDING_BYTES", 3000)
    first, _ = await go(tmp_path, team_model())
    path = tmp_path / "perstack" / "jobs" / first.job_id / "recording.jsonl"
    assert path.stat().st_size <= 3000
    calls_, cut = read_recording(path.parent)
    assert cut and 0 < len(calls_) < 6
    second, _ = await go(tmp_path, nothing_left(), replay_of=first.job_id)
    assert second.error is not None
    assert "the recording was cut at its size limit" in second.error.message


async def test_a_job_without_a_recording_is_refused_before_it_starts(tmp_path: Path) -> None:
    from runtime import UsageError

    first, _ = await go(tmp_path, team_model())
    (tmp_path / "perstack" / "jobs" / first.job_id / "recording.jsonl").unlink()
    with pytest.raises(UsageError, match="has no model-call recording"):
        await go(tmp_path, nothing_left(), replay_of=first.job_id)


async def test_the_recording_grows_with_the_conversation_not_its_square(tmp_path: Path) -> None:
    steps = 40
    script = [call("readTextFile", path=f"missing-{i}.txt") for i in range(steps)]
    toml = '[experts."solo"]\ninstruction = "Read them all."\n'
    first, _ = await go(tmp_path, ScriptedModel([*script, reply("done")]), toml=toml, expert="solo")
    calls_, _ = read_recording(tmp_path / "perstack" / "jobs" / first.job_id)
    # Each call keeps the hashes of the two messages new since the previous one.
    assert [len(c.message_hashes) for c in calls_[1:]] == [2] * steps
    assert [c.prefix_seq for c in calls_] == [None, *range(steps)]
    assert calls_[-1].message_count == 2 + 2 * steps
    # A change early in the conversation is still found, through the chain of prefixes.
    (tmp_path / "missing-3.txt").write_text("now it exists")
    second, _ = await go(tmp_path, nothing_left(), toml=toml, expert="solo", replay_of=first.job_id)
    assert second.error is not None
    assert "(step 5): message 10 of 10 (toolMessage) differs" in second.error.message
