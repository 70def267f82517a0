"""Start-up cost of a sandboxed process (target: under 20 ms over bubblewrap alone).

Spawns ``true`` and waits for it to exit: bare; under a minimal bwrap (read-only root, new
namespaces); under our full sandbox without network (``Sandbox.wrap``: hidden dirs, masks,
workspace); and under our full sandbox with an allowed domain, three ways:

* the first process of a sandbox and domain set, with a new ``Sandbox`` each time: right after
  creating it (waits for the namespace the sandbox starts making in the background: one Python
  start in it), and 100 ms after (the namespace is ready; the usual case in a run, where the
  model answers before the first command);
* later processes with the same domains (``nsenter`` into that namespace, then bwrap);
* the per-process forwarder (``shared_network=False``, the fallback where joining a namespace
  does not work: a Python forwarder in every process's own namespace).

Also times building the command line itself.

Run: ``.venv/bin/python benchmarks/sandbox_overhead.py [--iterations N]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence

from runtime.sandbox import Sandbox, find_bwrap
from runtime.sandbox.engine import isolation_flags

TRUE = shutil.which("true") or "/bin/true"


async def spawn(argv: Sequence[str], env: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(*argv, env=env)
    code = await process.wait()
    assert code == 0, (argv, code)


async def sample(action: Callable[[], Awaitable[None]], iterations: int) -> list[float]:
    for _ in range(3):  # warm the page cache
        await action()
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        await action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def main(iterations: int) -> int:
    bwrap = find_bwrap()
    if bwrap is None:
        print("no working bubblewrap here; nothing to measure")
        return 1
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    minimal = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    minimal += [*isolation_flags(), "--", TRUE]
    with tempfile.TemporaryDirectory() as workspace:
        sandbox = Sandbox(workspace, bwrap=bwrap)
        forwarding = Sandbox(workspace, bwrap=bwrap, shared_network=False)

        async def sandboxed(box: Sandbox, domains: list[str]) -> None:
            command = box.wrap([TRUE], env=env, allowed_domains=domains)
            try:
                await spawn(command.argv, command.env)
            finally:
                command.cleanup()

        async def first_of_a_sandbox() -> None:
            with Sandbox(workspace, bwrap=bwrap) as fresh:
                await sandboxed(fresh, ["example.com"])

        async def first_when_ready(iterations: int) -> list[float]:
            samples = []
            for _ in range(iterations):
                with Sandbox(workspace, bwrap=bwrap) as fresh:
                    await asyncio.sleep(0.1)
                    started = time.perf_counter()
                    await sandboxed(fresh, ["example.com"])
                    samples.append((time.perf_counter() - started) * 1000)
            return samples

        build = []
        for _ in range(iterations):
            started = time.perf_counter()
            sandbox.wrap([TRUE], env=env).cleanup()
            build.append((time.perf_counter() - started) * 1000)
        results = {
            "bare spawn": await sample(lambda: spawn([TRUE], env), iterations),
            "bwrap alone": await sample(lambda: spawn(minimal, env), iterations),
            "sandbox, no network": await sample(lambda: sandboxed(sandbox, []), iterations),
            "network: 1st, new sandbox": await sample(first_of_a_sandbox, iterations),
            "network: 1st, after 100 ms": await first_when_ready(iterations),
            "network: later processes": await sample(
                lambda: sandboxed(sandbox, ["example.com"]), iterations
            ),
            "network: forwarder fallback": await sample(
                lambda: sandboxed(forwarding, ["example.com"]), iterations
            ),
        }
        shared = sandbox.wrap([TRUE], env=env, allowed_domains=["example.com"])
        shared.cleanup()
        path = "shared namespace" if shared.command != bwrap else "FORWARDER (joining failed)"
        sandbox.close()
        forwarding.close()
    print(f"bwrap: {bwrap}; python: {sys.version.split()[0]}; {iterations} runs each")
    print(f"network path in use: {path}")
    print(f"{'building the command line':28} median {statistics.median(build):7.2f} ms")
    base = statistics.median(results["bwrap alone"])
    for name, values in results.items():
        median = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1]
        extra = "" if name == "bare spawn" else f"  (+{median - base:5.1f} ms over bwrap alone)"
        print(f"{name:28} median {median:7.2f} ms  p90 {p90:7.2f} ms{extra}")
    # Every case a sandboxed process can meet, the slowest one included (the first process
    # with network of a sandbox made a moment ago, which waits for its namespace).
    worst_name = max(
        (name for name in results if name not in ("bare spawn", "bwrap alone")),
        key=lambda name: statistics.median(results[name]),
    )
    worst = statistics.median(results[worst_name]) - base
    typical = statistics.median(results["network: later processes"]) - base
    verdict = "OK" if worst < 20 else "OVER TARGET"
    print(
        f"overhead over bwrap alone: typical with network {typical:.1f} ms, worst case "
        f"({worst_name}) {worst:.1f} ms (target < 20 ms): {verdict}"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    sys.exit(asyncio.run(main(parser.parse_args().iterations)))
