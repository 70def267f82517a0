"""Forking a job from any checkpoint with an edited definition (issue 16, item 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime import CheckpointError, RunSetting, UsageError, parse_config, run
from runtime.jobs import Jobs
from runtime.llm import GenerationRequest
from runtime.testing import ScriptedModel, call, reply, scripted_team
from tests.runtime.test_replay import TEAM

EDITED = TEAM.replace("You write code.", "You write code, in Rust.")


def team() -> ScriptedModel:
    return scripted_team(
        {
            "You lead the team.": [call("coder", query="build it"), reply("shipped")],
            "You write code.": [
                call("writeTextFile", path="main.py", text="print(1)"),
                call("attemptCompletion"),
                reply("built in Python"),
            ],
        }
    )


async def go(workspace: Path, model: Any, toml: str = TEAM, **overrides: Any) -> Any:
    fields: dict[str, Any] = {"query": "make it", "retry_base_delay_ms": 0} | overrides
    setting = RunSetting(expert_key="lead", workspace=workspace, **fields)
    return await run(setting, None, model=model, config=parse_config(toml, path=workspace / "x"))


def system_prompt(request: GenerationRequest) -> str:
    return request.messages[0].contents[0].text  # type: ignore[union-attr]


async def test_fork_a_delegate_step_with_an_edited_instruction(tmp_path: Path) -> None:
    first = await go(tmp_path, team())
    jobs = Jobs(tmp_path / "perstack")
    coder_steps = [c for c in jobs.checkpoints(first.job_id) if c.expert_key == "@team/coder"]
    fork_point = coder_steps[0]  # after it wrote main.py, before it completed
    stored_before = sorted(p.name for p in (tmp_path / "perstack" / "jobs").iterdir())

    # The fork: the coder now writes Rust; it goes on from its first step, then the lead.
    model = scripted_team(
        {
            "You write code, in Rust.": [
                call("writeTextFile", path="main.rs", text="fn main() {}"),
                call("attemptCompletion"),
                reply("built in Rust"),
            ],
            "You lead the team.": [reply("shipped in Rust")],
        }
    )
    forked = await go(tmp_path, model, EDITED, query="", fork_from=fork_point.id)

    assert forked.status == "completed", forked.error
    assert forked.job_id != first.job_id
    assert "shipped in Rust" in json.dumps(forked.model_dump(mode="json"))
    # The coder resumed with its edited instruction in place of the one it was stored with,
    # and its conversation so far (the Python file it wrote) kept.
    coder_request = model.requests[0]
    assert "You write code, in Rust." in system_prompt(coder_request)
    assert "print(1)" in json.dumps([m.model_dump(mode="json") for m in coder_request.messages])
    assert (tmp_path / "main.rs").is_file()

    job = json.loads((tmp_path / "perstack" / "jobs" / forked.job_id / "job.json").read_text())
    assert job["origin"] == {
        "kind": "fork",
        "jobId": first.job_id,
        "checkpointId": fork_point.id,
    }
    # The fork holds the origin's checkpoints up to the fork point, and its own after it: in
    # the order they were stored, the copies (no event of the fork dates them) come first.
    listed = jobs.checkpoints(forked.job_id)
    steps = [c.step_number for c in listed]
    assert min(steps) == 1 and fork_point.step_number in steps
    copies = [c.stored_at is None for c in listed]
    assert copies == sorted(copies, reverse=True) and copies[0] and not copies[-1]
    # The origin is left as it was.
    assert [c.id for c in jobs.checkpoints(first.job_id)] == [
        c.id for c in Jobs(tmp_path / "perstack").checkpoints(first.job_id)
    ]
    assert first.job_id in stored_before
    assert jobs.get(first.job_id).status == "completed"


async def test_fork_errors_are_clear(tmp_path: Path) -> None:
    first = await go(tmp_path, team())
    with pytest.raises(CheckpointError, match="Checkpoint 'nope' not found in any job of"):
        await go(tmp_path, ScriptedModel([]), fork_from="nope")
    point = Jobs(tmp_path / "perstack").checkpoints(first.job_id)[0]
    with pytest.raises(UsageError, match="cannot be combined with --continue"):
        await go(tmp_path, ScriptedModel([]), fork_from=point.id, continue_job=first.job_id)
    with pytest.raises(UsageError, match="exists already"):
        await go(tmp_path, ScriptedModel([]), fork_from=point.id, job_id=first.job_id)


def test_perstack_run_fork_from(tmp_path: Path, fake_llm: Any) -> None:
    """`perstack run EXPERT QUERY --fork-from CKPT` as a user types it, on a local fake server."""
    from tests.fakellm import reply_text, reply_tool_calls
    from tests.test_cli_run import events, run_gpt41

    (tmp_path / "perstack.toml").write_text('[experts."solo"]\ninstruction = "Say hello."\n')
    fake_llm.script(
        reply_tool_calls([("writeTextFile", {"path": "a.txt", "text": "1"})]),
        reply_tool_calls([("attemptCompletion", {})]),
        reply_text("hello"),
    )
    original = run_gpt41("solo", "greet", cwd=tmp_path, env=fake_llm.env())
    assert original.returncode == 0, original.stderr
    first = events(original.stdout)
    point = next(e for e in first if e["type"] == "continueToNextStep")["checkpoint"]["id"]
    (tmp_path / "perstack.toml").write_text('[experts."solo"]\ninstruction = "Say hi."\n')
    fake_llm.script(reply_tool_calls([("attemptCompletion", {})]), reply_text("hi"))
    forked = run_gpt41("solo", "", "--fork-from", point, cwd=tmp_path, env=fake_llm.env())
    assert forked.returncode == 0, forked.stderr
    stream = events(forked.stdout)
    assert stream[-2]["text"] == "hi"
    assert stream[0]["jobId"] != first[0]["jobId"]
    assert "Say hi." in fake_llm.requests[-2]["messages"][0]["content"]
    missing = run_gpt41("solo", "", "--fork-from", "nope", cwd=tmp_path, env=fake_llm.env())
    assert missing.returncode == 2
    assert "Checkpoint 'nope' not found in any job of" in missing.stderr


async def test_a_fork_from_an_interactive_stop_takes_another_answer(tmp_path: Path) -> None:
    """What if the user had answered otherwise: fork from the waiting checkpoint with -i."""
    from tests.runtime.test_delegation import TEAM as ASKER_TEAM

    asker = ScriptedModel([call("askColor", question="Which colour?")])
    config = parse_config(ASKER_TEAM, path=tmp_path / "perstack.toml")

    async def asker_run(model: Any, query: str, **overrides: Any) -> Any:
        setting = RunSetting(expert_key="asker", query=query, workspace=tmp_path, **overrides)
        return await run(setting, None, model=model, config=config)

    waiting = await asker_run(asker, "paint it")
    assert waiting.status == "stoppedByInteractiveTool"
    point = Jobs(tmp_path / "perstack").checkpoints(waiting.job_id)[-1]
    answered = ScriptedModel([call("attemptCompletion"), reply("painted it green")])
    forked = await asker_run(answered, "green", fork_from=point.id, interactive_answer=True)
    assert forked.status == "completed" and forked.job_id != waiting.job_id
    seen = json.dumps([m.model_dump(mode="json") for m in answered.requests[0].messages])
    assert "green" in seen


async def test_a_follow_up_on_a_fork_goes_on_from_the_fork(tmp_path: Path) -> None:
    first = await go(tmp_path, team())
    point = next(
        c
        for c in Jobs(tmp_path / "perstack").checkpoints(first.job_id)
        if c.expert_key == "@team/coder"
    )
    model = scripted_team(
        {
            "You write code, in Rust.": [call("attemptCompletion"), reply("built in Rust")],
            "You lead the team.": [reply("shipped in Rust")],
        }
    )
    forked = await go(tmp_path, model, EDITED, query="", fork_from=point.id)
    follow = ScriptedModel([reply("and tested")])
    done = await go(tmp_path, follow, EDITED, query="and now?", continue_job=forked.job_id)
    assert done.status == "completed", done.error
    seen = json.dumps([m.model_dump(mode="json") for m in follow.requests[0].messages])
    assert "shipped in Rust" in seen and "and now?" in seen


async def test_a_refused_fork_leaves_no_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime import ConfigError

    first = await go(tmp_path, team())
    point = Jobs(tmp_path / "perstack").checkpoints(first.job_id)[0]
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    setting = RunSetting(
        expert_key="lead", query="", workspace=tmp_path, provider="openai", fork_from=point.id
    )
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        await run(setting, None, config=parse_config(TEAM, path=tmp_path / "x"))
    assert Jobs(tmp_path / "perstack").ids() == [first.job_id]


def test_a_fork_is_not_replayed_from_a_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from runtime.replay import main

    first = asyncio.run(go(tmp_path, team()))
    point = Jobs(tmp_path / "perstack").checkpoints(first.job_id)[0]
    model = scripted_team({"You lead the team.": [reply("again")], "You write code.": [reply("x")]})
    forked = asyncio.run(go(tmp_path, model, query="", fork_from=point.id))
    assert main([forked.job_id], workspace=tmp_path) == 2
    err = capsys.readouterr().err
    assert f"Job {forked.job_id} is a fork of job {first.job_id}" in err
    assert f"Replay {first.job_id}, or fork it again" in err
