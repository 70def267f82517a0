"""Replay and evals (issue 17): replaying a long job, and an eval set run ten cases at a time.

Targets: a replay of an unchanged 1,400-step job makes zero model requests and is at most 10%
slower than reading its events; an eval of 50 cases on the scripted model with --concurrency 10
is measured (wall time, peak RSS).

- Replay: one expert doing 1,400 steps (reasoning, a tool call, its result each step: the
  conversation grows every step). Timed, interleaved ``--rounds`` times: the job's original run
  (scripted model), its replay (``replay_of``; the model given has no reply, so any request
  would fail it), and reading its events back (``read_job_events``: with the conversation, as
  ``perstack log --messages`` and embedders read a job, and without, as the studio does).
- Eval: 50 cases of a two-expert team (a coordinator delegating to a writer, which writes a
  file), each with a file check and a result check, in scratch workspaces, run by
  ``run_eval_set`` in a fresh process per round (so the peak RSS is the eval's own).

    .venv/bin/python benchmarks/replay_eval.py [--steps 1400] [--cases 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.run_tree_replay import long_script  # noqa: E402  (the same long job)
from runtime import RunSetting, parse_config, read_job_events, run  # noqa: E402
from runtime.llm import GenerationRequest  # noqa: E402
from runtime.testing import Reply, ScriptedModel  # noqa: E402

WORKER = '[experts."worker"]\ninstruction = "You work step by step."\n'
TEAM = """
[experts."lead"]
description = "Coordinates"
instruction = "You lead the writers."
delegates = ["@team/writer"]

[experts."@team/writer"]
description = "Writes files"
instruction = "You write the file you are asked for."
"""


async def _timed_run(workspace: Path, model: ScriptedModel, **extra: Any) -> tuple[float, Any]:
    config = parse_config(WORKER, path=workspace / "perstack.toml")
    setting = RunSetting(
        expert_key="worker",
        query="check every file",
        workspace=workspace,
        max_steps=100_000,
        **extra,
    )
    start = time.perf_counter()
    checkpoint = await run(setting, None, model=model, config=config)
    return time.perf_counter() - start, checkpoint


def _spread(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"
    )


def bench_replay(steps: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        workspace = Path(folder)
        (workspace / "perstack.toml").write_text(WORKER)
        originals, replays, reads, lean_reads = [], [], [], []
        job_id = ""
        for _ in range(rounds):
            seconds, checkpoint = asyncio.run(
                _timed_run(workspace, ScriptedModel(long_script(steps)))
            )
            assert checkpoint.status == "completed", checkpoint.error
            originals.append(seconds)
            job_id = checkpoint.job_id
            job_dir = workspace / "perstack" / "jobs" / job_id

            silent = ScriptedModel([])
            seconds, replayed = asyncio.run(_timed_run(workspace, silent, replay_of=job_id))
            assert replayed.status == "completed", replayed.error
            assert silent.requests == [], "a replay of an unchanged job made a model request"
            assert replayed.step_number == checkpoint.step_number
            replays.append(seconds)

            start = time.perf_counter()
            count = sum(1 for _ in read_job_events(job_dir, messages=True))
            reads.append(time.perf_counter() - start)
            start = time.perf_counter()
            sum(1 for _ in read_job_events(job_dir, messages=False))
            lean_reads.append(time.perf_counter() - start)
        recording = (workspace / "perstack" / "jobs" / job_id / "recording.jsonl").stat().st_size
    print(f"Replay of a {steps}-step job ({count} stored events), {rounds} rounds interleaved:")
    print(f"  original run (scripted model): {_spread(originals)}")
    print(f"  replay (0 model requests):     {_spread(replays)}")
    print(f"  reading its events:            {_spread(reads)}")
    print(f"  ... without the conversation:  {_spread(lean_reads)}")
    ratio_read = statistics.median(replays) / statistics.median(reads)
    ratio_lean = statistics.median(replays) / statistics.median(lean_reads)
    ratio_run = statistics.median(replays) / statistics.median(originals)
    print(f"  replay / reading its events: {ratio_read:.2f}x (target: at most 1.10x)")
    print(f"  replay / reading them without the conversation: {ratio_lean:.2f}x")
    print(f"  replay / original run:       {ratio_run:.2f}x")
    print(f"  recording: {recording / 1024:.0f} KiB ({recording / (steps + 1):.0f} bytes per call)")


def _eval_reply(request: GenerationRequest) -> Reply:
    system = request.messages[0].contents[0].text  # type: ignore[union-attr]
    query = request.messages[1].contents[0].text  # type: ignore[union-attr]
    tool_rounds = sum(message.type == "toolMessage" for message in request.messages)
    if not request.tools:
        return Reply(text=f"done: {query}")
    if "You lead the writers." in system:
        if tool_rounds == 0:
            return Reply(tool_calls=[("writer", {"query": query})])
        return Reply(tool_calls=[("attemptCompletion", {})])
    if tool_rounds == 0:
        name = query.split()[-1]
        return Reply(tool_calls=[("writeTextFile", {"path": name, "text": query})])
    return Reply(tool_calls=[("attemptCompletion", {})])


def eval_round(cases: int, concurrency: int) -> dict[str, float]:
    """One eval run in this process: its wall time, peak RSS and score."""
    from runtime.evals import EvalOptions, load_eval_set, run_eval_set

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "perstack.toml").write_text(TEAM)
        lines = ['[eval]\nexpert = "lead"\n']
        for index in range(cases):
            lines.append(
                f'[[cases]]\nname = "case {index}"\nquery = "write file-{index}.txt"\n'
                f'[[cases.checks]]\ntype = "fileExists"\npath = "file-{index}.txt"\n'
                f'[[cases.checks]]\ntype = "resultContains"\ntext = "file-{index}.txt"\n'
            )
        (root / "evals.toml").write_text("\n".join(lines))
        eval_set = load_eval_set(root / "evals.toml")
        config = parse_config(TEAM, path=root / "perstack.toml")
        options = EvalOptions(concurrency=concurrency, storage_root=root / "perstack")
        runner = partial(run, model=ScriptedModel(_eval_reply))
        start = time.perf_counter()
        result = asyncio.run(run_eval_set(eval_set, config, options, runner))
        wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"wall": wall, "peak_mib": peak_kib / 1024, "passed": result.passed, "cases": cases}


def bench_eval(cases: int, concurrency: int, rounds: int) -> None:
    walls, peaks = [], []
    for _ in range(rounds):
        done = subprocess.run(
            [sys.executable, __file__, "--eval-round", str(cases), str(concurrency)],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
        figures = json.loads(done.stdout.splitlines()[-1])
        assert figures["passed"] == cases, figures
        walls.append(figures["wall"])
        peaks.append(figures["peak_mib"])
    print(f"Eval of {cases} cases on the scripted model, --concurrency {concurrency}:")
    print(f"  wall: {_spread(walls)} ({statistics.median(walls) / cases * 1000:.0f} ms per case)")
    print(
        f"  peak RSS: median {statistics.median(peaks):.0f} MiB (min {min(peaks):.0f}, max "
        f"{max(peaks):.0f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1400)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--eval-round", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.eval_round:
        print(json.dumps(eval_round(*args.eval_round)))
        return
    bench_replay(args.steps, args.rounds)
    bench_eval(args.cases, args.concurrency, args.rounds)


if __name__ == "__main__":
    main()
