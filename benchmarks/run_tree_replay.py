"""Replay a stored 10,000-event job into the run screen's tree; time it and watch memory.

Targets (issue 6): the replay renders in under 3 s, input latency stays under 50 ms while events
stream in, and memory stays flat as the job grows.

    .venv/bin/python benchmarks/run_tree_replay.py [EVENTS]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from runtime import RunSetting, parse_config, run
from runtime.testing import Reply, ScriptedModel
from studio.run_app import make_run_app
from studio.run_messages import RunEventReceived
from studio.screens.history import stored_events
from studio.screens.run import RunScreen

TOML = '[experts."worker"]\ninstruction = "You work step by step."\n'


def _script(steps: int) -> list[Reply]:
    # Each step: streamed reasoning, a tool call with a result, then the next step.
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


async def make_job(workspace: Path, target_events: int) -> tuple[str, int]:
    """Store a job of about ``target_events`` events; returns its id and event count."""
    (workspace / "perstack.toml").write_text(TOML)
    config = parse_config(TOML, path=workspace / "perstack.toml")
    count = 0

    def listen(_: object) -> None:
        nonlocal count
        count += 1

    per_step = 30  # measured for the script above; corrected by the real count below
    checkpoint = await run(
        RunSetting(
            expert_key="worker",
            query="check every file",
            workspace=workspace,
            max_steps=target_events,
        ),
        listen,
        model=ScriptedModel(_script(max(1, target_events // per_step))),
        config=config,
    )
    return checkpoint.job_id, count


async def replay(workspace: Path, job_id: str) -> tuple[float, int, int]:
    """Replay under Pilot; returns seconds, events, and tree lines."""
    app = make_run_app(workspace=workspace, expert_key="worker", cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunScreen)
        start = time.perf_counter()
        count = screen.load_job(job_id, stored_events(workspace, job_id))
        await pilot.pause()
        elapsed = time.perf_counter() - start
        lines = len(screen._tree_nodes)
    return elapsed, count, lines


async def latency(workspace: Path, job_id: str, rate: int = 1000) -> list[float]:
    """Stream the stored events at ``rate`` per second as messages; time key presses meanwhile."""
    events = list(stored_events(workspace, job_id))
    app = make_run_app(workspace=workspace, expert_key="worker", cursor_blink=False)
    samples: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunScreen)

        async def feed() -> None:
            batch = rate // 100
            for start in range(0, len(events), batch):
                for event in events[start : start + batch]:
                    screen.post_message(RunEventReceived(event))
                await asyncio.sleep(0.01)

        feeder = asyncio.create_task(feed())
        query = screen.query_one("#run-query")
        query.focus()
        while not feeder.done() and len(samples) < 200:
            before = time.perf_counter()
            await pilot.press("x")
            samples.append(time.perf_counter() - before)
        await feeder
    return samples


async def main(target: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        workspace = Path(folder)
        started = time.perf_counter()
        job_id, emitted = await make_job(workspace, target)
        print(f"stored job: {emitted:,} events in {time.perf_counter() - started:.1f} s")

        seconds, count, nodes = await replay(workspace, job_id)
        verdict = "OK" if seconds < 3 else "SLOW"
        print(f"replay: {count:,} events -> {nodes:,} tree nodes in {seconds:.2f} s ({verdict})")

        samples = await latency(workspace, job_id)
        if samples:
            p95 = sorted(samples)[int(len(samples) * 0.95) - 1]
            print(
                f"input latency while streaming 1,000 events/s: median "
                f"{statistics.median(samples) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
                f"max {max(samples) * 1000:.1f} ms ({len(samples)} key presses; Pilot overhead "
                "included)"
            )

        for fraction in (4, 1):
            tracemalloc.start()
            events = stored_events(workspace, job_id)
            from studio.view_model import JobTree

            tree = JobTree()
            limit = count // fraction
            for index, event in enumerate(events):
                if index >= limit:
                    break
                tree.apply(event)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"peak memory reducing {limit:,} events: {peak / 1e6:.1f} MB")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
