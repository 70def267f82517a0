"""Eval sets: score a team on a fixed set of cases after every change (``perstack eval``).

The file format is :mod:`runtime.evals.format`'s; running the cases :mod:`runtime.evals.runner`'s;
results, their storage and comparison :mod:`runtime.evals.results`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime._lazy import lazy_exports

if TYPE_CHECKING:
    from runtime.evals.format import Case, EvalSet, eval_set_schema, load_eval_set
    from runtime.evals.results import (
        CaseResult,
        CheckResult,
        Comparison,
        EvalRun,
        compare,
        find_eval_run,
        store_eval_run,
        stored_eval_runs,
    )
    from runtime.evals.runner import EvalOptions, final_text, run_eval_set

_EXPORTS = {
    "Case": "runtime.evals.format",
    "EvalSet": "runtime.evals.format",
    "eval_set_schema": "runtime.evals.format",
    "load_eval_set": "runtime.evals.format",
    "CaseResult": "runtime.evals.results",
    "CheckResult": "runtime.evals.results",
    "Comparison": "runtime.evals.results",
    "EvalRun": "runtime.evals.results",
    "compare": "runtime.evals.results",
    "find_eval_run": "runtime.evals.results",
    "store_eval_run": "runtime.evals.results",
    "stored_eval_runs": "runtime.evals.results",
    "EvalOptions": "runtime.evals.runner",
    "final_text": "runtime.evals.runner",
    "run_eval_set": "runtime.evals.runner",
}

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "Case",
    "CaseResult",
    "CheckResult",
    "Comparison",
    "EvalOptions",
    "EvalRun",
    "EvalSet",
    "compare",
    "eval_set_schema",
    "final_text",
    "find_eval_run",
    "load_eval_set",
    "run_eval_set",
    "store_eval_run",
    "stored_eval_runs",
]
