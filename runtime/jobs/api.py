"""The jobs API: the one way to read stored jobs, for ``perstack log``, the studio and embedders.

::

    from runtime.jobs import Jobs

    jobs = Jobs.for_workspace(Path.cwd())
    for job in jobs.list_jobs():                    # newest first, by the jobs' own start times
        print(job.id, job.status, job.expert_key, job.total_steps, job.usage)
    tree = jobs.tree(job.id)                     # experts, nested by delegation, in call order
    for checkpoint in jobs.checkpoints(job.id):  # in the order they were stored
        ...
    for event in jobs.events(job.id, messages=False):
        ...
    async for event in jobs.follow(job.id):      # a live job: stored events, then new ones
        ...

Nothing is trusted: unreadable files and lines are skipped (with a warning where a ``warn``
callback is given), and nothing outside a job's folder is ever read.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.errors import CheckpointError, StorageError
from runtime.jobs.events import CheckpointMessages, decode_event, read_job_events
from runtime.jobs.records import JSON, EventSource, Warn, load_events
from runtime.jobs.runs import (
    CHECKPOINT_EVENT_TYPES,
    JOB_STATUS_BY_RUN_STATUS,
    RunInfo,
    TreeNode,
    build_runs,
    build_tree,
    empty_usage,
    job_steps,
    job_usage,
)
from runtime.jobs.store import (
    MAX_STORED_BYTES,
    Storage,
    default_storage_root,
    is_given_id,
    is_inside,
    is_plain_id,
    read_json_file,
)

if TYPE_CHECKING:
    from runtime.schema.checkpoint import Checkpoint, Job
    from runtime.schema.events import PerstackEvent

FOLLOW_INTERVAL = 0.1
"""Seconds between two looks at a live job's event files."""

_JOB_STATUSES = frozenset(
    {"running", "completed", "stoppedByMaxSteps", "stoppedByInteractiveTool", "stoppedByError"}
)
"""Statuses a stored job may have (``interrupted`` is derived when read, never stored)."""


def _ignore(_: str) -> None:
    pass


@dataclass(frozen=True)
class JobSummary:
    """One stored job, as a list of jobs shows it.

    Attributes:
        id: The job id (its folder's name).
        status: ``completed``, ``running``, ``interrupted`` (stored as running, but no process
            holds it), ``stoppedByError``... as in job.json.
        expert_key: The coordinator expert.
        total_steps: Steps of the job, counted by the rule its tree is counted by
            (:func:`runtime.jobs.runs.count_steps`: distinct step numbers, every branch's), so
            it is the number the root of :meth:`Jobs.tree` shows. For a job that never went
            back to an earlier checkpoint, job.json's ``totalSteps``.
        usage: Tokens (``inputTokens``, ``outputTokens``, ``totalTokens``...) and ``costUsd``
            when known (camelCase): what the job's runs spent, every branch's, as the roots of
            :meth:`Jobs.tree` add up to. For a job that never went back to an earlier
            checkpoint, job.json's ``usage``.
        started_at: Milliseconds since the epoch.
        finished_at: Milliseconds since the epoch, None while running.
        origin: Where the job came from (``{"kind": "fork" | "replay", "jobId", "checkpointId"?}``
            as job.json has it), None for a job of its own.
    """

    id: str
    status: str
    expert_key: str
    total_steps: int
    usage: JSON
    started_at: int
    finished_at: int | None
    origin: JSON | None = None

    @property
    def origin_text(self) -> str:
        """``fork of JOB`` / ``replay of JOB``, or "" for a job of its own."""
        if not self.origin:
            return ""
        return f"{self.origin.get('kind', 'copy')} of {self.origin.get('jobId', '?')}"

    @property
    def total_tokens(self) -> int:
        """Tokens of the whole job."""
        total = self.usage.get("totalTokens", 0)
        return total if isinstance(total, int) else 0


@dataclass(frozen=True)
class CheckpointSummary:
    """One stored checkpoint: where a run can be resumed from.

    Attributes:
        id: The checkpoint id.
        run_id: The run segment that stored it.
        step_number: The step it ends.
        status: ``proceeding``, ``completed``, ``stoppedByDelegate``...
        expert_key: The expert whose checkpoint it is.
        delegated_by: The expert that delegated to it (None for the coordinator).
        stored_at: When it was stored (the timestamp of the event that carried it, in ms), None
            when no stored event mentions it.
    """

    id: str
    run_id: str
    step_number: int
    status: str
    expert_key: str
    delegated_by: str | None
    stored_at: int | None

    @property
    def delegated(self) -> bool:
        """Whether the checkpoint belongs to a delegate, not to the coordinator."""
        return self.delegated_by is not None


