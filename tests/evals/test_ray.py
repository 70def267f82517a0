"""Eval sets fanned out on a real local Ray cluster on 127.0.0.1 (issue 18, items 3 and 4).

The cases' model calls go to the local fake OpenAI server; each worker writes to the storage the
driver names. One test kills the worker running a case: Ray runs the task again and storage ends
with one complete job per case.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import UsageError
from tests.evals.helpers import TEAM, answer, parse_json
from tests.fakellm import FakeLLM, Reply, reply_delay
from tests.test_cli_run import perstack

ray = pytest.importorskip("ray", reason="the scale extra (Ray) is not installed")

CASES = 10


def many_cases(count: int, slow: int | None = None) -> str:
    lines = ['[eval]\nname = "fan-out"\nexpert = "writer"\n']
    for index in range(count):
        name = "slow" if index == slow else f"file{index}"
        lines.append(
            f'[[cases]]\nname = "case {index}"\nquery = "write {name}.txt: text {index}"\n'
            f'[[cases.checks]]\ntype = "fileContains"\npath = "{name}.txt"\ntext = "text {index}"\n'
        )
    return "\n".join(lines)


def stored_jobs(root: Path) -> list[dict[str, Any]]:
    return [
        json.loads((folder / "job.json").read_text())
        for folder in sorted((root / "perstack" / "jobs").iterdir())
    ]


def test_eval_ray_runs_every_case_on_a_local_cluster(tmp_path: Path, fake_llm: FakeLLM) -> None:
    (tmp_path / "perstack.toml").write_text(TEAM)
    (tmp_path / "evals.toml").write_text(many_cases(CASES))
    fake_llm.default = answer
    done = perstack("eval", "evals.toml", "--ray", "--json", cwd=tmp_path, env=fake_llm.env())
    assert done.returncode == 0, done.stderr[-3000:]
    data = parse_json(done.stdout)
    assert [case["name"] for case in data["cases"]] == [f"case {i}" for i in range(CASES)]
    assert all(case["passed"] for case in data["cases"])
    # One job per case, each complete, named by the eval run and the case's number.
    jobs = stored_jobs(tmp_path)
    assert sorted(job["id"] for job in jobs) == sorted(case["jobId"] for case in data["cases"])
    assert {job["status"] for job in jobs} == {"completed"}
    assert all(case["jobId"].startswith(data["id"] + "-") for case in data["cases"])
    assert f"[{CASES}/{CASES}] PASS" in done.stderr  # progress, one line per finished case


@pytest.fixture
def cluster(fake_llm: FakeLLM) -> Iterator[None]:
    """A local 2-worker Ray cluster whose workers reach the fake model server."""
    saved = dict(os.environ)
    os.environ.update(fake_llm.env())  # the workers inherit the driver's environment
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        os.environ.clear()
        os.environ.update(saved)


def test_a_killed_worker_is_retried_and_nothing_is_lost_or_duplicated(
    tmp_path: Path, fake_llm: FakeLLM, cluster: None
) -> None:
    from runtime.evals import load_eval_set
    from runtime.fanout import run_on_ray

    (tmp_path / "perstack.toml").write_text(TEAM)
    slow = 3
    (tmp_path / "evals.toml").write_text(many_cases(CASES, slow=slow))
    first_attempt = threading.Event()

    def script(body: dict[str, Any]) -> Reply:
        # The slow case's first request hangs (long enough to be killed in); its retry does not.
        if "slow.txt" in json.dumps(body["messages"]) and not first_attempt.is_set():
            first_attempt.set()
            return reply_delay(60, answer(body))  # type: ignore[arg-type]
        return answer(body)

    fake_llm.default = script
    outcome: dict[str, Any] = {}

    def drive() -> None:
        eval_set = load_eval_set(tmp_path / "evals.toml")
        outcome["run"] = run_on_ray(
            eval_set,
            config_path=tmp_path / "perstack.toml",
            storage_root=tmp_path / "perstack",
            address=None,
        )

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    assert first_attempt.wait(120), "the slow case never asked the model"
    lock = next(
        _wait_for(lambda: list((tmp_path / "perstack" / "jobs").glob(f"*-{slow}/job.lock")))
    )
    pid = json.loads(lock.read_text())["pid"]
    os.kill(pid, signal.SIGKILL)  # the worker dies mid-case
    driver.join(300)
    assert not driver.is_alive()

    run = outcome["run"]
    # The slow case asked its first question twice: once on the killed worker, once on retry.
    firsts = [
        body
        for body in fake_llm.requests
        if "slow.txt" in json.dumps(body["messages"])
        and not any(m["role"] == "tool" for m in body["messages"])
        and "You write the file" in json.dumps(body["messages"][0])
    ]
    assert len(firsts) == 2
    assert all(case.passed for case in run.cases), [c.error for c in run.cases]
    assert len(run.cases) == CASES
    jobs = stored_jobs(tmp_path)
    # Exactly one job per case, all complete: the dead attempt's half job was replaced.
    assert sorted(job["id"] for job in jobs) == sorted(case.job_id for case in run.cases)
    assert {job["status"] for job in jobs} == {"completed"}


def _wait_for(found: Any) -> Iterator[Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        items = found()
        if items:
            yield from items
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_without_ray_the_flag_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.fanout import require_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UsageError, match=r"pip install 'perstack-studio\[scale\]'"):
        require_ray()


def test_batch_runs_one_job_per_query(tmp_path: Path, fake_llm: FakeLLM) -> None:
    (tmp_path / "perstack.toml").write_text(TEAM)
    (tmp_path / "queries.txt").write_text(
        "# one job per line\nwrite a.txt: alpha\n\nwrite b.txt: beta\n"
    )
    fake_llm.default = answer
    done = perstack(
        "batch", "writer", "--queries", "queries.txt", "--json", cwd=tmp_path, env=fake_llm.env()
    )
    assert done.returncode == 0, done.stderr
    cases = parse_json(done.stdout)["cases"]
    assert [case["name"] for case in cases] == ["1 write a.txt: alpha", "2 write b.txt: beta"]
    assert all(case["status"] == "completed" for case in cases)
    assert len(stored_jobs(tmp_path)) == 2
