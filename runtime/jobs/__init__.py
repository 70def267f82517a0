"""Stored jobs: the folder layout (:mod:`~runtime.jobs.store`), its lock, and the jobs API.

The jobs API (:class:`Jobs`) is the one way to read stored jobs: ``perstack log``, the studio's
history and replay, and embedders list jobs, walk a job's runs and delegation tree, its
checkpoints and events, and follow a live job through it. The rule that places run segments in
the tree and counts steps (:mod:`runtime.jobs.runs`) is here too, for views built from events as
they come (the studio's live tree).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime._lazy import lazy_exports

if TYPE_CHECKING:
    from runtime.jobs.api import CheckpointSummary, Jobs, JobSummary
    from runtime.jobs.runs import (
        CHECKPOINT_EVENT_TYPES,
        Placement,
        RunInfo,
        SegmentLinker,
        SegmentStart,
        StepNumbers,
        TreeNode,
        count_steps,
        stop_calls,
    )

# Loaded on first use: the engine imports runtime.jobs.store on every run, and must not pay for
# the readers.
_EXPORTS = {
    "CHECKPOINT_EVENT_TYPES": "runtime.jobs.runs",
    "CheckpointSummary": "runtime.jobs.api",
    "JobSummary": "runtime.jobs.api",
    "Jobs": "runtime.jobs.api",
    "Placement": "runtime.jobs.runs",
    "RunInfo": "runtime.jobs.runs",
    "SegmentLinker": "runtime.jobs.runs",
    "SegmentStart": "runtime.jobs.runs",
    "StepNumbers": "runtime.jobs.runs",
    "TreeNode": "runtime.jobs.runs",
    "count_steps": "runtime.jobs.runs",
    "stop_calls": "runtime.jobs.runs",
}


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = [
    "CHECKPOINT_EVENT_TYPES",
    "CheckpointSummary",
    "JobSummary",
    "Jobs",
    "Placement",
    "RunInfo",
    "SegmentLinker",
    "SegmentStart",
    "StepNumbers",
    "TreeNode",
    "count_steps",
    "stop_calls",
]
