"""`perstack run`, `log`, `--continue` and `replay` on an S3 bucket, as a user runs them.

Real processes, the fake OpenAI server and moto's S3 server. Every command after the first runs
in a folder of its own, empty but for perstack.toml: what it finds, it found in the bucket.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from runtime.schema.checkpoint import Checkpoint
from tests.fakellm import FakeLLM, reply_delay, reply_text, reply_tool_calls
from tests.storage.s3server import S3Server, free_port

ROOT = Path(__file__).resolve().parents[2]
TOML = '[experts."helper"]\ndescription = "Helps"\ninstruction = "Help."\n'
MODEL = ("--provider", "openai", "--model", "gpt-4.1")


def workspace(tmp_path: Path, name: str, *, toml: bool = True) -> Path:
    path = tmp_path / name
    path.mkdir()
    if toml:
        (path / "perstack.toml").write_text(TOML)
    return path


def perstack(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "studio", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def start(cwd: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "studio", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def wait_for_requests(fake: FakeLLM, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(fake.requests) < count:
        assert time.monotonic() < deadline, f"only {len(fake.requests)} requests arrived"
        time.sleep(0.02)


@pytest.fixture
def env(fake_llm: FakeLLM, s3_env: dict[str, str]) -> dict[str, str]:
    return {**fake_llm.process_env(), **s3_env}


def test_a_run_is_stored_in_the_bucket_and_logged_from_an_empty_folder(
    tmp_path: Path, fake_llm: FakeLLM, env: dict[str, str], s3: S3Server, bucket: str
) -> None:
    fake_llm.script(
        reply_tool_calls([("writeTextFile", {"path": "a.txt", "text": "hi"})]),
        reply_tool_calls([("attemptCompletion", {})]),
        reply_text("Wrote a.txt"),
    )
    here = workspace(tmp_path, "here")
    ran = perstack(here, env, "run", "helper", "write a.txt", *MODEL)
    assert ran.returncode == 0, ran.stderr
    job_id = events(ran.stdout)[0]["jobId"]
    assert not (here / "perstack" / "jobs").exists()
    keys = s3.keys(bucket)
    assert f"jobs/{job_id}/job.json" in keys
    assert sum("/checkpoints/" in key for key in keys) == 2
    assert json.loads(s3.read(bucket, f"jobs/{job_id}/job.json"))["status"] == "completed"

    elsewhere = workspace(tmp_path, "elsewhere", toml=False)
    shown = perstack(elsewhere, env, "log")
    assert shown.returncode == 0, shown.stderr
    assert f"Job: {job_id} (completed)" in shown.stdout
    assert "Result: Wrote a.txt" in shown.stdout
    assert f"Storage: s3://{bucket}" in shown.stdout  # the store, not the cache folder
    as_json = perstack(workspace(tmp_path, "third", toml=False), env, "log", "--json")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert json.dumps(document).count(job_id) > 0
    stored = [e["type"] for e in events(ran.stdout) if not e["type"].startswith("stream")]
    assert "completeRun" in stored


def test_replay_and_continue_from_fresh_folders(
    tmp_path: Path, fake_llm: FakeLLM, env: dict[str, str]
) -> None:
    fake_llm.script(
        reply_tool_calls([("writeTextFile", {"path": "a.txt", "text": "hi"})]),
        reply_text("first"),
    )
    first = perstack(workspace(tmp_path, "a"), env, "run", "helper", "start", *MODEL)
    assert first.returncode == 0, first.stderr
    job_id = events(first.stdout)[0]["jobId"]

    fake_llm.reset()
    replayed = perstack(workspace(tmp_path, "b"), env, "replay", job_id, *MODEL)
    assert replayed.returncode == 0, replayed.stderr
    assert fake_llm.requests == [], "every model call answered by the recording in the bucket"
    assert f"replayed job {job_id} (1 run)" in replayed.stderr

    fake_llm.script(reply_text("second"))
    more = perstack(
        workspace(tmp_path, "c"), env, "run", "helper", "go on", "--continue-job", job_id, *MODEL
    )
    assert more.returncode == 0, more.stderr
    lines = events(more.stdout)
    assert lines[0]["jobId"] == job_id
    assert lines[-2]["type"] == "completeRun" and lines[-2]["stepNumber"] == 3
    sent = fake_llm.requests[0]["messages"]
    assert any(m["role"] == "tool" for m in sent), "step 1's tool result came from the bucket"
    assert sent[-1] == {"role": "user", "content": "go on"}
    listed = perstack(workspace(tmp_path, "d", toml=False), env, "log", "--job", job_id)
    assert listed.stdout.count("startRun") == 2, listed.stdout


def test_a_second_writer_is_refused_and_a_killed_ones_job_goes_on_elsewhere(
    tmp_path: Path, fake_llm: FakeLLM, env: dict[str, str], s3: S3Server, bucket: str
) -> None:
    fake_llm.script(
        reply_tool_calls([("writeTextFile", {"path": "a.txt", "text": "step one"})]),
        reply_delay(60, reply_text("never")),
    )
    first = start(workspace(tmp_path, "a"), env, "run", "helper", "write", *MODEL)
    wait_for_requests(fake_llm, 2)  # step 1 is stored; step 2 is generating
    job_id = next(key.split("/")[1] for key in s3.keys(bucket) if key.endswith("job.lock"))

    other = workspace(tmp_path, "b")
    refused = perstack(other, env, "run", "helper", "me too", "--continue-job", job_id, *MODEL)
    assert refused.returncode == 2
    assert f"Job {job_id} is already running in PID {first.pid}" in refused.stderr
    assert refused.stdout == ""
    shown = perstack(workspace(tmp_path, "c", toml=False), env, "log", "--job", job_id)
    assert f"Job: {job_id} (running)" in shown.stdout

    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    for key in s3.keys(bucket):
        if "/checkpoints/" in key:  # a checkpoint object is whole, or not there
            Checkpoint.model_validate_json(s3.read(bucket, key))

    fake_llm.reset()
    fake_llm.script(reply_text("picked up"))
    resumed = perstack(other, env, "run", "helper", "please go on", "--continue", *MODEL)
    assert resumed.returncode == 0, resumed.stderr
    assert f"taking over the lock of job {job_id} left by PID {first.pid}" in resumed.stderr
    assert events(resumed.stdout)[-2]["type"] == "completeRun"
    sent = fake_llm.requests[0]["messages"]
    assert any(m["role"] == "tool" and "step one" in m["content"] for m in sent)
    assert not any(key.endswith("job.lock") for key in s3.keys(bucket))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"PERSTACK_STORAGE_URL": "gs://bucket/x"}, "is not an object store URL: use s3://"),
        ({"AWS_ENDPOINT_URL": "unreachable"}, "the endpoint cannot be reached"),
        ({"PERSTACK_STORAGE_URL": "s3://no-such-bucket"}, "'no-such-bucket' does not exist"),
    ],
)
def test_a_store_that_cannot_be_used_is_said_before_anything_runs(
    tmp_path: Path,
    fake_llm: FakeLLM,
    env: dict[str, str],
    change: dict[str, str],
    message: str,
) -> None:
    if change.get("AWS_ENDPOINT_URL") == "unreachable":
        change = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    broken = {**env, **change}
    here = workspace(tmp_path, "here")
    ran = perstack(here, broken, "run", "helper", "go", *MODEL)
    assert ran.returncode == 2
    assert ran.stdout == ""
    assert "perstack: Storage error: " in ran.stderr and message in ran.stderr
    assert "Traceback" not in ran.stderr
    assert fake_llm.requests == []
    logged = perstack(here, broken, "log")
    assert logged.returncode == 2
    assert message in logged.stderr and "Traceback" not in logged.stderr


WITHOUT_OBSTORE = """
import sys
sys.modules["obstore"] = None  # as if the scale extra were not installed
from studio.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_the_scale_extra_the_url_says_how_to_install_it(
    tmp_path: Path, env: dict[str, str]
) -> None:
    here = workspace(tmp_path, "here")
    for args in (("run", "helper", "go", *MODEL), ("log",)):
        result = subprocess.run(
            [sys.executable, "-c", WITHOUT_OBSTORE, *args],
            cwd=here,
            env={**env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert "pip install 'perstack-studio[scale]'" in result.stderr
        assert "Traceback" not in result.stderr


LOADED = """
import json, sys
from runtime.cli import lean_start, main
lean_start()
code = main(sys.argv[1:])
print(json.dumps([code, "obstore" in sys.modules, "runtime.jobs.remote" in sys.modules]),
      file=sys.stderr)
"""


def test_nothing_of_the_store_is_imported_without_the_url(
    tmp_path: Path, fake_llm: FakeLLM, env: dict[str, str]
) -> None:
    for with_url in (False, True):
        fake_llm.script(reply_text("done"))
        environ = {**env, "PYTHONPATH": str(ROOT)}
        if not with_url:
            environ.pop("PERSTACK_STORAGE_URL")
        result = subprocess.run(
            [sys.executable, "-c", LOADED, "helper", "go", *MODEL],
            cwd=workspace(tmp_path, f"url-{with_url}"),
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert json.loads(result.stderr.strip().splitlines()[-1]) == [0, with_url, with_url]
    assert os.environ.get("PERSTACK_STORAGE_URL")  # the test's own process is unchanged


async def test_a_job_run_elsewhere_is_followed_through_the_bucket(
    tmp_path: Path, fake_llm: FakeLLM, env: dict[str, str]
) -> None:
    from runtime.jobs import Jobs

    fake_llm.script(
        reply_tool_calls([("writeTextFile", {"path": "a.txt", "text": "hi"})]),
        reply_delay(1.5, reply_text("done")),
    )
    writer = start(workspace(tmp_path, "a"), env, "run", "helper", "write", *MODEL)
    wait_for_requests(fake_llm, 2)  # step 1 is stored; step 2 is generating
    jobs = Jobs.for_workspace(workspace(tmp_path, "b", toml=False))
    job_id = jobs.ids()[0]
    assert jobs.is_live(job_id)
    followed = [event.type async for event in jobs.follow(job_id)]
    writer.communicate(timeout=60)
    assert writer.returncode == 0
    assert followed[0] == "initializeRuntime"
    assert followed[-2:] == ["completeRun", "skillDisconnected"]
    assert followed.count("startGeneration") == 2
    assert not jobs.is_live(job_id)
    assert jobs.get(job_id).status == "completed"


def test_perstack_toml_can_name_the_store(
    tmp_path: Path, fake_llm: FakeLLM, env: dict[str, str], s3: S3Server, bucket: str
) -> None:
    """``storageUrl`` in perstack.toml chooses the store when the variable is not set."""
    url = env.pop("PERSTACK_STORAGE_URL")
    configured = f'storageUrl = "{url}"\n' + TOML
    fake_llm.script(reply_text("stored by the file's choice"))
    here = workspace(tmp_path, "here", toml=False)
    (here / "perstack.toml").write_text(configured)
    ran = perstack(here, env, "run", "helper", "hi", *MODEL)
    assert ran.returncode == 0, ran.stderr
    job_id = events(ran.stdout)[0]["jobId"]
    assert f"jobs/{job_id}/job.json" in s3.keys(bucket)
    assert not (here / "perstack" / "jobs").exists()

    # Another folder whose perstack.toml names the same store sees the job: log and replay.
    there = workspace(tmp_path, "there", toml=False)
    (there / "perstack.toml").write_text(configured)
    shown = perstack(there, env, "log")
    assert shown.returncode == 0, shown.stderr
    assert f"Job: {job_id} (completed)" in shown.stdout
    assert f"Storage: {url}" in shown.stdout
    replayed = perstack(there, env, "replay", job_id, *MODEL)
    assert replayed.returncode == 0, replayed.stderr
    # Without the key, the folder's own storage: the job is not there.
    plain = workspace(tmp_path, "plain")
    assert job_id not in perstack(plain, env, "log").stdout
