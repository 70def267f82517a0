"""Jobs on an S3-compatible store, in process: the runtime against moto's real S3 server.

Each test's workspaces are separate folders, so what one reads from another's jobs came through
the bucket. Nothing of ours is replaced; a few tests shorten a lock timing constant.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import obstore
import pytest

from runtime import RunSetting, run
from runtime.config.loader import parse_config
from runtime.errors import ConfigError, JobLockedError, StorageError
from runtime.jobs import Jobs
from runtime.jobs.remote import lease, parse_storage_url
from runtime.jobs.remote.chunks import Chunk, cover
from runtime.jobs.store import Storage, default_storage_root
from runtime.schema.checkpoint import Checkpoint
from runtime.testing import ScriptedModel, call, reply
from tests.storage.s3server import S3Server, free_port

TOML = '[experts."solo"]\ndescription = "Works"\ninstruction = "Do the task."\n'


async def go(workspace: Path, model: ScriptedModel, query: str, **options: Any) -> Checkpoint:
    setting = RunSetting(expert_key="solo", query=query, workspace=workspace, **options)
    config = parse_config(TOML, path=workspace / "perstack.toml")
    return await run(setting, model=model, config=config)


def folder(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


def warnings() -> tuple[list[str], Any]:
    said: list[str] = []
    return said, said.append


async def test_a_job_run_here_reads_the_same_from_another_folder(
    tmp_path: Path, s3: S3Server, bucket: str, s3_env: dict[str, str]
) -> None:
    here, there = folder(tmp_path, "here"), folder(tmp_path, "there")
    model = ScriptedModel([call("writeTextFile", path="a.txt", text="x"), reply("done")])
    final = await go(here, model, "write a.txt")
    assert final.status == "completed"
    assert not (here / "perstack" / "jobs").exists(), "the local folder is not used"
    keys = s3.keys(bucket)
    assert f"jobs/{final.job_id}/job.json" in keys
    assert not any(key.endswith("job.lock") for key in keys), "released"

    mine, theirs = Jobs.for_workspace(here), Jobs.for_workspace(there)
    listed = theirs.list_jobs()
    assert [(job.id, job.status, job.total_steps) for job in listed] == [
        (final.job_id, "completed", 2)
    ]
    assert listed == mine.list_jobs()
    assert theirs.tree(final.job_id) == mine.tree(final.job_id)
    assert theirs.checkpoints(final.job_id) == mine.checkpoints(final.job_id)
    assert list(theirs.events(final.job_id)) == list(mine.events(final.job_id))
    assert theirs.checkpoint(final.job_id, final.id).messages == final.messages


async def test_a_continuation_from_another_folder_goes_on_from_the_bucket(
    tmp_path: Path, s3_env: dict[str, str]
) -> None:
    first = await go(folder(tmp_path, "a"), ScriptedModel([reply("one")]), "start")
    model = ScriptedModel([reply("two")])
    second = await go(folder(tmp_path, "b"), model, "go on", continue_latest=True)
    assert second.job_id == first.job_id
    assert second.step_number == 2
    sent = [m.type for m in model.requests[0].messages]
    assert sent.count("userMessage") == 2, "the first run's conversation came from the bucket"
    jobs = Jobs.for_workspace(folder(tmp_path, "c"))
    assert [run.status for run in jobs.runs(first.job_id)] == ["completed", "completed"]


def test_appended_lines_go_up_as_chunks_and_end_as_one_object(
    tmp_path: Path, s3: S3Server, bucket: str, s3_env: dict[str, str]
) -> None:
    writer = Storage(default_storage_root(folder(tmp_path, "w")))
    reader = Storage(default_storage_root(folder(tmp_path, "r")))
    assert writer.remote is not None and reader.remote is not None
    lock = writer.lock_job("job-1", warn=warnings()[1])
    lines = [json.dumps({"n": n, "timestamp": 1_000 + n}) for n in range(40)]
    for batch in range(4):
        for line in lines[batch * 10 : batch * 10 + 10]:
            writer.append_event("job-1", "run-1", line)
        writer.remote.flush()
        reader.remote.refresh_job("job-1", force=True)
        read = [event.text for event in reader.event_lines("job-1", "run-1")]
        assert read == lines[: batch * 10 + 10], "a reader follows the writer, chunk by chunk"
    events = "jobs/job-1/runs/run-1/events.jsonl.chunks/"
    assert [k for k in s3.keys(bucket) if k.startswith(events)] == [
        f"{events}{n:010d}-{n + 1:010d}" for n in range(4)
    ]
    lock.release()
    assert [k for k in s3.keys(bucket) if k.startswith(events)] == [
        f"{events}0000000000-0000000004"
    ]
    merged = s3.read(bucket, f"{events}0000000000-0000000004")
    assert merged == "".join(line + "\n" for line in lines).encode()
    reader.remote.refresh_job("job-1", force=True)
    assert [event.text for event in reader.event_lines("job-1", "run-1")] == lines
    fresh = Storage(default_storage_root(folder(tmp_path, "fresh")))
    assert [event.text for event in fresh.event_lines("job-1", "run-1")] == lines


def test_cover_takes_the_longest_objects_and_stops_at_a_gap() -> None:
    def chunk(start: int, end: int) -> Chunk:
        return Chunk(start, end, None)  # type: ignore[arg-type]

    parts = [chunk(0, 1), chunk(1, 2), chunk(0, 2), chunk(2, 3), chunk(4, 5)]
    assert [(c.start, c.end) for c in cover(parts)] == [(0, 2), (2, 3)]
    assert cover([chunk(1, 2)]) == []


async def test_a_reader_only_ever_gets_whole_checkpoints(
    tmp_path: Path, s3: S3Server, bucket: str, s3_env: dict[str, str]
) -> None:
    final = await go(folder(tmp_path, "w"), ScriptedModel([reply("x" * 200_000)]), "big")
    writer = Storage(default_storage_root(tmp_path / "w"))
    reader = Storage(default_storage_root(folder(tmp_path, "r")))
    assert writer.remote is not None and reader.remote is not None
    versions = [
        final.model_copy(update={"messages": final.messages * n, "step_number": n})
        for n in range(1, 13)
    ]
    done = threading.Event()

    def write() -> None:
        for version in versions:
            writer.store_checkpoint(version)
            writer.remote.flush()  # type: ignore[union-attr]
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    seen = set()
    while not done.is_set() or not seen:
        reader.remote.refresh_job(final.job_id, force=True)
        loaded = reader.load_checkpoint(final.job_id, final.id)  # raises on half a document
        seen.add(loaded.step_number)
    thread.join()
    assert seen <= {version.step_number for version in versions} | {final.step_number}
    for key in s3.keys(bucket):
        if "/checkpoints/" in key:
            Checkpoint.model_validate_json(s3.read(bucket, key))


def test_a_second_writer_is_refused_while_the_first_holds_the_job(
    tmp_path: Path, s3: S3Server, bucket: str, s3_env: dict[str, str]
) -> None:
    first = Storage(default_storage_root(folder(tmp_path, "one")))
    second = Storage(default_storage_root(folder(tmp_path, "two")))
    lock = first.lock_job("job-1", warn=warnings()[1])
    with pytest.raises(JobLockedError, match=f"already running in PID {os.getpid()}") as refused:
        second.lock_job("job-1", warn=warnings()[1])
    assert refused.value.holder_pid == os.getpid()
    assert second.is_live("job-1")
    assert second.job_status("job-1", "running") == "running"
    lock.release()
    assert "jobs/job-1/job.lock" not in s3.keys(bucket)
    assert not second.is_live("job-1")
    assert second.job_status("job-1", "running") == "interrupted"
    said, warn = warnings()
    second.lock_job("job-1", warn=warn).release()
    assert said == []


def put_lock(s3: S3Server, bucket: str, job_id: str, **record: Any) -> None:
    data = json.dumps({"schemaVersion": "1", "startedAt": 1_700_000_000_000, **record})
    obstore.put(s3.client(bucket), f"jobs/{job_id}/job.lock", data.encode())


def test_a_lock_left_by_a_dead_process_on_this_host_is_taken_over(
    tmp_path: Path, s3: S3Server, bucket: str, s3_env: dict[str, str]
) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    pid = int(dead.stdout)
    put_lock(s3, bucket, "job-1", pid=pid, host=socket.gethostname(), token="old")
    storage = Storage(default_storage_root(folder(tmp_path, "w")))
    assert not storage.is_live("job-1")
    said, warn = warnings()
    lock = storage.lock_job("job-1", warn=warn)
    assert len(said) == 1
    assert f"taking over the lock of job job-1 left by PID {pid}" in said[0]
    held = json.loads(s3.read(bucket, "jobs/job-1/job.lock"))
    assert held["pid"] == os.getpid() and held["token"] != "old"
    lock.release()


def test_a_lock_of_another_host_holds_until_its_heartbeat_is_stale(
    tmp_path: Path,
    s3: S3Server,
    bucket: str,
    s3_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    put_lock(s3, bucket, "job-1", pid=1, host="build-7", token="theirs")
    storage = Storage(default_storage_root(folder(tmp_path, "w")))
    with pytest.raises(JobLockedError, match=r"PID 1 \(started .*, on host build-7\)"):
        storage.lock_job("job-1", warn=warnings()[1])
    monkeypatch.setattr(lease, "STALE_AFTER_S", 1.0)
    deadline = time.monotonic() + 15
    while storage.is_live("job-1"):  # the store's clock says when the heartbeat was
        assert time.monotonic() < deadline
        time.sleep(0.1)
    said, warn = warnings()
    storage.lock_job("job-1", warn=warn).release()
    assert "left by PID 1" in said[0] and "on host build-7" in said[0]


def test_a_holder_that_was_taken_over_stops_writing(
    tmp_path: Path,
    s3: S3Server,
    bucket: str,
    s3_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lease, "HEARTBEAT_S", 0.05)
    storage = Storage(default_storage_root(folder(tmp_path, "w")))
    lock = storage.lock_job("job-1", warn=warnings()[1])
    first = s3.read(bucket, "jobs/job-1/job.lock")
    deadline = time.monotonic() + 10
    while s3.read(bucket, "jobs/job-1/job.lock") == first:  # heartbeats rewrite it
        assert time.monotonic() < deadline
        time.sleep(0.02)
    put_lock(s3, bucket, "job-1", pid=1, host="build-7", token="theirs")  # taken over
    with pytest.raises(StorageError, match="was taken over .*PID 1"):
        while time.monotonic() < deadline:
            storage.append_event("job-1", "run-1", "{}")
            time.sleep(0.02)
    try:
        lock.release()  # says again why the lines queued before it knew were not stored
    except StorageError as error:
        assert "was taken over" in str(error)
    assert json.loads(s3.read(bucket, "jobs/job-1/job.lock"))["token"] == "theirs"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("gs://bucket/x", "is not an object store URL: use s3://BUCKET"),
        ("s3://", "is not an object store URL"),
        ("s3://bucket/../x", "the bucket or prefix has characters"),
        ("s3://b", "the bucket or prefix has characters"),
    ],
)
def test_a_malformed_url_is_a_configuration_error(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_storage_url(url, {})
    with pytest.raises(ConfigError, match="is not an endpoint URL"):
        parse_storage_url("s3://bucket", {"AWS_ENDPOINT_URL": "localhost:9000"})
    address = parse_storage_url("s3://my-bucket/team/a/", {"AWS_ENDPOINT_URL": "http://h:9/"})
    assert (address.bucket, address.prefix, address.endpoint) == (
        "my-bucket",
        "team/a",
        "http://h:9",
    )


def test_an_unreachable_endpoint_or_missing_bucket_is_said_before_anything_runs(
    tmp_path: Path, s3: S3Server, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConfigError, match="the endpoint cannot be reached: check AWS_ENDPOINT_URL"):
        default_storage_root(tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("PERSTACK_STORAGE_URL", "s3://no-such-bucket/x")
    with pytest.raises(ConfigError, match="bucket 'no-such-bucket' does not exist there"):
        default_storage_root(tmp_path)


async def test_a_removed_job_is_gone_from_the_bucket_and_every_cache(
    tmp_path: Path, s3: S3Server, bucket: str, s3_env: dict[str, str]
) -> None:
    kept = await go(folder(tmp_path, "a"), ScriptedModel([reply("kept")]), "one")
    dropped = await go(tmp_path / "a", ScriptedModel([reply("dropped")]), "two")
    here = Jobs.for_workspace(tmp_path / "a")
    assert set(here.ids()) == {kept.job_id, dropped.job_id}
    Storage(default_storage_root(folder(tmp_path, "b"))).remove_job(dropped.job_id)
    assert not any(key.startswith(f"jobs/{dropped.job_id}/") for key in s3.keys(bucket))
    here.storage.remote.refresh_index(force=True)  # type: ignore[union-attr]
    assert here.ids() == [kept.job_id]
    left = here.root / "jobs" / dropped.job_id
    assert not left.exists() or [path.name for path in left.iterdir()] == ["job.lock"]
    holder = Storage(default_storage_root(tmp_path / "a"))
    lock = holder.lock_job(kept.job_id, warn=warnings()[1])
    with pytest.raises(JobLockedError, match="cannot be removed: it is running in PID"):
        Storage(default_storage_root(tmp_path / "b")).remove_job(kept.job_id)
    lock.release()


def test_jobs_perstack_wrote_read_the_same_from_the_bucket(
    tmp_path: Path, s3: S3Server, bucket: str, s3_env: dict[str, str]
) -> None:
    fixture = Path(__file__).parents[1] / "fixtures" / "perstack-jobs" / "parallel-delegates"
    local = Jobs(fixture / "perstack")
    store = s3.client(bucket)
    for path in (fixture / "perstack").rglob("*"):  # as `aws s3 cp --recursive` copies it
        if path.is_file():
            key = path.relative_to(fixture / "perstack").as_posix()
            obstore.put(store, key, path.read_bytes())
    remote = Jobs.for_workspace(folder(tmp_path, "fresh"))
    assert remote.ids() == local.ids()
    assert remote.list_jobs() == local.list_jobs()
    job_id = local.ids()[0]
    assert remote.tree(job_id) == local.tree(job_id)
    assert list(remote.events(job_id)) == list(local.events(job_id))
