"""Eval results: what each case did, stored per eval run, and the comparison of two runs.

Stored under the storage root as ``evals/{evalName}/{evalRunId}.json`` (the ``--json`` output,
written atomically), so ``perstack eval FILE --compare last`` and the studio's Evals view can
read earlier runs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, ValidationError

from runtime.errors import UsageError
from runtime.files import atomic_write
from runtime.schema.base import WireModel
from runtime.schema.checkpoint import Usage

RESULTS_VERSION = "1"


class CheckResult(WireModel):
    """One check of one case."""

    type: str
    label: str
    passed: bool
    detail: str = ""
    """Why it failed (empty when it passed)."""
    job_id: str | None = None
    """A judge check's own job."""


class CaseResult(WireModel):
    """One case of an eval run."""

    name: str
    expert: str
    passed: bool
    status: str
    """The run's final checkpoint status, or ``error`` when the run could not start."""
    job_id: str | None = None
    checks: list[CheckResult] = Field(default_factory=list)
    steps: int = 0
    usage: Usage = Field(default_factory=Usage)
    duration_ms: int = 0
    error: str | None = None
    """Why the run stopped, when it did not complete."""
    replayed_from: str | None = None
    """The job whose recording answered this case's model calls (``--replay``)."""


class EvalRun(WireModel):
    """One run of an eval set."""

    schema_version: str = RESULTS_VERSION
    id: str
    name: str
    eval_file: str
    started_at: int
    duration_ms: int = 0
    cases: list[CaseResult] = Field(default_factory=list)

    @property
    def passed(self) -> int:
        """Cases that passed."""
        return sum(case.passed for case in self.cases)

    @property
    def failed(self) -> int:
        """Cases that failed."""
        return len(self.cases) - self.passed

    def case(self, name: str) -> CaseResult | None:
        """The result of the case called ``name``."""
        return next((case for case in self.cases if case.name == name), None)


def _folder_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "eval"


def results_dir(storage_root: Path, eval_name: str) -> Path:
    """Where the runs of an eval set are stored."""
    return storage_root / "evals" / _folder_name(eval_name)


def store_eval_run(storage_root: Path, run: EvalRun) -> Path:
    """Write an eval run's results; return the file."""
    path = results_dir(storage_root, run.name) / f"{run.id}.json"
    atomic_write(
        path, json.dumps(run.to_dict(), indent=2, ensure_ascii=False) + "\n", make_parents=True
    )
    return path


def stored_eval_runs(storage_root: Path, eval_name: str) -> list[EvalRun]:
    """The stored runs of an eval set, oldest first (unreadable files are left out)."""
    folder = results_dir(storage_root, eval_name)
    runs = []
    for path in folder.glob("*.json") if folder.is_dir() else ():
        try:
            runs.append(EvalRun.model_validate_json(path.read_bytes()))
        except (OSError, ValidationError):
            continue
    return sorted(runs, key=lambda run: (run.started_at, run.id))


def find_eval_run(
    storage_root: Path, eval_name: str, wanted: str, *, before: str | None
) -> EvalRun:
    """The run ``--compare`` names: ``last`` (the latest before ``before``), an id, or a file.

    Raises:
        UsageError: no such run; the message lists where it looked.
    """
    candidate = Path(wanted)
    if wanted.endswith(".json") and candidate.is_file():
        try:
            return EvalRun.model_validate_json(candidate.read_bytes())
        except (OSError, ValidationError) as error:
            raise UsageError(f"{candidate} is not an eval result file: {error}") from None
    runs = [run for run in stored_eval_runs(storage_root, eval_name) if run.id != before]
    if wanted == "last":
        if not runs:
            raise UsageError(
                f"No earlier run of eval set {eval_name!r} in "
                f"{results_dir(storage_root, eval_name)} to compare with"
            )
        return runs[-1]
    found = next((run for run in runs if run.id == wanted), None)
    if found is None:
        known = ", ".join(run.id for run in runs[-5:]) or "none"
        raise UsageError(
            f"No run {wanted!r} of eval set {eval_name!r} in "
            f"{results_dir(storage_root, eval_name)} (latest: {known}); use 'last', a run id "
            "or a results .json file"
        )
    return found


@dataclass
class Comparison:
    """How an eval run differs from an earlier one, case by case."""

    regressions: list[str] = field(default_factory=list)
    """Cases that passed before and fail now."""
    improvements: list[str] = field(default_factory=list)
    """Cases that failed before and pass now."""
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    check_changes: dict[str, list[str]] = field(default_factory=dict)
    """Case → checks whose outcome changed (``+label`` now passes, ``-label`` now fails)."""

    def to_dict(self) -> dict[str, object]:
        """The comparison in the ``--json`` output."""
        return {
            "regressions": self.regressions,
            "improvements": self.improvements,
            "added": self.added,
            "removed": self.removed,
            "checkChanges": self.check_changes,
        }


def compare(previous: EvalRun, current: EvalRun) -> Comparison:
    """What changed from ``previous`` to ``current``."""
    result = Comparison()
    before = {case.name: case for case in previous.cases}
    for case in current.cases:
        old = before.get(case.name)
        if old is None:
            result.added.append(case.name)
            continue
        if old.passed and not case.passed:
            result.regressions.append(case.name)
        elif case.passed and not old.passed:
            result.improvements.append(case.name)
        old_checks = {check.label: check.passed for check in old.checks}
        changed = [
            ("+" if check.passed else "-") + check.label
            for check in case.checks
            if check.label in old_checks and old_checks[check.label] != check.passed
        ]
        if changed:
            result.check_changes[case.name] = changed
    names = {case.name for case in current.cases}
    result.removed = [case.name for case in previous.cases if case.name not in names]
    return result
