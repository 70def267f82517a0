"""Stored jobs: the folder layout (:mod:`~runtime.jobs.store`), its lock, and the jobs API.

The jobs API (:class:`Jobs`) is the one way to read stored jobs: ``perstack log``, the studio's
history and replay, and embedders list jobs, walk a job's runs and delegation tree, its
checkpoints and events, and follow a live job through it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime._lazy import lazy_exports

if TYPE_CHECKING:
    from runtime.jobs.api import CheckpointSummary, Jobs, JobSummary
    from runtime.jobs.runs import RunInfo, TreeNode

# Loaded on first use: the engine imports runtime.jobs.store on every run, and must not pay for
# the readers.
_EXPORTS = {
    "CheckpointSummary": "runtime.jobs.api",
    "JobSummary": "runtime.jobs.api",
    "Jobs": "runtime.jobs.api",
    "RunInfo": "runtime.jobs.runs",
    "TreeNode": "runtime.jobs.runs",
}


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = ["CheckpointSummary", "JobSummary", "Jobs", "RunInfo", "TreeNode"]
