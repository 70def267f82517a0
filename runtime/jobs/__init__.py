"""Stored jobs: the folder layout (:mod:`~runtime.jobs.store`), its lock, and the jobs API.

The jobs API (:class:`Jobs`) is the one way to read stored jobs: ``perstack log``, the studio's
history and replay, and embedders list jobs, walk a job's runs and delegation tree, its
checkpoints and events, and follow a live job through it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime.jobs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = ["CheckpointSummary", "JobSummary", "Jobs", "RunInfo", "TreeNode"]
