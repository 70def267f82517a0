"""``perstack diff``: what changed between two stored jobs, step by step.

The two delegation trees are aligned by expert and call order: the coordinators pair up, and
under each pair the k-th call of an expert in one job pairs with the k-th call of the same expert
in the other. Inside a pair of runs the steps are aligned in order (a step one job made and the
other did not is shown as such, and the steps after it still pair up). For each pair of steps the
tool calls, their arguments, their results, the text the expert wrote, how the step ended, its
tokens and cost are compared; time is shown beside them but never makes two jobs differ, since it
always does.

::

    from runtime.diff import diff_jobs
    from runtime.jobs import Jobs

    result = diff_jobs(Jobs.for_workspace(Path.cwd()), "job-a", "job-b")
    print(result.summary)                       # "First divergence: lead › coder, step 3: ..."
    for depth, node in result.walk():           # the aligned runs, depth first
        for step in node.steps:                 # the aligned steps: step.a, step.b, differences
            ...

Everything is read through the jobs API (:class:`runtime.jobs.Jobs`), so jobs Perstack stored
read the same. :mod:`runtime.diff.model` holds the shapes, :mod:`runtime.diff.build` compares,
:mod:`runtime.diff.describe` puts things on one line (for the text report and the studio's
side-by-side view), :mod:`runtime.diff.render` writes the report, :mod:`runtime.diff.cli` is the
command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime._lazy import lazy_exports

if TYPE_CHECKING:
    from runtime.diff.build import diff_jobs, origin_of
    from runtime.diff.cli import build_parser, main
    from runtime.diff.describe import (
        describe_difference,
        describe_job,
        describe_node,
        describe_node_side,
        describe_step,
        describe_value,
        step_metrics,
    )
    from runtime.diff.format import format_cost, format_duration
    from runtime.diff.model import (
        MARKS,
        CallView,
        Difference,
        Divergence,
        JobDiff,
        JobSide,
        NodeDiff,
        NodeSide,
        ResultView,
        StepDiff,
        StepView,
    )
    from runtime.diff.render import render_json, render_text

# Loaded on first use: ``python -m runtime.diff.cli`` must not find its module already loaded,
# and the studio's history pays for the comparison only when it diffs.
_EXPORTS = {
    "CallView": "runtime.diff.model",
    "Difference": "runtime.diff.model",
    "Divergence": "runtime.diff.model",
    "JobDiff": "runtime.diff.model",
    "JobSide": "runtime.diff.model",
    "MARKS": "runtime.diff.model",
    "NodeDiff": "runtime.diff.model",
    "NodeSide": "runtime.diff.model",
    "ResultView": "runtime.diff.model",
    "StepDiff": "runtime.diff.model",
    "StepView": "runtime.diff.model",
    "describe_difference": "runtime.diff.describe",
    "describe_job": "runtime.diff.describe",
    "describe_node": "runtime.diff.describe",
    "describe_node_side": "runtime.diff.describe",
    "describe_step": "runtime.diff.describe",
    "describe_value": "runtime.diff.describe",
    "diff_jobs": "runtime.diff.build",
    "format_cost": "runtime.diff.format",
    "format_duration": "runtime.diff.format",
    "build_parser": "runtime.diff.cli",
    "main": "runtime.diff.cli",
    "origin_of": "runtime.diff.build",
    "render_json": "runtime.diff.render",
    "render_text": "runtime.diff.render",
    "step_metrics": "runtime.diff.describe",
}

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "CallView",
    "Difference",
    "Divergence",
    "JobDiff",
    "JobSide",
    "MARKS",
    "NodeDiff",
    "NodeSide",
    "ResultView",
    "StepDiff",
    "StepView",
    "build_parser",
    "describe_difference",
    "describe_job",
    "describe_node",
    "describe_node_side",
    "describe_step",
    "describe_value",
    "diff_jobs",
    "format_cost",
    "format_duration",
    "main",
    "origin_of",
    "render_json",
    "render_text",
    "step_metrics",
]
