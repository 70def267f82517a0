"""Select what ``perstack log`` shows from a job's events (§11 of the reference).

The job's events, runs and tree come from :mod:`runtime.jobs`; this module resolves the ids the
user gave, applies the filters and pages, and counts. Order of selection (§11): step → type →
errors → tools → delegations → expression, then offset/take, then context.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

from runtime.errors import CheckpointError
from runtime.jobs.api import checkpoint_ids, job_document, load_checkpoints, readable_run_ids
from runtime.jobs.events import CheckpointMessages
from runtime.jobs.lock import JOB_INTERRUPTED
from runtime.jobs.records import JSON, REF_NEEDLE, EventRecord, EventSource, Warn, load_events
from runtime.jobs.runs import RunInfo, TreeNode, build_runs, build_tree, job_steps, job_usage
from runtime.jobs.store import Storage, is_given_id, is_inside
from runtime.log.filters import FilterExpression, LogError, StepFilter

ERROR_TYPES = frozenset({"stopRunByError", "retry"})
"""Event types selected by ``--errors``."""
TOOL_TYPES = frozenset({"callTools", "resolveToolResults", "callInteractiveTool"})
"""Event types selected by ``--tools``."""
DELEGATION_TYPES = frozenset({"callDelegate", "stopRunByDelegate"})
"""Event types selected by ``--delegations``."""


def known_event_types() -> frozenset[str]:
    """Every event type the runtime emits (used to catch ``--type`` typos).

    Imported on demand: building the event models is the most expensive import of the runtime,
    and only ``--type`` needs it.
    """
    from runtime.schema.events import ExpertStateEvent, RuntimeEvent, StreamingEvent

    return frozenset(
        str(model.model_fields["type"].default)
        for union in (ExpertStateEvent, StreamingEvent, RuntimeEvent)
        for model in get_args(union)
    )


@dataclass(frozen=True)
class Criteria:
    """What to select among a scope's events (every field optional)."""

    step: StepFilter | None = None
    type: str | None = None
    errors: bool = False
    tools: bool = False
    delegations: bool = False
    expression: FilterExpression | None = None
    take: int = 100
    """Page size; 0 means every matched event."""
    offset: int = 0
    context: int = 0


@dataclass
class Selection:
    """The result of filtering, paging and adding context.

    Attributes:
        matched: Every event the filters matched (before paging).
        page: The matched events on this page.
        shown: Page events and context events in order, each with True when it is context.
    """

    matched: list[EventRecord]
    page: list[EventRecord]
    shown: list[tuple[EventRecord, bool]]

    @property
    def context_count(self) -> int:
        """How many shown events are context, not matches."""
        return sum(1 for _, is_context in self.shown if is_context)


def select(records: list[EventRecord], criteria: Criteria, source: EventSource) -> Selection:
    """Apply the filters in §11's order, then offset/take, then context."""
    matched = records
    if criteria.step is not None:
        step_filter = criteria.step
        matched = [r for r in matched if r.step is not None and step_filter.matches(r.step)]
    if criteria.type is not None:
        matched = [r for r in matched if r.type == criteria.type]
    if criteria.errors:
        matched = [r for r in matched if r.type in ERROR_TYPES]
    if criteria.tools:
        matched = [r for r in matched if r.type in TOOL_TYPES]
    if criteria.delegations:
        matched = [r for r in matched if r.type in DELEGATION_TYPES]
    if criteria.expression is not None:
        expression = criteria.expression
        needle = expression.required_key()
        kept: list[EventRecord] = []
        for record in matched:
            # A line without the path's first key cannot match: skip decoding it. A path
            # through messages may also go through a reference to a checkpoint's messages.
            if needle is not None and not record.contains(needle):
                if not (expression.reads_messages and record.contains(REF_NEEDLE)):
                    continue
            if expression.reads_messages:
                payload = source.full_payload(record)
            else:
                payload = source.payload(record)
            if payload is not None and expression.matches(payload):
                kept.append(record)
        matched = kept
    page = matched[criteria.offset :]
    if criteria.take > 0:
        page = page[: criteria.take]
    if criteria.context <= 0 or not page:
        return Selection(matched, page, [(record, False) for record in page])
    page_indexes = {record.index for record in page}
    wanted: set[int] = set()
    for index in page_indexes:
        wanted.update(range(max(0, index - criteria.context), index + criteria.context + 1))
    shown = [
        (records[index], index not in page_indexes)
        for index in sorted(wanted)
        if index < len(records)
    ]
    return Selection(matched, page, shown)


