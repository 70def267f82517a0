"""Where a continued job, and a resumed delegation, start from: the checkpoints a job stored.

``--continue`` / ``--continue-job`` name a job; it goes on from its coordinator's latest stored
checkpoint (or ``--resume-from``), past any step that ran but was never stored, and a pending
interactive tool call gets the answer given with ``-i``. A job that stored no checkpoint starts
again from its first query. A parent stored while its delegates ran resumes each delegate from
the delegate's own latest checkpoint.
"""

from __future__ import annotations

import json

from runtime.config.resolve import ExpertDefinition
from runtime.engine.context import JobContext
from runtime.engine.states import recover_unstored_step
from runtime.errors import CheckpointError, PerstackError, UsageError
from runtime.jobs.events import read_job_events
from runtime.jobs.lock import INTERRUPTED_ERROR
from runtime.jobs.store import Storage
from runtime.schema.checkpoint import Checkpoint, Job, JobOrigin, ToolResult
from runtime.schema.events import InteractiveToolCallInfo, StartRun, now_ms
from runtime.schema.messages import TextPart
from runtime.schema.setting import RunSetting

__all__ = [
    "RESUMABLE",
    "answer_interactive",
    "continuation_checkpoint",
    "continuation_job_id",
    "first_query",
    "fork_job",
    "recovered_checkpoint",
    "stored_delegations",
    "was_interrupted",
]


def continuation_job_id(setting: RunSetting, storage: Storage | None) -> str | None:
    """The job ``--continue`` / ``--continue-job`` names (``None`` for a new job)."""
    if not (setting.continue_job or setting.continue_latest):
        return None
    if storage is None:
        raise UsageError("Continuing a job needs storage; it is turned off for this run")
    job_id = setting.continue_job
    if job_id is None:
        job_ids = storage.job_ids()
        if not job_ids:
            raise CheckpointError(f"No jobs found in {storage.jobs_dir} to continue")
        return job_ids[0]
    if not storage.job_dir(job_id).is_dir():
        recent = ", ".join(storage.job_ids()[:5]) or "none"
        raise CheckpointError(
            f"Job {job_id!r} not found in {storage.jobs_dir} (most recent jobs: {recent})"
        )
    return job_id


def continuation_checkpoint(
    setting: RunSetting,
    storage: Storage,
    job: Job,
    expert: ExpertDefinition,
    delegations: dict[str, Checkpoint] | None = None,
) -> Checkpoint | None:
    """The checkpoint a continuation of ``job`` starts from (read under the job's lock).

    None when the job stored none (its process died during its first step): it starts again.
    A ``--resume-from`` checkpoint of a delegate resumes that delegate, then its parent: the
    job goes on from the coordinator's checkpoint that waits for it, and ``delegations`` gets,
    by tool call, the checkpoint each waiting delegate on the way down goes on from.
    """
    if setting.resume_from:
        checkpoint = storage.load_checkpoint(job.id, setting.resume_from)
        while checkpoint.delegated_by is not None:
            parent = _waiting_parent(storage, checkpoint)
            if delegations is not None:
                delegations[checkpoint.delegated_by.tool_call_id] = checkpoint
            checkpoint = parent
    else:
        latest = _latest_coordinator_checkpoint(storage, job)
        if latest is None:
            return None
        checkpoint = recovered_checkpoint(storage, latest)
    if checkpoint.expert.key != expert.key:
        raise UsageError(
            f"Checkpoint expert key {checkpoint.expert.key!r} does not match "
            f"input expert key {expert.key!r}"
        )
    return checkpoint


def _latest_coordinator_checkpoint(storage: Storage, job: Job) -> Checkpoint | None:
    """The coordinator's checkpoint stored last.

    After a branch (a resume from an earlier checkpoint) that is the branch's, even where the
    line it left reached a higher step number.
    """
    from runtime.jobs.api import Jobs  # only continuations read a job back

    # In the order they were stored (a fork's copies of its origin's first).
    stored = [c for c in Jobs(storage.root).checkpoints(job.id) if not c.delegated]
    return storage.load_checkpoint(job.id, stored[-1].id) if stored else None


