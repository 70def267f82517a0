"""One writer per job, and an honest status for jobs whose process stopped or died.

Real ``perstack`` processes against the fake OpenAI server: a delayed reply keeps a run
mid-generation while it is signalled, and the tests wait on the events it prints, never on a clock.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runtime.errors import JobLockedError
from runtime.jobs import Jobs
from runtime.jobs.lock import LOCK_FILE, acquire_job_lock, job_is_live, job_status
from tests.fakellm import FakeLLM, reply_delay, reply_text, reply_tool_calls

TOML = """
[experts."helper"]
description = "Helps"
instruction = "Help."
"""

MODEL = ("--provider", "openai", "--model", "gpt-4.1")


class Process:
    """A ``perstack`` subprocess whose stdout lines are read as they come."""

    def __init__(self, workspace: Path, fake: FakeLLM, *args: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "studio", *args],
            cwd=workspace,
            env=fake.process_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for_line(self, wanted: Callable[[str], bool], timeout: float = 60) -> str:
        """Read stdout until a line matches (fails at end of output or after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"output ended before the line came: {self.lines}")
            self.lines.append(line)
            if wanted(line):
                return line

    def finish(self, timeout: float = 60) -> tuple[list[str], str]:
        """Wait for the exit; return every stdout line and the whole stderr."""
        assert self.popen.stderr is not None
        err = self.popen.stderr.read()
        self.popen.wait(timeout=timeout)
        while (line := self._queue.get(timeout=timeout)) is not None:
            self.lines.append(line)
        assert self.popen.stdout is not None
        self.popen.stdout.close()
        self.popen.stderr.close()
        return self.lines, err


def event_type(kind: str, step: int | None = None) -> Callable[[str], bool]:
    def match(line: str) -> bool:
        event = json.loads(line)
        return bool(event["type"] == kind and (step is None or event.get("stepNumber") == step))

    return match


def wait_for_requests(fake: FakeLLM, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(fake.requests) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(fake.requests)} requests arrived")
        time.sleep(0.02)


def perstack(workspace: Path, fake: FakeLLM, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "studio", *args],
        cwd=workspace,
        env=fake.process_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def only_job(workspace: Path) -> tuple[str, dict[str, Any]]:
    (folder,) = (workspace / "perstack" / "jobs").iterdir()
    return folder.name, json.loads((folder / "job.json").read_text())


def logged(workspace: Path, fake: FakeLLM) -> dict[str, Any]:
    result = perstack(workspace, fake, "log", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def logged_status(workspace: Path, fake: FakeLLM) -> str:
    return str(logged(workspace, fake)["job"]["status"])


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "perstack.toml").write_text(TOML)
    return tmp_path


def test_a_live_job_refuses_a_second_writer_until_its_holder_dies(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        reply_tool_calls([("writeTextFile", {"path": "done.txt", "text": "step one"})]),
        reply_delay(60, reply_text("never")),
    )
    first = Process(workspace, fake_llm, "run", "helper", "take your time", *MODEL)
    first.wait_for_line(event_type("startGeneration", step=2))
    wait_for_requests(fake_llm, 2)  # mid-generation of step 2, holding the job
    job_id, job = only_job(workspace)
    assert job["status"] == "running"
    lock = json.loads((workspace / "perstack/jobs" / job_id / LOCK_FILE).read_text())
    assert lock["pid"] == first.popen.pid and isinstance(lock["startedAt"], int)
    assert logged_status(workspace, fake_llm) == "running"
    assert [j.status for j in Jobs.for_workspace(workspace).list_jobs()] == ["running"]

    second = perstack(workspace, fake_llm, "run", "helper", "me too", "--continue", *MODEL)
    assert second.returncode == 2, second.stderr
    assert f"is already running in PID {first.popen.pid} (started " in second.stderr
    assert "Traceback" not in second.stderr
    assert second.stdout == ""
    assert len(list((workspace / "perstack/jobs" / job_id / "runs").iterdir())) == 1
    assert len(fake_llm.requests) == 2  # the refused continuation never called the model

    first.popen.send_signal(signal.SIGKILL)
    first.finish()
    assert only_job(workspace)[1]["status"] == "running"  # as the killed process left it
    log = logged(workspace, fake_llm)
    assert log["job"]["status"] == "interrupted"
    assert [run["status"] for run in log["runs"]] == ["interrupted"]  # no final event, dead
    assert "(interrupted)" in perstack(workspace, fake_llm, "log").stdout
    assert [j.status for j in Jobs.for_workspace(workspace).list_jobs()] == ["interrupted"]

    fake_llm.reset()
    fake_llm.script(reply_text("done now"))
    third = perstack(workspace, fake_llm, "run", "helper", "go on", "--continue", *MODEL)
    assert third.returncode == 0, third.stderr
    assert (
        f"taking over the lock of job {job_id} left by PID {first.popen.pid} (started "
        in third.stderr
    )
    assert "which is no longer running" in third.stderr
    assert json.loads(third.stdout.splitlines()[-2])["type"] == "completeRun"
    assert only_job(workspace)[1]["status"] == "completed"
    assert (workspace / "perstack/jobs" / job_id / LOCK_FILE).read_text() == ""  # released