_CALL_EVENT_TYPES = frozenset({"callTools", "callInteractiveTool", "callDelegate"})
"""Events that say which tool calls the model made (``callTools`` lists them all; the others
repeat the interactive and delegate ones)."""


def summarize(records: Iterable[EventRecord], source: EventSource) -> JSON:
    """Counts over ``records`` (the matched events): Perstack's summary keys plus ours.

    ``toolCallCount`` counts tool events (callTools, resolveToolResults, callInteractiveTool) and
    ``delegationCount`` delegation events, as Perstack does. ``toolCallsMade`` and
    ``delegationsMade`` count the tool calls (and, of them, the delegate calls) the model made
    in those events, each call once however many events mention it: what ``--summary`` shows.
    """
    total = errors = tools = delegations = 0
    steps: list[int] = []
    types: dict[str, int] = {}
    made: set[str] = set()
    delegated: set[str] = set()
    for record in records:
        total += 1
        kind = record.type
        types[kind] = types.get(kind, 0) + 1
        if kind in ERROR_TYPES:
            errors += 1
        elif kind in TOOL_TYPES:
            tools += 1
        elif kind in DELEGATION_TYPES:
            delegations += 1
        if record.step is not None:
            steps.append(record.step)
        if kind in _CALL_EVENT_TYPES:
            calls = _tool_call_ids(source.payload(record))
            made.update(calls)
            if kind == "callDelegate":
                delegated.update(calls)
    summary: JSON = {
        "totalEvents": total,
        "errorCount": errors,
        "toolCallCount": tools,
        "delegationCount": delegations,
    }
    if steps:
        summary["stepRange"] = {"min": min(steps), "max": max(steps)}
    summary["types"] = dict(sorted(types.items()))
    summary["toolCallsMade"] = len(made)
    summary["delegationsMade"] = len(delegated)
    return summary


def _tool_call_ids(payload: JSON | None) -> list[str]:
    """The ids of the tool calls an event names (``toolCalls[]``, or its one ``toolCall``)."""
    if payload is None:
        return []
    calls = payload.get("toolCalls")
    if not isinstance(calls, list):
        calls = [payload.get("toolCall")]
    return [c["id"] for c in calls if isinstance(c, dict) and isinstance(c.get("id"), str)]


def nearest(wanted: str, existing: Sequence[str], limit: int = 3) -> list[str]:
    """Existing ids that look like ``wanted``: longest shared prefix first, then similarity."""

    def shared_prefix(candidate: str) -> int:
        count = 0
        for a, b in zip(candidate, wanted, strict=False):
            if a != b:
                break
            count += 1
        return count

    scored = []
    for candidate in existing:
        prefix = shared_prefix(candidate)
        ratio = difflib.SequenceMatcher(None, wanted, candidate).ratio()
        if prefix >= 2 or ratio >= 0.6 or (wanted and wanted in candidate):
            scored.append((-prefix, -ratio, candidate))
    return [candidate for _, _, candidate in sorted(scored)[:limit]]


def _not_found(what: str, wanted: str, where: str, existing: Sequence[str]) -> LogError:
    close = nearest(wanted, existing)
    if close:
        hint = f" Nearest: {', '.join(close)}."
    elif existing:
        shown = ", ".join(existing[:5])
        more = f" (and {len(existing) - 5} more)" if len(existing) > 5 else ""
        hint = f" Existing: {shown}{more}."
    else:
        hint = ""
    return LogError(f"{what} {wanted!r} not found in {where}.{hint}")


