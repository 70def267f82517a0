"""Jobs on an S3 store: the round trip of a checkpoint through moto's S3 server (issue 18).

Target: the storage round-trip per checkpoint on moto (p50, p95). Measured against moto's
standalone server on 127.0.0.1 (a local Python server: the figures are the runtime's own cost
plus moto's, not a network's; on AWS add the region's latency to each request):

- write: ``Storage.store_checkpoint`` until the object is in the bucket (the write in the cache
  folder, then the upload thread's PUT; the run itself only waits for the first part);
- read: another cache folder pulls the job (one LIST, the new object's GET) and loads the
  checkpoint, as ``perstack log`` or the studio's history do on another machine;
- round trip: both, one checkpoint after the other.

Checkpoints grow as a conversation does (``--steps`` of them, each a step of about 2 KB more).
Then a whole run: the same scripted job stored in a local folder and in the bucket (the upload
runs beside the run: the difference is the time to flush at its end), and reading the whole job
from an empty folder.

    .venv/bin/python benchmarks/storage_roundtrip.py [--steps 200] [--run-steps 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runtime import RunSetting, parse_config, run  # noqa: E402
from runtime.jobs import Jobs  # noqa: E402
from runtime.jobs.store import Storage, default_storage_root  # noqa: E402
from runtime.testing import Reply, ScriptedModel, call, reply  # noqa: E402
from tests.storage.s3server import S3Server  # noqa: E402

WORKER = '[experts."worker"]\ninstruction = "You work step by step."\n'


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def line(name: str, values: list[float]) -> str:
    ms = [value * 1000 for value in values]
    return (
        f"{name:<34} p50 {percentile(ms, 0.5):7.2f} ms   p95 {percentile(ms, 0.95):7.2f} ms   "
        f"max {max(ms):7.2f} ms"
    )


async def scripted_job(workspace: Path, steps: int) -> Any:
    """A job of ``steps`` steps: a tool call with ~2 KB of text each, then an answer."""
    replies: list[Reply] = [
        call("writeTextFile", path=f"notes/{n}.txt", text=f"note {n} " + "x" * 2000)
        for n in range(steps - 1)
    ]
    replies.append(reply("done"))
    config = parse_config(WORKER, path=workspace / "perstack.toml")
    setting = RunSetting(
        expert_key="worker", query="write notes", workspace=workspace, max_steps=steps + 5
    )
    return await run(setting, model=ScriptedModel(replies), config=config)


def checkpoint_round_trips(tmp: Path, steps: int) -> None:
    final = asyncio.run(scripted_job(tmp / "seed", min(steps, 60)))
    writer = Storage(default_storage_root(tmp / "writer"))
    reader = Storage(default_storage_root(tmp / "reader"))
    assert writer.remote is not None and reader.remote is not None
    lock = writer.lock_job("bench", warn=print)
    messages = final.messages
    writes, reads, trips, sizes = [], [], [], []
    for step in range(1, steps + 1):
        grown = (messages * (1 + step // max(1, len(messages))))[: 2 + step]
        checkpoint = final.model_copy(
            update={"job_id": "bench", "id": f"cp{step}", "step_number": step, "messages": grown}
        )
        began = time.perf_counter()
        writer.store_checkpoint(checkpoint)
        writer.remote.flush()
        stored = time.perf_counter()
        reader.remote.refresh_job("bench", force=True)
        loaded = reader.load_checkpoint("bench", checkpoint.id)
        done = time.perf_counter()
        assert loaded.step_number == step
        writes.append(stored - began)
        reads.append(done - stored)
        trips.append(done - began)
        sizes.append(len(checkpoint.to_json()))
    lock.release()
    print(
        f"{steps} checkpoints, {min(sizes) / 1024:.0f}-{max(sizes) / 1024:.0f} KiB each "
        "(the job holding them grows as it goes: the read LISTs it every time)"
    )
    print(line("write (cache + PUT)", writes))
    print(line("read (LIST + GET + load)", reads))
    print(line("round trip", trips))


def whole_run(tmp: Path, steps: int, env: dict[str, str]) -> None:
    timings: dict[str, float] = {}
    job_id = ""
    for where in ("local folder", "S3 bucket"):
        workspace = tmp / where.replace(" ", "-")
        workspace.mkdir()
        saved = (
            {name: os.environ.pop(name, None) for name in env} if where == "local folder" else {}
        )
        try:
            began = time.perf_counter()
            final = asyncio.run(scripted_job(workspace, steps))
            timings[where] = time.perf_counter() - began
        finally:
            for name, value in saved.items():
                if value is not None:
                    os.environ[name] = value
        assert final.status == "completed"
        job_id = final.job_id
    print(
        f"a {steps}-step scripted run: {timings['local folder']:.2f} s stored locally, "
        f"{timings['S3 bucket']:.2f} s stored in the bucket"
    )
    empty = tmp / "empty"
    empty.mkdir()
    began = time.perf_counter()
    jobs = Jobs.for_workspace(empty)
    events = sum(1 for _ in jobs.events(job_id, messages=False))
    cold = time.perf_counter() - began
    began = time.perf_counter()
    jobs.storage.remote.refresh_job(job_id, force=True)  # type: ignore[union-attr]
    warm = time.perf_counter() - began
    print(
        f"reading that job from an empty folder: {cold:.2f} s ({events} events, {steps} "
        f"checkpoints); pulling it again unchanged: {warm * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--run-steps", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        server = S3Server(tmp / "moto.log")
        try:
            env = server.env(server.new_bucket())
            os.environ.update(env)
            os.environ.pop("PERSTACK_STORAGE_PATH", None)
            checkpoint_round_trips(tmp, args.steps)
            whole_run(tmp, args.run_steps, env)
        finally:
            server.close()
    print(
        f"(moto {_version('moto')}, obstore {_version('obstore')}, Python {sys.version.split()[0]})"
    )


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