def _waiting_parent(storage: Storage, delegate: Checkpoint) -> Checkpoint:
    """The checkpoint of the run that called ``delegate`` and stopped to wait for it."""
    by = delegate.delegated_by
    assert by is not None
    waiting = [
        stored
        for stored in storage.checkpoints(delegate.job_id)
        if stored.run_id == by.run_id
        and stored.status == "stoppedByDelegate"
        and any(target.tool_call_id == by.tool_call_id for target in stored.delegate_to or [])
    ]
    if not waiting:
        raise CheckpointError(
            f"Checkpoint {delegate.id!r} of delegate {delegate.expert.key!r} cannot be resumed: "
            f"the checkpoint of {by.expert.key!r} that waits for it is not stored"
        )
    return waiting[-1]


def first_query(storage: Storage, job_id: str, query: str) -> str:
    """The query a job that stored no checkpoint starts again from.

    Its own first query (from its first run's run-setting.json), so that a continuation such as
    "go on" does not lose the task; a different new query follows it.
    """
    for run_id in storage.run_ids(job_id):
        try:
            text = storage.load_run_setting(job_id, run_id).get("input", {}).get("text")
        except (PerstackError, AttributeError):
            continue
        if isinstance(text, str) and text.strip():
            return text if query.strip() in ("", text) else f"{text}\n\n{query}"
    return query


def answer_interactive(
    checkpoint: Checkpoint, answer: str
) -> tuple[Checkpoint, InteractiveToolCallInfo]:
    """Bind the user's answer to a pending interactive call (JSON form, else the first one)."""
    pending = list(checkpoint.pending_tool_calls or [])
    if checkpoint.status != "stoppedByInteractiveTool" or not pending:
        raise UsageError(
            "-i was given, but the job is not waiting for an interactive answer "
            f"(its last checkpoint is {checkpoint.status!r})"
        )
    target, text = pending[0], answer
    try:
        data = json.loads(answer)
    except ValueError:
        data = None
    if isinstance(data, dict) and "toolCallId" in data:
        match = next((c for c in pending if c.id == data["toolCallId"]), None)
        if match is None:
            ids = ", ".join(c.id for c in pending)
            raise UsageError(f"No pending tool call {data['toolCallId']!r}; pending: {ids}")
        target, text = match, str(data.get("text", ""))
    result = ToolResult(
        id=target.id,
        skill_name=target.skill_name,
        tool_name=target.tool_name,
        result=[TextPart(text=text)],
    )
    updated = checkpoint.model_copy(
        update={
            "pending_tool_calls": [c for c in pending if c.id != target.id] or None,
            "partial_tool_results": [*(checkpoint.partial_tool_results or []), result],
        }
    )
    return updated, InteractiveToolCallInfo(
        tool_name=target.tool_name, tool_call_id=target.id, text=text
    )


RESUMABLE = frozenset({"init", "proceeding", "stoppedByDelegate"})
"""Statuses of a stored delegate checkpoint that a resumed parent continues rather than reuses
(plus ``stoppedByError`` for an interrupt: that run was stopped, not failed)."""


def stored_delegations(job: JobContext, parent: Checkpoint) -> dict[str, Checkpoint]:
    """The latest stored checkpoint of each delegation ``parent`` is waiting for, by tool call.

    A delegate's checkpoints all carry the ``delegatedBy`` of the call that started it, through
    every continuation; the latest (by step number, then write time) is where it stands.
    """
    if job.storage is None:
        return {}
    waiting = {target.tool_call_id: target.expert.key for target in parent.delegate_to or []}
    latest: dict[str, Checkpoint] = {}
    for stored in job.storage.checkpoints(parent.job_id):
        by = stored.delegated_by
        if (
            by is not None
            and waiting.get(by.tool_call_id) == stored.expert.key
            and by.expert.key == parent.expert.key
        ):
            latest[by.tool_call_id] = stored  # ordered oldest first: the last one wins
    found = {
        call_id: recovered_checkpoint(job.storage, stored) for call_id, stored in latest.items()
    }
    unstored = {call_id: key for call_id, key in waiting.items() if call_id not in found}
    if unstored:
        found.update(_first_steps(job.storage, parent, unstored))
    return found