@dataclass(frozen=True)
class LogQuery:
    """Everything ``perstack log`` was asked for.

    Attributes:
        job: ``--job`` id (None: the latest job).
        run: ``--run`` id.
        checkpoint: ``--checkpoint`` id.
        criteria: Filters, paging and context.
        with_checkpoints: Load every checkpoint of the job (``--job`` with ``--json``).
    """

    job: str | None = None
    run: str | None = None
    checkpoint: str | None = None
    criteria: Criteria = field(default_factory=Criteria)
    with_checkpoints: bool = False


@dataclass
class LogResult:
    """What the renderers show.

    Attributes:
        storage_path: The storage root, or the store's URL when jobs live in an object store.
        job: The job document (job.json, or reconstructed from the events when it is missing).
        is_latest_job: True when no job was named and the latest one is shown.
        run: The selected run segment (``--run`` or the checkpoint's run), if any.
        checkpoint: The ``--checkpoint`` document as stored.
        checkpoints: Every checkpoint of the job (``--job`` with ``--json``).
        runs: Every run segment of the job (job scope only).
        tree: The delegation tree (job scope only).
        selection: Matched, paged and shown events.
        summary: Counts over the matched events.
        source: Decodes the shown events' payloads.
        job_steps: The job's steps counted as its tree counts them (None when its runs were
            not read: a run or checkpoint view of a job with a job.json).
        job_usage: What the job's runs spent, every branch's (None as for ``job_steps``).
    """

    storage_path: Path | str
    job: JSON
    is_latest_job: bool
    run: RunInfo | None
    checkpoint: JSON | None
    checkpoints: list[JSON] | None
    runs: list[RunInfo] | None
    tree: list[TreeNode] | None
    selection: Selection
    summary: JSON
    source: EventSource
    job_steps: int | None = None
    job_usage: JSON | None = None


def _find_job(storage: Storage, job_ids: list[str], query: LogQuery) -> tuple[str, bool]:
    if query.job is not None:
        if query.job in job_ids and is_given_id(query.job):
            return query.job, False
        raise _not_found("Job", query.job, str(storage.jobs_dir), job_ids)
    if query.run is None and query.checkpoint is None:
        return job_ids[0], True
    # A run or checkpoint id alone: it is usually in the latest job, but look in every job so an
    # id copied from an older job still works.
    wanted = query.checkpoint if query.checkpoint is not None else query.run
    for job_id in job_ids if wanted is not None and is_given_id(wanted) else ():
        if query.checkpoint is not None:
            if (storage.job_dir(job_id) / "checkpoints" / f"{query.checkpoint}.json").is_file():
                return job_id, job_id == job_ids[0]
        elif query.run is not None and storage.run_dir(job_id, query.run).is_dir():
            return job_id, job_id == job_ids[0]
    latest = job_ids[0]
    if query.checkpoint is not None:
        raise _not_found("Checkpoint", query.checkpoint, "any job", checkpoint_ids(storage, latest))
    assert query.run is not None
    raise _not_found("Run", query.run, "any job", storage.run_ids(latest))