class Jobs:
    """The jobs stored under one storage root (``<workspace>/perstack`` by default).

    Args:
        root: The storage root (the folder that holds ``jobs/``).
    """

    def __init__(self, root: Path) -> None:
        self.storage = Storage(root)

    @classmethod
    def for_workspace(cls, workspace: Path) -> Jobs:
        """The jobs of a workspace: ``$PERSTACK_STORAGE_PATH`` when set, as the runtime stores."""
        from runtime.config.loader import configured_storage_url

        return cls(default_storage_root(workspace, configured_storage_url(workspace)))

    @property
    def root(self) -> Path:
        """The storage root."""
        return self.storage.root

    def job_dir(self, job_id: str) -> Path:
        """The folder of a job (which may not exist)."""
        return self.storage.job_dir(job_id)

    def ids(self) -> list[str]:
        """Every job id, newest first, without reading more than each job's start time."""
        return self.storage.job_ids()

    def list_jobs(self, *, warn: Warn = _ignore) -> list[JobSummary]:
        """Every readable job, newest first by its own start time (then by id)."""
        jobs = [self._summary(job_id, warn) for job_id in self.storage.job_ids()]
        return sorted(jobs, key=lambda job: (job.started_at, job.id), reverse=True)

    def get(self, job_id: str, *, warn: Warn = _ignore) -> JobSummary:
        """One job.

        Raises:
            StorageError: No such job in this storage.
        """
        self._check(job_id)
        return self._summary(job_id, warn)

    def runs(self, job_id: str, *, warn: Warn = _ignore) -> list[RunInfo]:
        """The job's run segments, ordered by start time, each with status, steps and usage."""
        self._check(job_id)
        source = EventSource(warn, CheckpointMessages(self.job_dir(job_id)))
        run_ids = readable_run_ids(self.storage, job_id, source)
        records = load_events(self.storage, job_id, run_ids, source)
        return build_runs(self.storage, job_id, run_ids, records, source)

    def tree(self, job_id: str, *, warn: Warn = _ignore) -> list[TreeNode]:
        """The delegation tree: one node per expert run, delegates nested in call order."""
        return build_tree(self.runs(job_id, warn=warn))

    def checkpoints(self, job_id: str, *, warn: Warn = _ignore) -> list[CheckpointSummary]:
        """The job's checkpoints in the order they were stored.

        The order comes from the stored events that carried each checkpoint (their timestamps),
        never from file times, which a copy or a backup changes; checkpoints no event mentions
        come last, by step number (a checkpoint stored just before its process died), except in
        a fork, where they are the origin's copies and come first.
        """
        self._check(job_id)
        source = EventSource(warn)
        stored_at: dict[str, int] = {}
        run_ids = readable_run_ids(self.storage, job_id, source)
        for record in load_events(self.storage, job_id, run_ids, source):
            if record.type not in CHECKPOINT_EVENT_TYPES:  # they date the checkpoint files
                continue
            payload = source.payload(record)
            checkpoint = payload.get("checkpoint") if payload is not None else None
            if isinstance(checkpoint, dict) and isinstance(checkpoint.get("id"), str):
                stored_at.setdefault(checkpoint["id"], record.timestamp)
        found = [
            _checkpoint_summary(data, stored_at)
            for data in load_checkpoints(self.storage, job_id, source)
        ]
        undated = -1 if self._forked(job_id) else 2**62
        return sorted(
            found,
            key=lambda c: (c.stored_at if c.stored_at is not None else undated, c.step_number),
        )

    def _forked(self, job_id: str) -> bool:
        # Only job.json names an origin (a job Perstack wrote has none): no events are read.
        try:
            origin = self.storage.load_job(job_id).origin
        except CheckpointError:
            return False
        return origin is not None and origin.kind == "fork"

    def definition(self, job_id: str, expert_key: str) -> dict[str, Any] | None:
        """The definition of ``expert_key`` the job ran with, as its run settings stored it.

        Perstack's expert shape (``instruction``, ``description``, ``delegates``, ``skills``...)
        from the latest run of the job that names it; None when no run setting does (a job
        Perstack wrote, or one whose files are gone).
        """
        self._check(job_id)
        for run_id in reversed(self.storage.run_ids(job_id)):
            experts = self.storage.load_run_setting(job_id, run_id).get("experts")
            found = experts.get(expert_key) if isinstance(experts, dict) else None
            if isinstance(found, dict):
                return found
        return None

    def record(self, job_id: str) -> Job:
        """The job as the runtime keeps it, so it can be continued.

        That is job.json, or for a job without one (written by Perstack, or whose file is
        damaged) what its events say.

        Raises:
            StorageError: No such job in this storage.
        """
        from runtime.schema.checkpoint import Job, Usage

        self._check(job_id)
        if (self.job_dir(job_id) / "job.json").is_file():
            try:
                return self.storage.load_job(job_id)
            except CheckpointError:
                pass  # damaged: described from its events below
        # Perstack's fields as Perstack means them (totalSteps: the step number reached).
        summary = _job_summary(job_id, job_document(self.storage, job_id, self.runs, _ignore))
        usage = Usage.model_validate(summary.usage)
        status = summary.status if summary.status in _JOB_STATUSES else "running"
        return Job(
            id=job_id,
            status=status,
            coordinator_expert_key=summary.expert_key,
            total_steps=summary.total_steps,
            usage=usage,
            started_at=summary.started_at,
            finished_at=summary.finished_at,
        )

    def checkpoint(self, job_id: str, checkpoint_id: str) -> Checkpoint:
        """One checkpoint, validated, with its messages.

        Raises:
            CheckpointError: It does not exist or cannot be read.
        """
        self._check(job_id)
        return self.storage.load_checkpoint(job_id, checkpoint_id)

    def events(
        self, job_id: str, *, messages: bool = True, run_ids: Sequence[str] | None = None
    ) -> Iterator[PerstackEvent]:
        """The job's stored events in time order, read lazily (see :func:`read_job_events`)."""
        self._check(job_id)
        return read_job_events(self.job_dir(job_id), messages=messages, run_ids=run_ids)

    def is_live(self, job_id: str) -> bool:
        """Whether a process is running the job right now."""
        return self.storage.is_live(job_id)

    async def follow(
        self, job_id: str, *, messages: bool = False, interval: float = FOLLOW_INTERVAL
    ) -> AsyncIterator[PerstackEvent]:
        """The job's events as they are stored: those already there, then each new one.

        Ends when no process runs the job any more and every stored line has been read, so
        following a finished job gives its events and stops. Runs that start while following
        (delegates) are picked up; a line still being written is read once it is whole.
        """
        self._check(job_id)
        job_dir = self.job_dir(job_id)
        loader = CheckpointMessages(job_dir)
        offsets: dict[Path, int] = {}
        while True:
            # Looked at before reading, so the last lines of a process that just ended are read.
            live = self.storage.is_live(job_id)
            batch: list[PerstackEvent] = []
            for path in sorted((job_dir / "runs").glob("*/events.jsonl")):
                if not is_plain_id(path.parent.name) or not is_inside(job_dir, path):
                    continue
                for line in _new_lines(path, offsets):
                    event = decode_event(line, loader, messages=messages)
                    if event is not None:
                        batch.append(event)
            batch.sort(key=lambda event: event.timestamp)
            for event in batch:
                yield event
            if not live:
                return
            await asyncio.sleep(interval)

    def _check(self, job_id: str) -> None:
        job_dir = self.job_dir(job_id)
        if not is_given_id(job_id) or not job_dir.is_dir():
            raise StorageError(f"Job {job_id!r} not found in {self.storage.jobs_dir}")

    def _summary(self, job_id: str, warn: Warn) -> JobSummary:
        runs = self.runs(job_id, warn=warn)
        summary = _job_summary(job_id, job_document(self.storage, job_id, runs, warn))
        if not runs:
            return summary
        # Counted as the tree counts them, so the history's row and the tree agree.
        return dataclasses.replace(summary, total_steps=job_steps(runs), usage=job_usage(runs))