def _first_steps(
    storage: Storage, parent: Checkpoint, unstored: dict[str, str]
) -> dict[str, Checkpoint]:
    """Delegations that stored no checkpoint but whose first step ran: rebuilt from events.

    ``unstored``: tool call id → delegate expert key. A delegation absent from the result
    starts again from its query.
    """
    job_dir = storage.job_dir(parent.job_id)
    runs: dict[str, str] = {}
    for event in read_job_events(job_dir, messages=False):
        if isinstance(event, StartRun):
            by = event.initial_checkpoint.delegated_by
            if by is not None and unstored.get(by.tool_call_id) == event.expert_key:
                runs[by.tool_call_id] = event.run_id
    found: dict[str, Checkpoint] = {}
    for call_id, run_id in runs.items():
        events = list(read_job_events(job_dir, run_ids=[run_id]))
        start = next((e for e in events if isinstance(e, StartRun)), None)
        if start is None or start.initial_checkpoint.status != "init":
            continue
        first = start.initial_checkpoint
        before = first.model_copy(
            update={
                "messages": [*first.messages, *start.input_messages],
                "step_number": first.step_number - 1,
                "run_id": run_id,
                "status": "proceeding",
            }
        )
        rebuilt = recover_unstored_step(before, events)
        if rebuilt is not before:
            found[call_id] = rebuilt
    return found


def recovered_checkpoint(storage: Storage, checkpoint: Checkpoint) -> Checkpoint:
    """``checkpoint``, or past the step after it when that step ran but was never stored."""
    if checkpoint.status not in ("proceeding", "stoppedByError"):
        return checkpoint
    job_dir = storage.job_dir(checkpoint.job_id)
    return recover_unstored_step(checkpoint, read_job_events(job_dir, run_ids=[checkpoint.run_id]))


def was_interrupted(checkpoint: Checkpoint) -> bool:
    """Whether ``checkpoint`` ended its run on an interrupt (stopped, not failed)."""
    return checkpoint.status == "stoppedByError" and (
        checkpoint.error is not None and checkpoint.error.name == INTERRUPTED_ERROR
    )


def fork_job(storage: Storage, checkpoint_id: str, fork_id: str) -> str:
    """Make job ``fork_id`` a fork of the job holding ``checkpoint_id``, as of that checkpoint.

    The new job holds copies of the origin's checkpoints up to that step (every run's, so a
    delegate's parent and its siblings resume as they stood then) and a job.json naming its
    origin; its own runs then go on from the checkpoint (``--resume-from`` in the new job).
    Nothing of the origin changes. Returns the origin's job id.

    Raises:
        CheckpointError: no stored job holds the checkpoint.
        UsageError: ``fork_id`` names a job that exists.
    """
    from runtime.jobs.api import Jobs  # read once, when forking: not on a run's way to start

    origin = next(
        (
            job_id
            for job_id in storage.job_ids()
            if (storage.job_dir(job_id) / "checkpoints" / f"{checkpoint_id}.json").is_file()
        ),
        None,
    )
    if origin is None:
        raise CheckpointError(
            f"Checkpoint {checkpoint_id!r} not found in any job of {storage.jobs_dir} "
            "(perstack log --checkpoints JOB lists a job's checkpoints)"
        )
    if storage.job_dir(fork_id).exists():
        raise UsageError(f"Job {fork_id!r} exists already: a fork is a new job")
    fork_point = storage.load_checkpoint(origin, checkpoint_id)
    for stored in storage.checkpoints(origin):
        if stored.step_number <= fork_point.step_number:
            storage.store_checkpoint(stored.model_copy(update={"job_id": fork_id}))
    record = Jobs(storage.root).record(origin)
    storage.store_job(
        record.model_copy(
            update={
                "id": fork_id,
                "status": "running",
                "started_at": now_ms(),
                "finished_at": None,
                "total_steps": fork_point.step_number,
                "usage": fork_point.usage,
                "origin": JobOrigin(kind="fork", job_id=origin, checkpoint_id=checkpoint_id),
            }
        )
    )
    return origin