def build_log(storage: Storage, query: LogQuery, warn: Warn) -> LogResult:
    """Resolve the job, run and checkpoint, load the events and select what to show.

    Raises:
        LogError: no jobs in storage (exit code 0: nothing to show is not a failure), an unknown
            id, an unknown ``--type`` or a ``--run`` that contradicts ``--checkpoint`` (exit
            code 2).
    """
    job_ids = storage.job_ids()
    if not job_ids:
        raise LogError(f"No jobs found in {storage.root}", exit_code=0)
    job_id, is_latest = _find_job(storage, job_ids, query)
    job_dir = storage.job_dir(job_id)
    source = EventSource(warn, CheckpointMessages(job_dir))
    all_run_ids = readable_run_ids(storage, job_id, source)

    checkpoint: JSON | None = None
    run_id = query.run
    if query.checkpoint is not None:
        path = job_dir / "checkpoints" / f"{query.checkpoint}.json"
        if not is_given_id(query.checkpoint) or not path.is_file():
            raise _not_found(
                "Checkpoint", query.checkpoint, f"job {job_id}", checkpoint_ids(storage, job_id)
            )
        if not is_inside(job_dir, path):
            raise LogError(f"Checkpoint file {path} resolves outside the job folder; not read")
        try:
            checkpoint = storage.load_checkpoint(job_id, query.checkpoint).to_dict()
        except CheckpointError as error:
            raise LogError(error.message) from error
        except ValueError as error:  # valid, but too deep for pydantic to write back
            raise LogError(f"Cannot show checkpoint file {path}: {error}") from error
        owner = str(checkpoint.get("runId", ""))
        if run_id is not None and run_id != owner:
            raise LogError(
                f"Checkpoint {query.checkpoint!r} belongs to run {owner!r}, not to --run {run_id!r}"
            )
        run_id = owner
    if run_id is not None and (run_id not in all_run_ids or not is_given_id(run_id)):
        raise _not_found("Run", run_id, f"job {job_id}", all_run_ids)

    scope_run_ids = [run_id] if run_id is not None else all_run_ids
    records = load_events(storage, job_id, scope_run_ids, source)
    if query.criteria.type is not None:
        _check_type(query.criteria.type, records)

    runs: list[RunInfo] | None = None
    tree: list[TreeNode] | None = None
    run_info: RunInfo | None = None
    if run_id is None:
        runs = build_runs(storage, job_id, all_run_ids, records, source)
        tree = build_tree(runs)
    else:
        run_info = build_runs(storage, job_id, [run_id], records, source)[0]
    job_json = job_dir / "job.json"
    job_missing = not (job_json.is_file() and is_inside(job_dir, job_json))
    if job_missing and runs is None:
        # Reconstructing a job needs every run; only here does a run view read the whole job.
        every = load_events(storage, job_id, all_run_ids, EventSource(lambda _: None))
        runs_for_job: list[RunInfo] = build_runs(
            storage, job_id, all_run_ids, every, EventSource(lambda _: None)
        )
    else:
        runs_for_job = runs or []
    job = job_document(storage, job_id, runs_for_job, warn)
    if job.get("status") == JOB_INTERRUPTED:
        for info in [*(runs or []), *([run_info] if run_info else [])]:
            if info.status == "running":  # no terminal event: its process is gone
                info.status = JOB_INTERRUPTED

    selection = select(records, query.criteria, source)
    checkpoints = load_checkpoints(storage, job_id, source) if query.with_checkpoints else None
    return LogResult(
        storage_path=storage.remote.describe() if storage.remote is not None else storage.root,
        job=job,
        is_latest_job=is_latest,
        run=run_info,
        checkpoint=checkpoint,
        checkpoints=checkpoints,
        runs=runs,
        tree=tree,
        selection=selection,
        summary=summarize(selection.matched, source),
        source=source,
        job_steps=job_steps(runs_for_job) if runs_for_job else None,
        job_usage=job_usage(runs_for_job) if runs_for_job else None,
    )


def _check_type(wanted: str, records: Sequence[EventRecord]) -> None:
    if any(record.type == wanted for record in records):
        return
    known = known_event_types()
    if wanted in known:
        return
    close = difflib.get_close_matches(wanted, sorted(known), n=3, cutoff=0.5)
    lowered = [name for name in known if name.lower() == wanted.lower()]
    suggestions = lowered or close
    hint = f" Did you mean {', '.join(suggestions)}?" if suggestions else ""
    raise LogError(
        f"Unknown event type {wanted!r} for --type.{hint} Known types: {', '.join(sorted(known))}."
    )