def _new_lines(path: Path, offsets: dict[Path, int]) -> Iterator[bytes]:
    """The whole lines appended to ``path`` since the last call (a torn tail waits)."""
    start = offsets.get(path, 0)
    try:
        with path.open("rb") as handle:
            handle.seek(start)
            data = handle.read()
    except OSError:
        return
    end = data.rfind(b"\n") + 1
    offsets[path] = start + end
    for line in data[:end].splitlines():
        if line.strip() and len(line) <= MAX_STORED_BYTES:
            yield line


def _job_summary(job_id: str, document: JSON) -> JobSummary:
    def number(name: str) -> int:
        value = document.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    usage = document.get("usage")
    finished = document.get("finishedAt")
    return JobSummary(
        id=job_id,
        status=str(document.get("status") or "?"),
        expert_key=str(document.get("coordinatorExpertKey") or "?"),
        total_steps=number("totalSteps"),
        usage=usage if isinstance(usage, dict) else empty_usage(),
        started_at=number("startedAt"),
        finished_at=finished if isinstance(finished, int) else None,
        origin=origin if isinstance(origin := document.get("origin"), dict) else None,
    )


def _checkpoint_summary(data: JSON, stored_at: dict[str, int]) -> CheckpointSummary:
    def text(value: Any) -> str:
        return value if isinstance(value, str) else "?"

    expert = data.get("expert") if isinstance(data.get("expert"), dict) else {}
    delegated_by = data.get("delegatedBy")
    parent: str | None = None
    if isinstance(delegated_by, dict):
        by_expert = delegated_by.get("expert")
        parent = text(by_expert.get("key") if isinstance(by_expert, dict) else None)
    step = data.get("stepNumber")
    checkpoint_id = text(data.get("id"))
    return CheckpointSummary(
        id=checkpoint_id,
        run_id=text(data.get("runId")),
        step_number=step if isinstance(step, int) and not isinstance(step, bool) else 0,
        status=text(data.get("status")),
        expert_key=text((expert or {}).get("key")),
        delegated_by=parent,
        stored_at=stored_at.get(checkpoint_id),
    )


