"""Latency of in-process base skill calls on a small workspace (target: well under 1 ms).

Run: ``.venv/bin/python benchmarks/base_tool.py [--iterations N]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from runtime.skills.base import BaseSkill

CASES: list[tuple[str, dict[str, Any]]] = [
    ("readTextFile", {"path": "src/notes.md"}),
    ("writeTextFile", {"path": "out/result.txt", "text": "hello world\n" * 20}),
    ("todo", {"completedTodos": [0]}),
    ("listDirectory", {"path": "src"}),
]


def populate(workspace: Path) -> None:
    (workspace / "src").mkdir()
    for index in range(20):
        (workspace / "src" / f"file{index:02d}.py").write_text(
            f"x = {index}\n" * 10, encoding="utf-8"
        )
    (workspace / "src" / "notes.md").write_text("# Notes\n" + "- item\n" * 50, encoding="utf-8")
    (workspace / "perstack").mkdir()


async def measure(
    skill: BaseSkill, tool: str, args: dict[str, Any], iterations: int
) -> list[float]:
    for _ in range(min(200, iterations)):  # warm caches and the allocator
        await skill.call(tool, args)
    samples: list[float] = []
    for _ in range(iterations):
        started = time.perf_counter()
        outcome = await skill.call(tool, args)
        samples.append((time.perf_counter() - started) * 1e6)
        assert not outcome.is_error, outcome
    return samples


async def main(iterations: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        populate(workspace)
        skill = BaseSkill(workspace)
        await skill.call("todo", {"newTodos": ["plan", "write", "check"]})
        print(f"{'tool':<15} {'mean µs':>9} {'p95 µs':>9} {'max µs':>9}  (n={iterations})")
        for tool, args in CASES:
            samples = sorted(await measure(skill, tool, args, iterations))
            p95 = samples[int(len(samples) * 0.95) - 1]
            print(f"{tool:<15} {statistics.fmean(samples):>9.1f} {p95:>9.1f} {samples[-1]:>9.1f}")
        await skill.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=5000)
    asyncio.run(main(parser.parse_args().iterations))
