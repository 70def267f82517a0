"""Eval sets fanned out on a real local Ray cluster on 127.0.0.1 (issue 18, items 3 and 4).

The cases' model calls go to the local fake OpenAI server, and every worker stores its jobs in a
bucket of moto's S3 server (``PERSTACK_STORAGE_URL``), read back from an empty folder to prove
the bucket holds them. One test kills the worker running a case: Ray runs the task again and the
bucket ends with one complete job per case.
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
from runtime.jobs import Jobs
from tests.evals.helpers import TEAM, answer, parse_json
from tests.fakellm import FakeLLM, Reply, reply_delay
from tests.storage.s3server import S3Server
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


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.close()


@pytest.fixture
def store(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A bucket of its own: the environment that stores jobs in it (this process's too)."""
    env = s3.env(s3.new_bucket())
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PERSTACK_STORAGE_PATH", raising=False)
    return env


def stored_jobs(elsewhere: Path) -> list[Any]:
    """The jobs in the bucket, read from a folder that has never seen them."""
    elsewhere.mkdir()
    return Jobs.for_workspace(elsewhere).list_jobs()


def test_eval_ray_runs_every_case_on_a_local_cluster(
    tmp_path: Path, fake_llm: FakeLLM, store: dict[str, str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "perstack.toml").write_text(TEAM)
    (project / "evals.toml").write_text(many_cases(CASES))
    fake_llm.default = answer
    env = {**fake_llm.env(), **store}
    done = perstack("eval", "evals.toml", "--ray", "--json", cwd=project, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    data = parse_json(done.stdout)
    assert [case["name"] for case in data["cases"]] == [f"case {i}" for i in range(CASES)]
    assert all(case["passed"] for case in data["cases"])
    # One job per case in the bucket, each complete, named by the eval run and the case number.
    jobs = stored_jobs(tmp_path / "elsewhere")
    assert sorted(job.id for job in jobs) == sorted(case["jobId"] for case in data["cases"])
    assert {job.status for job in jobs} == {"completed"}
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
    tmp_path: Path, fake_llm: FakeLLM, store: dict[str, str], cluster: None
) -> None:
    from runtime.evals import load_eval_set
    from runtime.fanout import run_on_ray

    project = tmp_path / "project"
    project.mkdir()
    (project / "perstack.toml").write_text(TEAM)
    slow = 3
    (project / "evals.toml").write_text(many_cases(CASES, slow=slow))
    root = Jobs.for_workspace(project).root  # the bucket's cache folder on this machine
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
        eval_set = load_eval_set(project / "evals.toml")
        outcome["run"] = run_on_ray(
            eval_set, config_path=project / "perstack.toml", storage_root=root, address=None
        )

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    assert first_attempt.wait(120), "the slow case never asked the model"
    lock = next(_wait_for(lambda: list((root / "jobs").glob(f"*-{slow}/job.lock"))))
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
    jobs = stored_jobs(tmp_path / "elsewhere")
    # Exactly one job per case in the bucket, all complete: the dead attempt's half job was
    # replaced.
    assert sorted(job.id for job in jobs) == sorted(case.job_id for case in run.cases)
    assert {job.status for job in jobs} == {"completed"}


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
    """Locally, in the workspace's folder (no store)."""
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
    assert len(Jobs.for_workspace(tmp_path).ids()) == 2