def interrupted_then_continued(
    workspace: Path, fake_llm: FakeLLM, process: Process, started: Callable[[str], bool]
) -> tuple[list[str], str]:
    """Ctrl+C ``process`` mid-generation of step 2; check the job; continue it to the end."""
    process.wait_for_line(started)
    wait_for_requests(fake_llm, 2)  # step 1 wrote the file; step 2 is generating
    process.popen.send_signal(signal.SIGINT)
    lines, err = process.finish()
    assert process.popen.returncode == 130, err
    assert err.splitlines() == [
        "perstack: interrupted; the last checkpoint is saved (continue with --continue)"
    ]
    job_id, job = only_job(workspace)
    assert job["status"] == "interrupted"
    assert job["finishedAt"] is not None and job["totalSteps"] == 2
    log = logged(workspace, fake_llm)
    assert log["job"]["status"] == "interrupted"
    assert [run["status"] for run in log["runs"]] == ["interrupted"]
    text = perstack(workspace, fake_llm, "log").stdout
    assert f"Job: {job_id} (interrupted)" in text
    assert not job_is_live(workspace / "perstack/jobs" / job_id)

    fake_llm.reset()
    fake_llm.script(reply_text("picked up where I stopped"))
    resumed = perstack(workspace, fake_llm, "run", "helper", "please go on", "--continue", *MODEL)
    assert resumed.returncode == 0, resumed.stderr
    assert "warning" not in resumed.stderr  # a clean release: nothing to take over
    assert json.loads(resumed.stdout.splitlines()[-2])["type"] == "completeRun"
    sent = fake_llm.requests[0]["messages"]
    assert any(m["role"] == "tool" and "step one" in m["content"] for m in sent)
    assert sent[-1] == {"role": "user", "content": "please go on"}
    assert only_job(workspace)[1]["status"] == "completed"
    return lines, err


def test_ctrl_c_in_perstack_run_ends_the_job_as_interrupted(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        reply_tool_calls([("writeTextFile", {"path": "done.txt", "text": "step one"})]),
        reply_delay(60, reply_text("never")),
    )
    process = Process(workspace, fake_llm, "run", "helper", "write a file", *MODEL)
    lines, _ = interrupted_then_continued(
        workspace, fake_llm, process, event_type("startGeneration", step=2)
    )
    stops = [json.loads(line) for line in lines if '"stopRunByError"' in line]
    assert len(stops) == 1
    assert stops[0]["error"]["name"] == "Interrupted"
    assert "SIGINT" in stops[0]["error"]["message"]
    assert stops[0]["checkpoint"]["status"] == "stoppedByError"


def test_ctrl_c_in_start_without_a_terminal_is_one_line_and_continues(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        reply_tool_calls([("writeTextFile", {"path": "done.txt", "text": "step one"})]),
        reply_delay(60, reply_text("never")),
    )
    process = Process(workspace, fake_llm, "start", "helper", "write a file", "--no-tui", *MODEL)
    lines, _ = interrupted_then_continued(
        workspace, fake_llm, process, lambda line: "✓ writeTextFile" in line
    )
    assert "■ helper interrupted at step 2" in lines


def test_a_new_job_with_the_id_of_a_live_one_is_refused(tmp_path: Path) -> None:
    warnings: list[str] = []
    job_dir = tmp_path / "jobs" / "job1"
    with acquire_job_lock(job_dir, warn=warnings.append):
        assert job_is_live(job_dir)
        assert job_status(job_dir, "running") == "running"
        with pytest.raises(JobLockedError, match=f"PID {os.getpid()} "):
            acquire_job_lock(job_dir, warn=warnings.append)  # the same process counts too
    assert not job_is_live(job_dir)
    assert job_status(job_dir, "running") == "interrupted"
    assert job_status(job_dir, "completed") == "completed"
    with acquire_job_lock(job_dir, warn=warnings.append):
        pass
    assert warnings == []  # released cleanly each time
    # A job that never had a lock file (Perstack's) has no holder.
    assert not job_is_live(tmp_path / "jobs" / "perstack-job")


def test_a_folder_holding_only_a_lock_is_not_a_job(tmp_path: Path) -> None:
    # A process killed between taking a new job's lock and writing its job.json leaves this;
    # --continue must still find the newest real job, not fail on the empty folder.
    from runtime.jobs.store import Storage
    from runtime.schema.checkpoint import Job

    storage = Storage(tmp_path)
    storage.store_job(
        Job(id="real", status="completed", coordinator_expert_key="x", max_steps=10, started_at=1)
    )
    orphan = storage.job_dir("orphan")
    orphan.mkdir(parents=True)
    (orphan / "job.lock").write_text("")
    assert storage.job_ids() == ["real"]
