"""Fuzz perstack.toml loading (issue "Trust", item 8: config input never crashes).

Runs seeded mutations of the real perstack.toml files (the cases of
``tests/runtime/test_config_fuzz.py``) through ``load_config``, ``diagnose`` and ``load_env`` and
prints how many loaded, how many were refused with a ConfigError, how many raised anything else
(a traceback for the user), and the time of each case: max, p99, and how many took over 2 s.
Target: 0 other exceptions, 0 cases over 2 s.

    python benchmarks/fuzz_config.py [--count 10000] [--seed 1]
    python benchmarks/fuzz_config.py --seed 8 --case 1234   # replay one case, show the outcome
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.runtime.test_config_fuzz import case, check_input  # noqa: E402

SLOW_S = 2.0


def replay(seed: int, index: int, workdir: Path) -> int:
    names, data = case(seed, index)
    print(f"case {index} of seed {seed}: {names}, {len(data):,} bytes")
    start = time.perf_counter()
    try:
        outcome = check_input(data, workdir)
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        print(f"{time.perf_counter() - start:.3f} s")
    print(outcome)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="inputs to run (10000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the run (1)")
    parser.add_argument("--case", type=int, help="replay only this case of the seed")
    parser.add_argument("--save", type=Path, help="write crashing and slow inputs to this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.case is not None:
            return replay(args.seed, args.case, workdir)
        outcomes: Counter[str] = Counter()
        crashes: list[str] = []
        times: list[float] = []
        slowest: list[tuple[float, int, str, int]] = []
        started = time.perf_counter()
        for index in range(args.count):
            names, data = case(args.seed, index)
            start = time.perf_counter()
            try:
                outcomes[check_input(data, workdir)] += 1
            except Exception as error:
                outcomes["other"] += 1
                crashes.append(f"case {index} ({names}): {type(error).__name__}: {error!s:.150}")
                if args.save:
                    args.save.mkdir(parents=True, exist_ok=True)
                    (args.save / f"crash-{args.seed}-{index}.toml").write_bytes(data)
            elapsed = time.perf_counter() - start
            times.append(elapsed)
            slowest = sorted([*slowest, (elapsed, index, names, len(data))], reverse=True)[:5]
            if elapsed > SLOW_S and args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                (args.save / f"slow-{args.seed}-{index}.toml").write_bytes(data)
        total = time.perf_counter() - started
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"inputs:              {args.count:,} (seed {args.seed}), {total:.1f} s in all")
    print(f"loaded:              {outcomes['ok']:,}")
    print(f"ConfigError:         {outcomes['error']:,}")
    print(f"other exceptions:    {outcomes['other']:,}")
    print(f"over {SLOW_S:.0f} s:           {sum(t > SLOW_S for t in times):,}")
    print(
        f"time per input:      median {statistics.median(times) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms"
    )
    print("slowest:")
    for elapsed, index, names, size in slowest:
        print(f"  {elapsed * 1000:8.1f} ms  case {index} ({names}), {size:,} bytes")
    for line in crashes[:20]:
        print(f"  {line}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
