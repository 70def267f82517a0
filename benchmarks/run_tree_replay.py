"""The run view on a long job: replay time, input latency while events stream, memory.

Targets (issue 6): the tree keeps up with 1,000 events per second; replay of a stored
10,000-event job renders in under 3 s; input latency stays under 50 ms; memory stays flat when a
job has 10,000 events.

The job is one expert doing ~1,400 steps (reasoning, a tool call, its result each step): the
worst case for a conversation that grows, since every step's checkpoint holds all of it.

    .venv/bin/python benchmarks/run_tree_replay.py [STORED_EVENTS]
"""

from __future__ import annotations

import asyncio
import gc
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from textual import events

from runtime import RunSetting, parse_config, read_job_events, run
from runtime.testing import Reply, ScriptedModel
from studio.run_app import make_run_app
from studio.run_messages import RunEventReceived
from studio.screens.run import RunScreen

TOML = '[experts."worker"]\ninstruction = "You work step by step."\n'
STORED_PER_STEP = 7
"""Stored events per step of the script below (streaming deltas are not stored)."""


def long_script(steps: int) -> list[Reply]:
    replies = [
        Reply(
            reasoning=f"Step {i}: look at the next file. " * 3,
            tool_calls=[("readTextFile", {"path": f"missing-{i}.txt"})],
            chunk_size=6,
        )
        for i in range(steps)
    ]
    replies.append(Reply(text="All files checked. " * 20, chunk_size=6))
    return replies


async def make_job(workspace: Path, stored_events: int) -> str:
    """Store a job of about ``stored_events`` stored events; returns its id."""
    (workspace / "perstack.toml").write_text(TOML)
    config = parse_config(TOML, path=workspace / "perstack.toml")
    steps = max(1, stored_events // STORED_PER_STEP)
    checkpoint = await run(
        RunSetting(
            expert_key="worker", query="check every file", workspace=workspace, max_steps=steps + 5
        ),
        None,
        model=ScriptedModel(long_script(steps)),
        config=config,
    )
    return checkpoint.job_id


def _job_dir(workspace: Path, job_id: str) -> Path:
    return workspace / "perstack" / "jobs" / job_id


async def replay(workspace: Path, job_id: str) -> tuple[float, int, int]:
    """Replay the job into a fresh run screen; returns seconds to the first paint, events, nodes."""
    app = make_run_app(workspace=workspace, expert_key="worker", cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunScreen)
        start = time.perf_counter()
        count = screen.load_job(
            job_id, read_job_events(_job_dir(workspace, job_id), messages=False)
        )
        await pilot.pause()  # the paint after the replay
        elapsed = time.perf_counter() - start
        nodes = len(screen.step_tree.nodes)
    return elapsed, count, nodes


async def latency(workspace: Path, job_id: str, rate: int = 1000) -> tuple[list[float], float]:
    """Stream the stored events at ``rate``/s; meanwhile type into the query box.

    A key is posted to the app the way the terminal driver posts it; its latency is the time
    until the query box holds the new character (the next frame follows within 1/60 s).
    Returns the latencies and the events per second the screen absorbed (all of them applied).
    """
    app = make_run_app(workspace=workspace, expert_key="worker", cursor_blink=False)
    samples: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunScreen)
        box = screen.query_one("#run-query")
        box.focus()
        await pilot.pause()
        fed = 0
        started = time.perf_counter()

        async def feed() -> None:
            # Read lazily, as a live run hands them over: holding 10,000 parsed events here
            # would be the benchmark's memory, and the garbage collector would scan it.
            nonlocal fed
            batch = rate // 100
            for event in read_job_events(_job_dir(workspace, job_id), messages=False):
                screen.post_message(RunEventReceived(event))
                fed += 1
                if fed % batch == 0:
                    # Hold the rate against the clock, not the sleep: late batches catch up.
                    due = started + fed / rate
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))

        feeder = asyncio.create_task(feed())
        changed = asyncio.Event()
        screen.watch(box, "value", lambda _: changed.set(), init=False)
        while not feeder.done():
            changed.clear()
            sent = time.perf_counter()
            app.post_message(events.Key("x", "x"))
            await changed.wait()
            samples.append(time.perf_counter() - sent)
            await asyncio.sleep(0.03)
        await feeder
        await pilot.pause()
        assert screen.job.event_count == fed
        absorbed = fed / (time.perf_counter() - started)
    return samples, absorbed


async def memory(workspace: Path, job_id: str, total: int) -> list[tuple[int, float]]:
    """Python memory held by the run screen (tree model and widget) after each quarter."""
    app = make_run_app(workspace=workspace, expert_key="worker", cursor_blink=False)
    out: list[tuple[int, float]] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunScreen)
        stored = read_job_events(_job_dir(workspace, job_id), messages=False)
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        screen.load_job(job_id, [])
        applied = 0
        for quarter in range(1, 5):
            for event in stored:
                screen.apply_event(event)
                applied += 1
                if applied >= total * quarter // 4:
                    break
            screen.refresh_tree()
            await pilot.pause()
            gc.collect()
            out.append((applied, (tracemalloc.get_traced_memory()[0] - base) / 1e6))
        tracemalloc.stop()
    return out


async def main(target: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        workspace = Path(folder)
        started = time.perf_counter()
        job_id = await make_job(workspace, target)
        job_dir = _job_dir(workspace, job_id)
        size = sum(p.stat().st_size for p in job_dir.glob("runs/*/events.jsonl"))
        print(
            f"stored job in {time.perf_counter() - started:.1f} s; events files {size / 1e6:.1f} MB"
        )

        seconds, count, nodes = await replay(workspace, job_id)
        verdict = "OK" if seconds < 3 else "SLOW"
        print(f"replay: {count:,} events -> {nodes:,} tree nodes in {seconds:.2f} s ({verdict})")

        samples, absorbed = await latency(workspace, job_id)
        p95 = sorted(samples)[max(0, int(len(samples) * 0.95) - 1)]
        verdict = "OK" if p95 < 0.05 else "SLOW"
        print(
            f"streaming 1,000 events/s: absorbed {absorbed:,.0f} events/s; key latency median "
            f"{statistics.median(samples) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
            f"max {max(samples) * 1000:.1f} ms over {len(samples)} keys ({verdict})"
        )

        figures = await memory(workspace, job_id, count)
        for applied, megabytes in figures:
            print(f"memory held by the run screen after {applied:,} events: {megabytes:.1f} MB")
        first, last = figures[0], figures[-1]
        per_event = (last[1] - first[1]) * 1e6 / max(1, last[0] - first[0])
        print(f"growth: {per_event:,.0f} bytes per event after the first quarter")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
        print(f"peak RSS of this process: {rss:.0f} MB")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
