"""`perstack replay` as a user runs it: real processes and a local fake OpenAI server that counts
the requests it gets (issue 17, item 2)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakellm import FakeLLM, reply_text, reply_tool_calls
from tests.test_cli_run import TOML, events, perstack, run_gpt41


def replay(*args: str, cwd: Path, fake: FakeLLM):  # type: ignore[no-untyped-def]
    return perstack(
        "replay", *args, "--provider", "openai", "--model", "gpt-4.1", cwd=cwd, env=fake.env()
    )


def stored_kinds(stdout: str) -> list[str]:
    return [e["type"] for e in events(stdout) if not e["type"].startswith("stream")]


def test_replay_answers_every_call_from_the_recording(tmp_path: Path, fake_llm: FakeLLM) -> None:
    (tmp_path / "perstack.toml").write_text(TOML)
    fake_llm.script(
        reply_tool_calls([("writeTextFile", {"path": "hello.txt", "text": "hi"})]),
        reply_tool_calls([("attemptCompletion", {})]),
        reply_text("Wrote hello.txt"),
    )
    original = run_gpt41("my-expert", "write hello", cwd=tmp_path, env=fake_llm.env())
    assert original.returncode == 0, original.stderr
    asked = len(fake_llm.requests)
    job_id = events(original.stdout)[0]["jobId"]

    result = replay(cwd=tmp_path, fake=fake_llm)  # the latest job
    assert result.returncode == 0, result.stderr
    assert len(fake_llm.requests) == asked  # zero model requests
    assert stored_kinds(result.stdout) == stored_kinds(original.stdout)
    assert events(result.stdout)[-2]["text"] == "Wrote hello.txt"
    replay_id = events(result.stdout)[0]["jobId"]
    assert replay_id != job_id
    assert f"replayed job {job_id} (1 run) as job {replay_id}: completed" in result.stderr
    job = json.loads((tmp_path / "perstack" / "jobs" / replay_id / "job.json").read_text())
    assert job["origin"] == {"kind": "replay", "jobId": job_id}


def test_a_divergence_exits_1_with_the_report_and_live_goes_on(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    (tmp_path / "perstack.toml").write_text(TOML)
    fake_llm.script(reply_text("hello"))
    original = run_gpt41("my-expert", "say hello", cwd=tmp_path, env=fake_llm.env())
    job_id = events(original.stdout)[0]["jobId"]
    (tmp_path / "perstack.toml").write_text(TOML.replace("Help the user.", "Help the user!"))

    stopped = replay(job_id, cwd=tmp_path, fake=fake_llm)
    assert stopped.returncode == 1
    assert len(fake_llm.requests) == 1
    assert f"replay of job {job_id} diverged at my-expert's model call (step 1)" in stopped.stderr
    assert "recorded: Help the user. ---" in stopped.stderr
    assert "now:      Help the user! ---" in stopped.stderr
    assert f"perstack replay {job_id} --live" in stopped.stderr
    assert "Traceback" not in stopped.stderr

    fake_llm.script(reply_text("hello again"))
    live = replay(job_id, "--live", cwd=tmp_path, fake=fake_llm)
    assert live.returncode == 0, live.stderr
    assert len(fake_llm.requests) == 2
    assert events(live.stdout)[-2]["text"] == "hello again"
    assert "going on with the live model" in live.stderr


def test_a_job_continued_with_an_interactive_answer_replays_both_runs(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    (tmp_path / "perstack.toml").write_text(TOML)
    fake_llm.script(
        reply_tool_calls([("askName", {"q": "Your name?"})]),
        reply_tool_calls([("attemptCompletion", {})]),
        reply_text("Hello, Ada"),
    )
    asked = run_gpt41("asker", "greet me", cwd=tmp_path, env=fake_llm.env())
    assert asked.returncode == 0, asked.stderr
    answered = run_gpt41("asker", "Ada", "--continue", "-i", cwd=tmp_path, env=fake_llm.env())
    assert answered.returncode == 0, answered.stderr
    job_id = events(asked.stdout)[0]["jobId"]
    requests = len(fake_llm.requests)

    result = replay(job_id, cwd=tmp_path, fake=fake_llm)
    assert result.returncode == 0, result.stderr
    assert len(fake_llm.requests) == requests
    assert events(result.stdout)[-2]["text"] == "Hello, Ada"
    assert "(2 runs)" in result.stderr


def test_an_unknown_job_is_a_usage_error(tmp_path: Path, fake_llm: FakeLLM) -> None:
    (tmp_path / "perstack.toml").write_text(TOML)
    result = replay("no-such-job", cwd=tmp_path, fake=fake_llm)
    assert result.returncode == 2
    assert "Job 'no-such-job' not found in" in result.stderr
    assert "Traceback" not in result.stderr
    empty = replay(cwd=tmp_path, fake=fake_llm)
    assert empty.returncode == 2
    assert "No stored jobs in" in empty.stderr
