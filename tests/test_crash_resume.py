"""A run killed with SIGKILL at any point continues from its last complete checkpoint."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakellm import FakeLLM, reply_delay, reply_text, reply_tool_calls

TOML = """
[experts."lead"]
instruction = "Lead."
delegates = ["helper"]

[experts."helper"]
description = "Helps"
instruction = "Help."
"""


def start(workspace: Path, fake: FakeLLM, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "studio",
            "run",
            *args,
            "--provider",
            "openai",
            "--model",
            "gpt-4.1",
        ],
        cwd=workspace,
        env=fake.process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_requests(fake: FakeLLM, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(fake.requests) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(fake.requests)} requests arrived")
        time.sleep(0.02)


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "perstack.toml").write_text(TOML)
    return tmp_path


def test_killed_mid_generation_continues_with_completed_steps(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        reply_tool_calls([("writeTextFile", {"path": "done.txt", "text": "step one"})]),
        reply_delay(60, reply_text("never")),
    )
    process = start(workspace, fake_llm, "helper", "write a file")
    wait_for_requests(fake_llm, 2)  # step 1 finished, step 2 is generating
    kill(process)
    assert (workspace / "done.txt").read_text() == "step one"

    fake_llm.reset()
    fake_llm.script(reply_text("picked up where I stopped"))
    resumed = start(workspace, fake_llm, "helper", "please go on", "--continue")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[-2]["type"] == "completeRun"
    assert lines[-2]["stepNumber"] == 2
    sent = fake_llm.requests[0]["messages"]
    # The completed tool call and its result survived the kill.
    assert any(m["role"] == "tool" and "step one" in m["content"] for m in sent)
    assert sent[-1] == {"role": "user", "content": "please go on"}
    job_id = lines[0]["jobId"]
    job = json.loads((workspace / "perstack/jobs" / job_id / "job.json").read_text())
    assert job["status"] == "completed"


def test_killed_while_a_delegate_runs_continues_the_delegation(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        reply_tool_calls([("helper", {"query": "do the part"})]),
        reply_delay(60, reply_text("never")),
    )
    process = start(workspace, fake_llm, "lead", "coordinate")
    wait_for_requests(fake_llm, 2)  # the lead delegated; the helper is generating
    kill(process)

    fake_llm.reset()
    fake_llm.script(reply_text("part done"), reply_text("all done"))
    resumed = start(workspace, fake_llm, "lead", "go on", "--continue")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    flow = [
        f"{e['type']}:{e.get('expertKey')}"
        for e in lines
        if e["type"] in ("startRun", "completeRun")
    ]
    assert flow == ["startRun:helper", "completeRun:helper", "startRun:lead", "completeRun:lead"]
    assert lines[-2]["text"] == "all done"
    tool_messages = [m for m in fake_llm.requests[1]["messages"] if m["role"] == "tool"]
    assert tool_messages[-1]["content"] == "part done"


def test_sigterm_stops_the_run_at_once_and_it_continues(workspace: Path, fake_llm: FakeLLM) -> None:
    """`docker stop` and CI timeouts send SIGTERM: handled like Ctrl+C, exit 143."""
    fake_llm.script(
        reply_tool_calls([("writeTextFile", {"path": "done.txt", "text": "step one"})]),
        reply_delay(60, reply_text("never")),
    )
    process = start(workspace, fake_llm, "helper", "write a file")
    wait_for_requests(fake_llm, 2)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=30)
    took = time.monotonic() - sent
    assert took < 10, took  # not left to hang until a SIGKILL
    assert process.returncode == 143
    assert "terminated; the last checkpoint is saved" in err
    assert "Traceback" not in err

    fake_llm.reset()
    fake_llm.script(reply_text("picked up where I stopped"))
    resumed = start(workspace, fake_llm, "helper", "please go on", "--continue")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert [json.loads(line) for line in out.splitlines()][-2]["type"] == "completeRun"
    assert any(
        m["role"] == "tool" and "step one" in m["content"] for m in fake_llm.requests[0]["messages"]
    )


TEAM = """
[experts."lead"]
instruction = "Lead the team."
delegates = ["helper", "writer"]

