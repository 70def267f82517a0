"""Eval sets and batches fanned out on a Ray cluster: ``perstack eval FILE --ray [ADDRESS]``.

Each case is one Ray task (``max_retries``: a task whose worker dies is run again by Ray, on
another worker); the driver gathers the results into the same :class:`~runtime.evals.EvalRun` a
local eval makes, so the table, ``--json``, stored results and ``--compare`` are the same.
Without an address, ``ray.init()`` starts a local cluster; with one, the tasks go to that cluster,
whose workers need this package, the eval set's files and perstack.toml at the same paths, and the
provider's keys in their environment.

Storage: every worker writes to the storage root the driver names (a folder all workers share,
or the store ``PERSTACK_STORAGE_URL`` names). A case's job id is fixed by the driver
(``<eval run id>-<case number>``), so a task run again after its worker died finds the job its
first attempt left half done, removes it and runs the case from the start in a fresh scratch
workspace (the files the dead worker wrote are gone with it): storage ends up with exactly one
job per case, complete, and one result.

Ray is the optional ``scale`` extra; without it ``--ray`` says how to install it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from runtime.errors import UsageError
from runtime.evals.format import EvalSet
from runtime.evals.results import CaseResult, EvalRun
from runtime.evals.runner import Progress, failed_case
from runtime.schema.events import now_ms
from runtime.schema.ids import new_id

INSTALL_HINT = "--ray needs Ray: pip install 'perstack-studio[scale]'"
TASK_RETRIES = 3
"""Times Ray runs a case again whose worker died (Ray's own retry, not ours)."""
LOCK_WAIT_S = 90.0
"""How long a retried case waits for its dead attempt's lock to go stale in an object store."""


def require_ray() -> Any:
    """The ``ray`` module.

    Raises:
        UsageError: Ray is not installed (the message says how to install it).
    """
    try:
        import ray
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return ray


def run_on_ray(
    eval_set: EvalSet,
    *,
    config_path: Path | None,
    storage_root: Path,
    address: str | None,
    progress: Progress | None = None,
    storage_url: str | None = None,
) -> EvalRun:
    """Run every case of ``eval_set`` as a Ray task and gather the results (in file order).

    ``storage_url``: the object store ``storage_root`` is the cache of, when perstack.toml names
    it (``storageUrl``): the workers are told, as the variable would tell them.

    Raises:
        UsageError: Ray is missing, or the cluster at ``address`` cannot be reached.
    """
    ray = require_ray()
    if not ray.is_initialized():
        try:
            ray.init(address=address or None, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise UsageError(f"Cannot reach the Ray cluster at {address!r}: {error}") from None
    run_id, started, clock = new_id(), now_ms(), time.monotonic()
    task = ray.remote(max_retries=TASK_RETRIES, retry_exceptions=False)(run_case_task)
    pending = {
        task.remote(
            str(eval_set.path),
            case.name,
            str(config_path) if config_path else None,
            str(storage_root),
            f"{run_id}-{index}",
            storage_url,
        ): index
        for index, case in enumerate(eval_set.cases)
    }
    results: dict[int, CaseResult] = {}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            index = pending.pop(ref)
            case = eval_set.cases[index]
            try:
                results[index] = CaseResult.model_validate(ray.get(ref))
            except Exception as error:  # the task's retries are spent: that case failed
                results[index] = failed_case(eval_set, case, error)
            if progress is not None:
                progress(results[index], len(results), len(eval_set.cases))
    return EvalRun(
        id=run_id,
        name=eval_set.name,
        eval_file=str(eval_set.path),
        started_at=started,
        duration_ms=round((time.monotonic() - clock) * 1000),
        cases=[results[index] for index in range(len(eval_set.cases))],
    )


def run_case_task(
    eval_file: str,
    case_name: str,
    config_path: str | None,
    storage_root: str,
    job_id: str,
    storage_url: str | None = None,
) -> dict[str, Any]:
    """One case, in a Ray worker: the case's result as a JSON-ready dict."""
    import os

    from runtime.engine.runner import load_config_for, run
    from runtime.jobs.store import STORAGE_URL_ENV

    if storage_url:
        os.environ.setdefault(STORAGE_URL_ENV, storage_url)
    from runtime.evals.format import load_eval_set
    from runtime.evals.runner import EvalOptions, run_case

    eval_set = load_eval_set(Path(eval_file))
    case = next(case for case in eval_set.cases if case.name == case_name)
    try:
        root = Path(storage_root)
        _forget_attempt(root, job_id)
        config = load_config_for(eval_set.expert_of(case), config_path, eval_set.path.parent)
        options = EvalOptions(storage_root=root)
        result = asyncio.run(run_case(eval_set, case, config, options, run, job_id=job_id))
    except Exception as error:  # the case's result, never a task failure that ends the eval
        result = failed_case(eval_set, case, error)
    return result.to_dict()


def _forget_attempt(storage_root: Path, job_id: str) -> None:
    """Remove what an earlier attempt of this task left (its worker died mid-case).

    That is the case's job and its judges' jobs, in the folder or in the object store the
    storage root is the cache of.
    """
    from runtime.jobs.store import Storage

    storage = Storage(storage_root)
    if not storage.job_dir(job_id).is_dir():
        return  # the first attempt: nothing to forget (a judge's job never comes before it)
    for stored in storage.job_ids():
        if stored == job_id or stored.startswith(f"{job_id}-judge-"):
            _remove_when_free(storage, stored)


def _remove_when_free(storage: Any, job_id: str) -> None:
    """Remove a dead attempt's job, waiting while the store still counts its lock as held.

    A worker on another machine died without releasing its lock: the store lets it go once it
    is stale (a minute without a heartbeat).
    """
    from runtime.errors import JobLockedError

    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            storage.remove_job(job_id)
            return
        except JobLockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
