"""The crash-resume benchmark's cases and report: when to kill, what a case found, how it is
classified, and the summary printed at the end (see ``crash_resume.py``)."""

from __future__ import annotations

import json
import random
import statistics
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from crash_harness.team import (  # noqa: E402
    DEFINITIONS,
    LEAD,
    LEAD_GENERATIONS,
    STEPS,
    TIME_KILL_FRACTION,
    latest,
    progress,
)


@dataclass
class Moment:
    kind: str
    """time, request, line or event."""
    value: float
    """Seconds (time), request number (request), stdout line number (line), occurrence
    (event)."""
    extra: float = 0.0
    """request: seconds after the request arrived."""
    event: str = ""
    """event: ``type:expertKey`` of the event after which to kill."""

    def describe(self) -> str:
        if self.kind == "time":
            return f"{self.value:.3f} s after start"
        if self.kind == "request":
            return f"{self.extra * 1000:.0f} ms after request #{int(self.value)}"
        if self.kind == "event":
            return f"after event {self.event} #{int(self.value)}"
        return f"at stdout line #{int(self.value)}"


@dataclass
class Reference:
    wall: float
    lines: int
    requests: int
    events: list[str]
    """``type:expertKey`` of each stdout event but the text/reasoning deltas, in order."""


def event_key(line: str) -> str | None:
    """``type:expertKey`` of a stdout line (None: a delta or not JSON)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    kind = event.get("type") if isinstance(event, dict) else None
    if kind is None or kind in ("streamRunResult", "streamReasoning"):
        return None
    return f"{kind}:{event.get('expertKey')}"


def draw_moment(rng: random.Random, reference: Reference) -> Moment:
    kind = rng.choice(["time", "request", "line", "event"])
    if kind == "time":
        return Moment("time", rng.uniform(0, TIME_KILL_FRACTION * reference.wall))
    if kind == "request":
        return Moment("request", rng.randint(1, reference.requests), rng.uniform(0, 0.1))
    if kind == "event":
        index = rng.randrange(len(reference.events))
        key = reference.events[index]
        return Moment("event", reference.events[: index + 1].count(key), event=key)
    return Moment("line", rng.randint(1, reference.lines))


@dataclass
class CaseResult:
    case: int
    seed: str
    kind: str = ""
    moment: str = ""
    attempts: int = 0
    landed: bool = False
    """The kill hit the run once its job existed (perstack/jobs/<id>/)."""
    missed: int = 0
    """Moments redrawn because the run had exited before the kill."""
    before_job: int = 0
    """Moments redrawn because the kill came before the job existed (nothing to continue)."""
    where: str = ""
    """Category of the kill moment, from what was stored at the kill."""
    detail: str = ""
    completed: bool = False
    problems: list[str] = field(default_factory=list)
    redone: list[str] = field(default_factory=list)
    """``lineage step k: class (how)`` per redone step."""
    redone_checkpointed: int = 0
    redone_effect_only: int = 0
    repeated_elsewhere: int = 0
    extra_requests: int = 0
    duplicate_steps: dict[str, list[int]] = field(default_factory=dict)
    corrupt: list[str] = field(default_factory=list)
    torn: int = 0
    tmp: int = 0
    kill_wall: float = 0.0
    continue_wall: float = 0.0
    case_wall: float = 0.0
    workspace: str = ""


CATEGORIES = [
    "before the first checkpoint (no request yet)",
    "before the first checkpoint",
    "delegates running",
    "both delegates done, lead not resumed",
    "lead's final step",
    "after lead's completeRun was stored",
]


def classify(checkpoints: list[dict[str, Any]], requests: int) -> tuple[str, str]:
    """Where the kill landed, from the checkpoints stored at that moment."""
    done = progress(checkpoints)
    lead = latest(checkpoints, LEAD)
    parts = [f"{LEAD} {done.get(LEAD, 0)}/{LEAD_GENERATIONS}"]
    delegates_done = 0
    for name, steps in STEPS.items():
        lineages = [k for k in done if k.startswith(f"{name}:")]
        stored = max((done[k] for k in lineages), default=0)
        parts.append(f"{name} {stored}/{steps + 1}")
        delegates_done += stored == steps + 1
    detail = "checkpointed generations " + ", ".join(parts) + f"; {requests} requests received"
    if not checkpoints:
        where = "before the first checkpoint"
        if requests == 0:
            where += " (no request yet)"
    elif lead is None:
        where = "delegates running, lead checkpoint missing (!)"
    elif lead.get("status") == "completed":
        where = "after lead's completeRun was stored"
    elif lead.get("status") == "stoppedByDelegate":
        where = (
            "both delegates done, lead not resumed"
            if delegates_done == len(STEPS)
            else "delegates running"
        )
    else:
        where = "lead's final step"
    return where, detail


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def summarize(results: list[CaseResult]) -> dict[str, Any]:
    n = len(results)
    completed = sum(r.completed for r in results)
    redone_total = sum(len(r.redone) for r in results) + sum(r.repeated_elsewhere for r in results)
    dups = sum(len(v) - len(set(v)) for r in results for v in r.duplicate_steps.values())
    corrupt = sum(len(r.corrupt) for r in results)
    return {
        "cases": n,
        "landed": sum(r.landed for r in results),
        "missed_kills": sum(r.missed for r in results),
        "kills_before_job": sum(r.before_job for r in results),
        "completed": completed,
        "completed_pct": round(100 * completed / n, 1) if n else 0.0,
        "redone_steps": redone_total,
        "redone_cases": sum(bool(r.redone or r.repeated_elsewhere) for r in results),
        "redone_checkpointed": sum(r.redone_checkpointed for r in results),
        "redone_effect_only": sum(r.redone_effect_only for r in results),
        "repeated_elsewhere": sum(r.repeated_elsewhere for r in results),
        "extra_requests": sum(max(r.extra_requests, 0) for r in results),
        "duplicate_step_numbers": dups,
        "corrupt_files": corrupt,
        "torn_last_lines": sum(r.torn for r in results),
        "stray_tmp_files": sum(r.tmp for r in results),
        "case_wall_median": statistics.median(r.case_wall for r in results) if results else 0,
        "kill_run_wall_median": statistics.median(r.kill_wall for r in results) if results else 0,
        "continue_wall_median": (
            statistics.median(r.continue_wall for r in results) if results else 0
        ),
        "where": dict(Counter(r.where for r in results).most_common()),
        "targets": {
            "completed_100pct": completed == n and n > 0,
            "zero_redone": redone_total == 0,
            "zero_corrupt": corrupt == 0,
            "zero_duplicate_step_numbers": dups == 0,
        },
    }


def print_report(
    summary: dict[str, Any], results: list[CaseResult], reference: Reference, seed: int
) -> None:
    n = summary["cases"]
    print()
    print(
        f"Crash resume: {n} cases, seed {seed}; kills landed on a live job {summary['landed']}/{n}"
    )
    print(
        f"Moments redrawn: {summary['kills_before_job']} killed before the job existed "
        "(nothing stored; --continue must say 'No jobs found', exit 2, and store nothing: "
        f"checked), {summary['missed_kills']} after the run had exited"
    )
    print(
        f"Reference (uninterrupted) run: {reference.wall:.3f} s, {reference.requests} model "
        f"requests, {reference.lines} stdout lines"
    )
    print("Kill moments, by what was stored at the kill:")
    counts = dict(summary["where"])
    for where in [*CATEGORIES, *(w for w in counts if w not in CATEGORIES)]:
        print(f"  {where:<48}{counts.get(where, 0):>5}")
    kinds = Counter(r.kind for r in results)
    print(
        f"  (kinds of moment: {kinds['time']} time, {kinds['request']} after a request, "
        f"{kinds['line']} at a stdout line, {kinds['event']} after an event)"
    )
    print()
    print("Definitions:")
    print(DEFINITIONS)
    print()
    t = summary["targets"]
    rows = [
        (
            "completed",
            f"{summary['completed']}/{n} ({summary['completed_pct']:.1f} %)",
            "100 %",
            met(t["completed_100pct"]),
        ),
        (
            "completed steps redone",
            f"{summary['redone_steps']} in {summary['redone_cases']} cases",
            "0",
            met(t["zero_redone"]),
        ),
        ("  checkpointed step redone", str(summary["redone_checkpointed"]), "", ""),
        ("  effect-only (tool ran, no checkpoint)", str(summary["redone_effect_only"]), "", ""),
        ("  line written twice otherwise", str(summary["repeated_elsewhere"]), "", ""),
        ("requests beyond the checkpoints", str(summary["extra_requests"]), "", ""),
        (
            "duplicate step numbers",
            str(summary["duplicate_step_numbers"]),
            "0",
            met(t["zero_duplicate_step_numbers"]),
        ),
        ("corrupt files", str(summary["corrupt_files"]), "0", met(t["zero_corrupt"])),
        ("torn last lines (tolerated)", str(summary["torn_last_lines"]), "", ""),
        ("stray .tmp files (tolerated)", str(summary["stray_tmp_files"]), "", ""),
        (
            "time per case, median",
            f"{summary['case_wall_median']:.2f} s (kill run "
            f"{summary['kill_run_wall_median']:.2f} s, continue "
            f"{summary['continue_wall_median']:.2f} s)",
            "",
            "",
        ),
    ]
    header = f"{'measure':<40}{'value':<44}{'target':<8}met"
    print(header)
    print("-" * len(header))
    for label, value, target, ok in rows:
        print(f"{label:<40}{value:<44}{target:<8}{ok}")
    overall = t["completed_100pct"] and t["zero_redone"] and t["zero_corrupt"]
    print()
    print(
        f"Target (100 % completed / 0 completed steps redone / 0 corrupt files): {met(overall)}"
        + (
            " (the only misses are effect-only repeats: kills between a tool's effect and its "
            "step's checkpoint)"
            if not overall
            and t["completed_100pct"]
            and t["zero_corrupt"]
            and summary["redone_steps"] == summary["redone_effect_only"]
            else ""
        )
    )
    bad = [
        r
        for r in results
        if not r.completed or r.redone or r.duplicate_steps or r.corrupt or r.repeated_elsewhere
    ]
    if bad:
        print()
        print(f"{len(bad)} case(s) off target:")
        for r in bad:
            print(f"  case {r.case} (seed {r.seed!r}): kill {r.moment}; {r.where}")
            print(f"      {r.detail}")
            for line in r.redone:
                print(f"      redone: {line}")
            for problem in r.problems:
                print(f"      problem: {problem[:300]}")
            for lineage, steps in r.duplicate_steps.items():
                print(f"      duplicate step numbers: {lineage} {steps}")
            for corrupt in r.corrupt:
                print(f"      corrupt: {corrupt}")
            if r.workspace:
                print(f"      kept: {r.workspace}")
