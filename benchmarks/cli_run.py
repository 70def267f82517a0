"""Start-up and run figures for the headless CLI (issue: runtime core targets).

Prints:
- wall time of `perstack --version` and `perstack run --help` (target < 0.3 s each);
- a `perstack run` against the local fake OpenAI server: time from process start to the first
  LLM request, whole wall time, and peak memory (max RSS) of the process.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakellm import FakeLLM, reply_text, reply_tool_calls  # noqa: E402

PERSTACK = [sys.executable, "-m", "studio"]


def timed(args: list[str], runs: int = 7, **kwargs: object) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True, **kwargs)  # type: ignore[call-overload]
        times.append(time.perf_counter() - start)
    return times


def report(label: str, times: list[float]) -> None:
    median, best = statistics.median(times) * 1000, min(times) * 1000
    print(f"{label:<40} median {median:7.1f} ms   min {best:7.1f} ms")


def main() -> None:
    report("perstack --version", timed([*PERSTACK, "--version"]))
    report("perstack run --help", timed([*PERSTACK, "run", "--help"]))

    fake = FakeLLM()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workspace = Path(tmp)
            (workspace / "perstack.toml").write_text(
                '[experts."bench"]\ninstruction = "Benchmark."\n'
            )
            env = {**os.environ, **fake.env()}
            firsts, walls, rss = [], [], []
            for _ in range(5):
                fake.reset()
                fake.script(
                    reply_tool_calls([("writeTextFile", {"path": "a.txt", "text": "x"})]),
                    reply_tool_calls([("attemptCompletion", {})]),
                    reply_text("done"),
                )
                before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                start = time.time()
                subprocess.run(
                    [*PERSTACK, "run", "bench", "go", "--provider", "openai", "--model", "gpt-4.1"],
                    cwd=workspace,
                    env=env,
                    capture_output=True,
                    check=True,
                )
                walls.append(time.time() - start)
                firsts.append(fake.request_times[0] - start)
                rss.append(max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
            report("run: process start → first LLM request", firsts)
            report("run: whole wall time (3 generations)", walls)
            print(f"{'run: peak memory (max RSS)':<40} {max(rss) / 1024:7.1f} MB")
    finally:
        fake.close()


if __name__ == "__main__":
    main()
