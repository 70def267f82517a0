"""An eval set fanned out on a local 2-worker Ray cluster, against the same eval run locally.

Target (issue 18): 100 cases × 1 s scripted model latency on a local 2-worker Ray cluster: wall
time and per-case overhead, against the same eval run locally with ``--concurrency``.

Each case is one expert that answers in two model calls (attemptCompletion, then its result),
each delayed 1 s by the local fake OpenAI server, and one check. The ideal wall time of N cases
at parallelism P is ``N × 2 × latency / P``; the overhead per case is what is left over, divided
by the cases each lane ran. Rounds alternate between the three ways (Ray with 2 workers, local
with --concurrency 2, local with --concurrency 10), each a fresh ``perstack eval`` process.

    .venv/bin/python benchmarks/eval_fanout.py [--cases 100] [--latency 1.0] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakellm import FakeLLM, Reply, reply_delay, reply_text, reply_tool_calls  # noqa: E402

TEAM = """
model = "gpt-4.1"
[provider]
providerName = "openai"

[experts."solo"]
instruction = "Answer in one line."
"""
CALLS_PER_CASE = 2


def _answer(latency: float) -> Any:
    def reply(body: dict[str, Any]) -> Reply:
        if body.get("tools"):
            return reply_delay(latency, reply_tool_calls([("attemptCompletion", {})]))
        return reply_delay(latency, reply_text("ok"))

    return reply


def _eval_file(folder: Path, cases: int) -> Path:
    lines = ['[eval]\nname = "fanout"\nexpert = "solo"\n']
    for index in range(cases):
        lines.append(
            f'[[cases]]\nname = "case {index}"\nquery = "say ok {index}"\n'
            '[[cases.checks]]\ntype = "resultContains"\ntext = "ok"\n'
        )
    path = folder / "evals.toml"
    path.write_text("\n".join(lines))
    return path


def _one(way: str, cases: int, fake: FakeLLM) -> float:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "perstack.toml").write_text(TEAM)
        _eval_file(root, cases)
        extra = ["--ray"] if way == "ray" else ["--concurrency", way.split("=")[1]]
        env = {**os.environ, **fake.env(), "RAY_DISABLE_DOCKER_CPU_WARNING": "1"}
        env.pop("PERSTACK_STORAGE_PATH", None)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "studio", "eval", "evals.toml", "--json", *extra],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{way}: exit {done.returncode}\n{done.stderr[-2000:]}")
    passed = sum(case["passed"] for case in json.loads(done.stdout)["cases"])
    assert passed == cases, f"{way}: {passed}/{cases} passed"
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    fake = FakeLLM(default=_answer(args.latency))
    ways = {"ray": 2, "concurrency=2": 2, "concurrency=10": 10}
    walls: dict[str, list[float]] = {way: [] for way in ways}
    try:
        for _ in range(args.rounds):
            for way in ways:
                walls[way].append(_one(way, args.cases, fake))
    finally:
        fake.close()
    print(
        f"{args.cases} cases × {CALLS_PER_CASE} model calls × {args.latency:g} s latency "
        f"({args.rounds} round(s), interleaved; each a fresh perstack eval process):"
    )
    for way, parallel in ways.items():
        wall = statistics.median(walls[way])
        ideal = args.cases * CALLS_PER_CASE * args.latency / parallel
        per_case = (wall - ideal) / (args.cases / parallel)
        label = (
            "Ray, local 2-worker cluster" if way == "ray" else f"local --{way.replace('=', ' ')}"
        )
        spread = f"min {min(walls[way]):.1f}, max {max(walls[way]):.1f}"
        print(
            f"  {label:30} wall {wall:6.1f} s ({spread}); ideal {ideal:5.1f} s; "
            f"overhead {per_case * 1000:5.0f} ms per case"
        )


if __name__ == "__main__":
    main()