[experts."helper"]
description = "Helps"
instruction = "Help with files."

[experts."writer"]
description = "Writes"
instruction = "Write prose."
"""


def by_expert(replies: dict[str, list[Any]]) -> Any:
    """A fake reply chosen by the expert asking (its instruction is in the system prompt)."""

    def reply(body: dict[str, Any]) -> Any:
        system = body["messages"][0]["content"]
        for instruction, queue in replies.items():
            if instruction in system:
                return queue.pop(0)
        raise AssertionError(f"no scripted reply for {system[-200:]!r}")

    return reply


def step_numbers(workspace: Path, job_id: str) -> dict[str, list[int]]:
    """Each run lineage's checkpoint step numbers (lead, and each delegation by tool call)."""
    found: dict[str, list[int]] = {}
    for path in (workspace / "perstack/jobs" / job_id / "checkpoints").glob("*.json"):
        checkpoint = json.loads(path.read_text())
        by = checkpoint.get("delegatedBy")
        lineage = f"{checkpoint['expert']['key']}:{by['toolCallId'] if by else '-'}"
        found.setdefault(lineage, []).append(checkpoint["stepNumber"])
    return found


def test_killed_mid_delegation_reuses_a_finished_delegate_and_resumes_the_other(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    (tmp_path / "perstack.toml").write_text(TEAM)
    fake_llm.default = by_expert(
        {
            "Lead the team.": [
                reply_tool_calls(
                    [("helper", {"query": "make a.txt"}), ("writer", {"query": "a poem"})]
                )
            ],
            "Help with files.": [
                reply_tool_calls([("writeTextFile", {"path": "a.txt", "text": "one"})]),
                reply_delay(60, reply_text("never")),
            ],
            "Write prose.": [reply_text("roses are red")],
        }
    )
    process = start(tmp_path, fake_llm, "lead", "coordinate")
    # lead, helper step 1, writer (done), helper step 2 (generating): kill now.
    wait_for_requests(fake_llm, 4)
    kill(process)
    job_id = next((tmp_path / "perstack/jobs").iterdir()).name

    fake_llm.reset()
    fake_llm.default = by_expert(
        {"Help with files.": [reply_text("a.txt made")], "Lead the team.": [reply_text("all done")]}
    )
    resumed = start(tmp_path, fake_llm, "lead", "go on", "--continue")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[-2]["type"] == "completeRun" and lines[-2]["text"] == "all done"
    # The writer had finished: not asked again. The helper went on from its step 1.
    systems = [request["messages"][0]["content"] for request in fake_llm.requests]
    assert not any("Write prose." in system for system in systems)
    helper = next(r for r in fake_llm.requests if "Help with files." in r["messages"][0]["content"])
    assert any(m["role"] == "tool" and m["tool_call_id"] for m in helper["messages"])
    assert [m["content"] for m in helper["messages"] if m["role"] == "user"] == ["make a.txt"]
    lead = fake_llm.requests[-1]["messages"]
    results = sorted(m["content"] for m in lead if m["role"] == "tool")
    assert results == ["a.txt made", "roses are red"]
    for lineage, steps in step_numbers(tmp_path, job_id).items():
        assert len(steps) == len(set(steps)), f"{lineage} repeats a step number: {sorted(steps)}"


def test_killed_before_its_first_checkpoint_continues_from_its_query(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(reply_delay(60, reply_text("never")))
    process = start(workspace, fake_llm, "helper", "write the report")
    wait_for_requests(fake_llm, 1)
    kill(process)

    fake_llm.reset()
    fake_llm.script(reply_text("report written"))
    resumed = start(workspace, fake_llm, "helper", "go on", "--continue")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[-2]["type"] == "completeRun"
    users = [m["content"] for m in fake_llm.requests[0]["messages"] if m["role"] == "user"]
    assert users == ["write the report\n\ngo on"]
