"""Headless ``perstack run`` against the fake OpenAI server: the targets of issue "Fast start".

Each measure is compared with the real Perstack CLI measured on this machine kind:

    measure                                      Perstack   target
    process start → first model request          0.78 s     ≤ 0.39 s
    whole 5-call single-expert run               0.96 s     ≤ 0.48 s
    peak RSS (of the 5-call run)                 166 MiB    ≤ 83 MiB
    last event → process exit (5-call run)       33 ms      ≤ 50 ms
    10 parallel delegates × 1 s model latency    2.11 s     ≤ 1.3 s

Scenarios, each a ``python -m studio run <expert> <query> --provider openai --model gpt-4.1``
subprocess in a fresh temp workspace (storage on, as for Perstack), pointed at a FakeLLM:

* ``single``: one expert, 5 model calls: writeTextFile, appendTextFile, readTextFile (base skill,
  inside the workspace), attemptCompletion, then the final text.
* ``delegates``: a coordinator with 10 delegates; its first call asks all 10 in parallel, each
  delegate's only model call is answered after 1 s (text only: it completes implicitly), then the
  coordinator answers text. Ideal: ≈ 1 s + start-up.

Also ``perstack --version`` and ``perstack run --help`` wall times (earlier target: < 0.3 s).

The machine is noisy: after one untimed warm-up round, ``--runs`` rounds each run every scenario
once in turn; figures are medians with p25–p75 and min–max. Every run's JSONL output is checked
(exit 0, ``completeRun`` of the top expert is the last run event, the expected tools/delegates ran);
a run that fails is reported loudly, left out of the figures, and the script exits 1.

Timings: start is ``time.time()``/``time.monotonic()`` just before ``Popen``; the first request is
the fake's ``request_times[0]``; exit is when ``os.wait4`` returns (its ``ru_maxrss`` is the peak
RSS of the child, or of its largest waited-for descendant); stdout lines are timestamped on
arrival by a reader thread.

    .venv/bin/python benchmarks/cli_run.py [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakellm import (  # noqa: E402
    FakeLLM,
    Reply,
    reply_delay,
    reply_text,
    reply_tool_calls,
)

PERSTACK = [sys.executable, "-m", "studio"]
MODEL_ARGS = ["--provider", "openai", "--model", "gpt-4.1"]
TIMEOUT = 120.0
"""Seconds before a hung run is killed (and counted as failed)."""

SINGLE_TOML = '[experts."bench"]\ninstruction = "Benchmark."\n'
FINAL_TEXT = "done"

DELEGATES = [f"worker-{i:02d}" for i in range(1, 11)]
DELEGATE_LATENCY = 1.0
COORDINATOR_MARKER = "You coordinate the workers."
COORDINATOR_TEXT = "all workers reported"


def _team_toml() -> str:
    lines = [
        '[experts."coordinator"]',
        'description = "Coordinates the workers"',
        f'instruction = "{COORDINATOR_MARKER}"',
        f"delegates = {json.dumps(DELEGATES)}",
    ]
    for name in DELEGATES:
        lines += [
            "",
            f'[experts."{name}"]',
            f'description = "Worker {name}"',
            f'instruction = "You are the worker named <{name}>."',
        ]
    return "\n".join(lines) + "\n"


TEAM_TOML = _team_toml()


# Measures ---------------------------------------------------------------------------------------


@dataclass
class Measure:
    key: str
    label: str
    unit: str
    target: float | None = None
    perstack: float | None = None
    samples: list[float] = field(default_factory=list)

    def stats(self) -> dict[str, float] | None:
        if not self.samples:
            return None
        data = sorted(self.samples)
        if len(data) > 1:
            p25, _, p75 = statistics.quantiles(data, n=4, method="inclusive")
        else:
            p25 = p75 = data[0]
        return {
            "median": statistics.median(data),
            "p25": p25,
            "p75": p75,
            "min": data[0],
            "max": data[-1],
        }

    def as_json(self) -> dict[str, Any]:
        stats = self.stats()
        median = stats["median"] if stats else None
        return {
            "key": self.key,
            "label": self.label,
            "unit": self.unit,
            "samples": [round(s, 4) for s in self.samples],
            **({k: round(v, 4) for k, v in stats.items()} if stats else {"median": None}),
            "target": self.target,
            "perstack": self.perstack,
            "ratio": round(median / self.perstack, 3)
            if median is not None and self.perstack
            else None,
            "met": (median <= self.target) if median is not None and self.target else None,
        }


MEASURES = {
    m.key: m
    for m in [
        Measure("first_request", "start → first model request", "s", 0.39, 0.78),
        Measure("single_wall", "whole 5-call single-expert run", "s", 0.48, 0.96),
        Measure("single_rss", "peak RSS (5-call run)", "MiB", 83, 166),
        Measure("single_exit", "last event → exit (5-call run)", "ms", 50, 33),
        Measure("delegates_wall", "10 parallel delegates × 1 s, whole", "s", 1.3, 2.11),
        Measure("version", "perstack --version", "s", 0.3),
        Measure("help", "perstack run --help", "s", 0.3),
        Measure("delegates_first_request", "delegates: start → first request", "s"),
        Measure("delegates_spread", "delegates: 1st → 10th delegate request", "s"),
        Measure("delegates_rss", "delegates: peak RSS", "MiB"),
        Measure("delegates_exit", "delegates: last event → exit", "ms"),
    ]
}
HEADLINE = ["first_request", "single_wall", "single_rss", "single_exit", "delegates_wall"]


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:.1f} {unit}"


# Running one process ----------------------------------------------------------------------------


@dataclass
class Outcome:
    returncode: int
    start_wall: float
    """time.time() just before Popen."""
    wall: float
    """Seconds from just before Popen to wait4 returning."""
    rss_mib: float
    exit_gap_ms: float | None
    """Arrival of the last stdout line → wait4 returning (None: no output)."""
    lines: list[str]
    stderr: str
    timed_out: bool

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines if line.strip()]


def child_env(fake: FakeLLM) -> dict[str, str]:
    """The measured process's environment: this one, pointed at the fake server.

    Without PYTHONDONTWRITEBYTECODE (set by some tools' shells): an installed package has its
    bytecode compiled (pip does it at install), while with the variable every module changed
    since the last compile is compiled again on every start (~45 ms here). The warm-up round
    writes the bytecode.
    """
    env = {**os.environ, **fake.env()}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def spawn(argv: list[str], cwd: Path, env: dict[str, str]) -> Outcome:
    arrivals: list[tuple[float, str]] = []
    with tempfile.TemporaryFile() as err:
        start_wall = time.time()
        start = time.monotonic()
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err
        )
        assert process.stdout is not None
        stdout = process.stdout

        def read() -> None:
            for raw in stdout:
                arrivals.append((time.monotonic(), raw.decode("utf-8", "replace")))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            process.kill()

        watchdog = threading.Timer(TIMEOUT, kill)
        watchdog.start()
        _, status, usage = os.wait4(process.pid, 0)
        exited = time.monotonic()
        watchdog.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        reader.join()
        stdout.close()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    return Outcome(
        returncode=process.returncode,
        start_wall=start_wall,
        wall=exited - start,
        rss_mib=usage.ru_maxrss / 1024,
        exit_gap_ms=(exited - arrivals[-1][0]) * 1000 if arrivals else None,
        lines=[line for _, line in arrivals],
        stderr=stderr,
        timed_out=timed_out.is_set(),
    )


class RunFailed(Exception):
    pass


def check_completed(outcome: Outcome, expert: str) -> list[dict[str, Any]]:
    """The parsed events of a run that exited 0 and whose last run event completes ``expert``."""
    if outcome.timed_out:
        raise RunFailed(f"killed after {TIMEOUT:.0f} s")
    if outcome.returncode != 0:
        raise RunFailed(f"exit code {outcome.returncode}")
    try:
        events = outcome.events()
    except json.JSONDecodeError as exc:
        raise RunFailed(f"stdout is not JSONL: {exc}") from exc
    if not events:
        raise RunFailed("no events on stdout")
    # Runtime events (skillDisconnected...) may follow; the last run event must be the top
    # expert's completeRun.
    run_events = [e for e in events if "expertKey" in e]
    last = run_events[-1] if run_events else {}
    if last.get("type") != "completeRun" or last.get("expertKey") != expert:
        raise RunFailed(
            f"last run event is {last.get('type')}:{last.get('expertKey')}, "
            f"not completeRun:{expert}"
        )
    stops = [
        e
        for e in events
        if e.get("type", "").startswith("stopRunBy") and e["type"] != "stopRunByDelegate"
    ]
    if stops:
        raise RunFailed(f"run stopped: {stops[0]['type']}")
    return events


# Scenarios --------------------------------------------------------------------------------------


def command(expert: str, query: str) -> list[str]:
    return [*PERSTACK, "run", expert, query, *MODEL_ARGS]


def run_single(fake: FakeLLM) -> dict[str, float]:
    fake.reset()
    fake.script(
        reply_tool_calls([("writeTextFile", {"path": "notes.txt", "text": "alpha"})]),
        reply_tool_calls([("appendTextFile", {"path": "notes.txt", "text": " beta"})]),
        reply_tool_calls([("readTextFile", {"path": "notes.txt"})]),
        reply_tool_calls([("attemptCompletion", {})]),
        reply_text(FINAL_TEXT),
    )
    with tempfile.TemporaryDirectory(prefix="cli-run-") as tmp:
        workspace = Path(tmp)
        (workspace / "perstack.toml").write_text(SINGLE_TOML)
        outcome = spawn(command("bench", "go"), workspace, child_env(fake))
        try:
            events = check_completed(outcome, "bench")
            if len(fake.requests) != 5:
                raise RunFailed(f"{len(fake.requests)} model requests, expected 5")
            notes = workspace / "notes.txt"
            content = notes.read_text() if notes.exists() else None
            if content != "alpha beta":
                raise RunFailed(f"notes.txt holds {content!r}, expected 'alpha beta'")
            if "alpha beta" not in json.dumps(fake.requests[3]["messages"][-1]):
                raise RunFailed("readTextFile's result did not reach the 4th model request")
            if not any(e["type"] == "completeRun" and e.get("text") == FINAL_TEXT for e in events):
                raise RunFailed(f"completeRun does not carry the final text {FINAL_TEXT!r}")
            if sum(e.get("type") == "callTools" for e in events) != 4:
                raise RunFailed("expected 4 callTools events")
        except RunFailed as exc:
            raise RunFailed(f"{exc}\n{_tail(outcome)}") from None
    assert outcome.exit_gap_ms is not None
    return {
        "first_request": fake.request_times[0] - outcome.start_wall,
        "single_wall": outcome.wall,
        "single_rss": outcome.rss_mib,
        "single_exit": outcome.exit_gap_ms,
    }


def _system_text(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    if not messages or messages[0].get("role") != "system":
        return ""
    content = messages[0].get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


def team_reply(body: dict[str, Any]) -> Reply:
    """Coordinator: 10 parallel delegate calls, then text; each delegate: text after 1 s."""
    system = _system_text(body)
    if COORDINATOR_MARKER in system:
        if any(m.get("role") == "tool" for m in body.get("messages", [])):
            return reply_text(COORDINATOR_TEXT)
        return reply_tool_calls([(name, {"query": f"task for {name}"}) for name in DELEGATES])
    for name in DELEGATES:
        if f"<{name}>" in system:
            return reply_delay(DELEGATE_LATENCY, reply_text(f"{name} reporting"))
    return reply_text("unexpected request")  # caught by the checks below


def run_delegates(fake: FakeLLM) -> dict[str, float]:
    fake.reset()
    fake.default = team_reply  # after reset(), which clears the default
    with tempfile.TemporaryDirectory(prefix="cli-run-team-") as tmp:
        workspace = Path(tmp)
        (workspace / "perstack.toml").write_text(TEAM_TOML)
        outcome = spawn(command("coordinator", "run the team"), workspace, child_env(fake))
    try:
        events = check_completed(outcome, "coordinator")
        starts = Counter(e.get("expertKey") for e in events if e.get("type") == "startRun")
        completes = Counter(e.get("expertKey") for e in events if e.get("type") == "completeRun")
        missing = [n for n in DELEGATES if starts[n] != 1 or completes[n] != 1]
        if missing:
            raise RunFailed(
                f"delegates without exactly one startRun/completeRun: {missing}; "
                f"startRun per expert: {dict(starts)}"
            )
        systems = [_system_text(body) for body in fake.requests]
        delegate_times = sorted(
            t
            for t, s in zip(fake.request_times, systems, strict=True)
            if COORDINATOR_MARKER not in s
        )
        if len(delegate_times) != len(DELEGATES) or len(fake.requests) != len(DELEGATES) + 2:
            raise RunFailed(
                f"{len(fake.requests)} model requests ({len(delegate_times)} from delegates), "
                f"expected {len(DELEGATES) + 2}"
            )
        final = fake.requests[-1]
        tool_results = [m for m in final.get("messages", []) if m.get("role") == "tool"]
        answered = sum(
            any(f"{n} reporting" in json.dumps(m) for m in tool_results) for n in DELEGATES
        )
        if COORDINATOR_MARKER not in systems[-1] or answered != len(DELEGATES):
            raise RunFailed(
                f"the coordinator's last request carries {answered} of {len(DELEGATES)} results"
            )
        if not any(e.get("text") == COORDINATOR_TEXT for e in events if e["type"] == "completeRun"):
            raise RunFailed("the coordinator's completeRun lacks its final text")
    except RunFailed as exc:
        raise RunFailed(f"{exc}\n{_tail(outcome)}") from None
    assert outcome.exit_gap_ms is not None
    return {
        "delegates_wall": outcome.wall,
        "delegates_first_request": fake.request_times[0] - outcome.start_wall,
        "delegates_spread": delegate_times[-1] - delegate_times[0],
        "delegates_rss": outcome.rss_mib,
        "delegates_exit": outcome.exit_gap_ms,
    }


def run_plain(key: str, args: list[str]) -> Callable[[FakeLLM], dict[str, float]]:
    def scenario(fake: FakeLLM) -> dict[str, float]:
        start = time.perf_counter()
        done = subprocess.run(
            [*PERSTACK, *args], capture_output=True, text=True, timeout=TIMEOUT, env=child_env(fake)
        )
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise RunFailed(f"exit code {done.returncode}\n{done.stderr[-1500:]}")
        return {key: wall}

    return scenario


def _tail(outcome: Outcome) -> str:
    types = [json.loads(line).get("type", "?") for line in outcome.lines[-12:] if _is_json(line)]
    return (
        f"    exit {outcome.returncode}, {len(outcome.lines)} events, last: {types}\n"
        f"    stderr tail: {outcome.stderr[-1500:].strip() or '(empty)'}"
    )


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


SCENARIOS: list[tuple[str, Callable[[FakeLLM], dict[str, float]]]] = [
    ("version", run_plain("version", ["--version"])),
    ("help", run_plain("help", ["run", "--help"])),
    ("single", run_single),
    ("delegates", run_delegates),
]


# Report -----------------------------------------------------------------------------------------


def print_measure(measure: Measure) -> None:
    stats = measure.stats()
    if stats is None:
        print(f"  {measure.label:<42} no successful run")
        return
    u = measure.unit
    line = (
        f"  {measure.label:<42} median {_fmt(stats['median'], u):>10}"
        f"   p25–p75 {_fmt(stats['p25'], u)}–{_fmt(stats['p75'], u)}"
        f"   min–max {_fmt(stats['min'], u)}–{_fmt(stats['max'], u)}"
    )
    if measure.target is not None:
        line += f"   target ≤ {_fmt(measure.target, u)}"
    if measure.perstack is not None:
        ratio = stats["median"] / measure.perstack
        line += f"   Perstack {_fmt(measure.perstack, u)}   ours/Perstack {ratio:.2f}"
    print(line)


def print_summary(keys: list[str]) -> None:
    header = (
        f"{'measure':<42}{'median':>11}{'p25–p75':>22}{'min–max':>22}"
        f"{'target':>12}{'Perstack':>12}{'ratio':>7}  met"
    )
    print(header)
    print("-" * len(header))
    for key in keys:
        m = MEASURES[key]
        data = m.as_json()
        if data["median"] is None:
            print(f"{m.label:<42}{'FAILED':>11}")
            continue
        u = m.unit
        spread = f"{_fmt(data['p25'], u)}–{_fmt(data['p75'], u)}"
        extremes = f"{_fmt(data['min'], u)}–{_fmt(data['max'], u)}"
        target = f"≤ {_fmt(m.target, u)}" if m.target is not None else "–"
        perstack = _fmt(m.perstack, u) if m.perstack is not None else "–"
        ratio = f"{data['ratio']:.2f}" if data["ratio"] is not None else "–"
        met = {True: "yes", False: "NO", None: "–"}[data["met"]]
        print(
            f"{m.label:<42}{_fmt(data['median'], u):>11}{spread:>22}{extremes:>22}"
            f"{target:>12}{perstack:>12}{ratio:>7}  {met}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()

    failures: list[str] = []
    fake = FakeLLM()
    try:
        for round_ in range(args.runs + 1):
            warmup = round_ == 0
            label = "warm-up" if warmup else f"round {round_}/{args.runs}"
            print(f"{label}:", end="", flush=True)
            for name, scenario in SCENARIOS:
                try:
                    figures = scenario(fake)
                except (RunFailed, subprocess.TimeoutExpired) as exc:
                    failures.append(f"{label}, {name}: {exc}")
                    print(f" {name} FAILED", end="", flush=True)
                    print(f"\n  FAILED {label}, {name}: {exc}", file=sys.stderr, flush=True)
                    continue
                if not warmup:
                    for key, value in figures.items():
                        MEASURES[key].samples.append(value)
                print(f" {name} ok", end="", flush=True)
            print(flush=True)
    finally:
        fake.close()

    print()
    print(f"Figures over {args.runs} rounds (failed runs left out)")
    for key in HEADLINE:
        print_measure(MEASURES[key])
    print("Other figures")
    for key in MEASURES:
        if key not in HEADLINE:
            print_measure(MEASURES[key])
    print()
    print_summary(list(MEASURES))
    if failures:
        print()
        print(f"{len(failures)} FAILED run(s):")
        for failure in failures:
            print(f"  {failure.splitlines()[0]}")
    if args.json:
        print()
        print(
            json.dumps(
                {
                    "runs": args.runs,
                    "measures": [m.as_json() for m in MEASURES.values()],
                    "failures": failures,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