# Shared with ``perstack log``, which reports what it skips --------------------------------------


def checkpoint_ids(storage: Storage, job_id: str) -> list[str]:
    """Ids of a job's checkpoint files (sorted names, nothing decoded)."""
    folder = storage.job_dir(job_id) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(path.stem for path in folder.glob("*.json"))


def load_checkpoints(storage: Storage, job_id: str, source: EventSource) -> list[JSON]:
    """Every readable checkpoint document of a job as stored, ordered by step number then id.

    Raw documents (not validated models), so ``perstack log --json`` shows exactly what is on
    disk.
    """
    found: list[tuple[int, str, JSON]] = []
    job_dir = storage.job_dir(job_id)
    folder = job_dir / "checkpoints"
    for path in folder.glob("*.json") if folder.is_dir() else ():
        if not is_inside(job_dir, path):
            source.outside(path)
            continue
        try:
            data = read_json_file(path)
        except OSError:
            continue
        except ValueError as error:
            source.unreadable("checkpoint file", path, error)
            continue
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            step = data.get("stepNumber")
            found.append((step if isinstance(step, int) else 0, data["id"], data))
    return [data for _, _, data in sorted(found, key=lambda item: item[:2])]


def readable_run_ids(storage: Storage, job_id: str, source: EventSource) -> list[str]:
    """The job's run folders, leaving out (with a warning) links to outside the job folder."""
    job_dir = storage.job_dir(job_id)
    run_ids = []
    for run_id in storage.run_ids(job_id):
        if is_inside(job_dir, storage.run_dir(job_id, run_id)):
            run_ids.append(run_id)
        else:
            source.outside(storage.run_dir(job_id, run_id))
    return run_ids


def job_document(
    storage: Storage,
    job_id: str,
    runs: Sequence[RunInfo] | Callable[[str], Sequence[RunInfo]],
    warn: Warn,
) -> JSON:
    """The job as job.json says, with ``interrupted`` for a dead ``running`` job.

    A job without a readable job.json (one Perstack wrote, or a damaged one) is described from
    its runs instead: ``runs`` are those, or a function that reads them from the job id (only
    called then).
    """
    path = storage.job_dir(job_id) / "job.json"
    instead = "showing what the events tell instead"
    if not path.is_file():
        return _reconstruct_job(storage, job_id, runs)
    if not is_inside(storage.job_dir(job_id), path):
        warn(f"skipping {path}: it resolves outside the job folder; {instead}")
        return _reconstruct_job(storage, job_id, runs)
    try:
        job = storage.load_job(job_id).to_dict()
        # "running" in job.json while no process holds the job: that process is gone.
        job["status"] = storage.job_status(job_id, str(job.get("status")))
        return job
    except CheckpointError as error:
        warn(f"{error.message}; {instead}")
    except ValueError as error:  # valid, but too deep for pydantic to write back
        warn(f"Cannot show job file {path}: {error}; {instead}")
    return _reconstruct_job(storage, job_id, runs)


def _reconstruct_job(
    storage: Storage, job_id: str, runs: Sequence[RunInfo] | Callable[[str], Sequence[RunInfo]]
) -> JSON:
    if callable(runs):
        runs = runs(job_id)
    coordinator = [run for run in runs if run.parent_run_id is None]
    usage = job_usage(runs)
    steps = [step for run in runs for step in run.steps]
    last = coordinator[-1] if coordinator else None
    status = "running"
    if last is not None:
        status = JOB_STATUS_BY_RUN_STATUS.get(last.status, "running")
    started = [run.started_at for run in runs if run.started_at is not None]
    job: JSON = {
        "id": job_id,
        "status": status,
        "coordinatorExpertKey": coordinator[0].expert_key if coordinator else "?",
        "totalSteps": max(steps) if steps else 0,
        "usage": usage,
        "startedAt": min(started) if started else storage.first_event_time(job_id),
    }
    if status != "running" and last is not None and last.finished_at is not None:
        job["finishedAt"] = last.finished_at
    return job
