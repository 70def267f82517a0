"""Reading a job's stored events back as the runtime's events, conversation included or not.

Stored lines refer to checkpoint files for the message lists they would repeat (see
:class:`runtime.jobs.store.EventCompactor`); :class:`CheckpointMessages` follows those references
and :func:`read_job_events` gives every event as it was emitted, or with the conversation left
out for views that need only the structure.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from runtime.errors import CheckpointError
from runtime.jobs.store import (
    CHECKPOINT_FIELDS,
    MAX_STORED_BYTES,
    MESSAGES_REF,
    decode_json,
    event_files,
    is_inside,
    is_plain_id,
    read_json_file,
)

if TYPE_CHECKING:
    from runtime.schema.events import PerstackEvent


class CheckpointMessages:
    """Reads the message lists that stored events refer to, from one job's checkpoint files.

    Keeps the last few lists decoded: consecutive events refer to the same few checkpoints.
    """

    def __init__(self, job_dir: Path, cache_size: int = 4) -> None:
        self.job_dir = job_dir
        self._cache: OrderedDict[str, list[Any]] = OrderedDict()
        self._cache_size = cache_size

    def get(self, checkpoint_id: str) -> list[Any]:
        """The stored (JSON) messages of a checkpoint.

        Raises:
            CheckpointError: the checkpoint file is missing or unreadable, or the id is not a
                plain id (:func:`is_plain_id`) or names a file outside the job folder: such a
                reference is never followed.
        """
        cached = self._cache.get(checkpoint_id)
        if cached is not None:
            self._cache.move_to_end(checkpoint_id)
            return cached
        if not is_plain_id(checkpoint_id):
            raise CheckpointError(
                f"Stored event refers to checkpoint {checkpoint_id!r}, which is not a checkpoint "
                "id; not followed"
            )
        path = self.job_dir / "checkpoints" / f"{checkpoint_id}.json"
        if not is_inside(self.job_dir, path):
            raise CheckpointError(
                f"Stored event refers to checkpoint file {path}, which resolves outside the job "
                "folder; not followed"
            )
        try:
            messages = read_json_file(path)["messages"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CheckpointError(
                f"Stored event refers to checkpoint {checkpoint_id!r}, which cannot be read "
                f"from {path}: {error}"
            ) from error
        if not isinstance(messages, list):
            raise CheckpointError(f"Checkpoint file {path} has no message list")
        self._cache[checkpoint_id] = messages
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return messages

    def expand(self, data: dict[str, Any]) -> dict[str, Any]:
        """Put the referenced messages back into a decoded stored event (in place; returned).

        The result is the event as it was emitted on the wire.

        Raises:
            CheckpointError: a reference cannot be followed; ``data`` is then left as it was.
        """
        holders = [data.get(alias) for _, alias in CHECKPOINT_FIELDS]
        holders.append(data)
        resolved = [
            (holder, self._resolve(holder[MESSAGES_REF]))
            for holder in holders
            if isinstance(holder, dict) and MESSAGES_REF in holder
        ]
        for holder, messages in resolved:
            del holder[MESSAGES_REF]
            holder["messages"] = messages
        return data

    def _resolve(self, ref: Any) -> list[Any]:
        if not isinstance(ref, dict) or not isinstance(ref.get("checkpointId"), str):
            raise CheckpointError(f"Malformed {MESSAGES_REF} in a stored event: {ref!r}")
        messages = self.get(ref["checkpointId"])
        count = ref.get("count")
        return list(messages[:count]) if isinstance(count, int) else list(messages)


def drop_messages(data: dict[str, Any]) -> dict[str, Any]:
    """Empty every message list a decoded stored event repeats (in place; returned).

    For views that show a job's structure, not its conversation: whether a line holds its
    messages inline or by reference, the checkpoints come back with ``messages == []``.
    """
    for _, alias in CHECKPOINT_FIELDS:
        checkpoint = data.get(alias)
        if isinstance(checkpoint, dict):
            checkpoint.pop(MESSAGES_REF, None)
            checkpoint["messages"] = []
    if data.get("type") == "startGeneration":
        data.pop(MESSAGES_REF, None)
        data["messages"] = []
    return data


def read_job_events(
    job_dir: Path, *, messages: bool = True, run_ids: Iterable[str] | None = None
) -> Iterator[PerstackEvent]:
    """Every stored event of one job, in time order across its runs, read lazily.

    Args:
        job_dir: The job's folder (``<storage>/jobs/<jobId>``).
        messages: Put back the conversation each checkpoint-carrying event repeats, so the
            events equal those emitted live. ``False`` leaves those lists empty, which is much
            cheaper on long jobs: for views that need the structure only (the studio's tree).
        run_ids: Only the events of these run segments (each run's events are in its own
            file, so the others are not read at all).

    Unreadable lines (a torn last line after a crash, an unknown event type, a line over
    :data:`MAX_STORED_BYTES` or nested deeper than :data:`MAX_NESTING`) are skipped, as is an
    event whose referenced checkpoint file is gone. Nothing outside ``job_dir`` is read: run ids
    that are not plain ids and files that resolve elsewhere (symbolic links) are left out.
    """
    loader = CheckpointMessages(job_dir)
    if run_ids is None:
        folders = sorted(path for path in (job_dir / "runs").glob("*") if path.is_dir())
    else:
        wanted = sorted({run_id for run_id in run_ids if is_plain_id(run_id)})
        folders = [job_dir / "runs" / run_id for run_id in wanted]
    folders = [path for path in folders if is_plain_id(path.name) and is_inside(job_dir, path)]
    streams = [_read_events_file(path / "events.jsonl", loader, messages) for path in folders]
    streams += [_read_event_files(job_dir, path, loader, messages) for path in folders]
    for _, _, event in heapq.merge(*streams, key=lambda item: item[:2]):
        yield event


def _read_events_file(
    path: Path, loader: CheckpointMessages, messages: bool
) -> Iterator[tuple[int, int, PerstackEvent]]:
    try:
        handle = path.open("rb")
    except OSError:
        return
    with handle:
        for index, line in enumerate(_bounded_lines(handle)):
            event = decode_event(line, loader, messages=messages) if line is not None else None
            if event is not None:
                yield event.timestamp, index, event


def _read_event_files(
    job_dir: Path, run_dir: Path, loader: CheckpointMessages, messages: bool
) -> Iterator[tuple[int, int, PerstackEvent]]:
    """A run's events stored Perstack's way (one file each), in time order."""
    for index, path in enumerate(event_files(job_dir, run_dir)):
        try:
            if path.stat().st_size > MAX_STORED_BYTES:
                continue
            line = path.read_bytes()
        except OSError:
            continue
        event = decode_event(line, loader, messages=messages)
        if event is not None:
            yield event.timestamp, index, event


def decode_event(
    line: bytes, loader: CheckpointMessages, *, messages: bool
) -> PerstackEvent | None:
    """One stored line as the event it was, or None when it cannot be read back.

    Args:
        line: The stored JSON line.
        loader: Follows the line's references to checkpoint messages.
        messages: Put the conversation back (else the message lists are left empty).
    """
    from runtime.schema.events import EVENT_ADAPTER

    try:
        data = decode_json(line)
        if not isinstance(data, dict):
            return None
        data = loader.expand(data) if messages else drop_messages(data)
        return EVENT_ADAPTER.validate_python(data)
    except (ValueError, CheckpointError):
        return None


def _bounded_lines(handle: BinaryIO) -> Iterator[bytes | None]:
    """The lines of a file, each None when over :data:`MAX_STORED_BYTES` (then never held)."""
    while line := handle.readline(MAX_STORED_BYTES + 1):
        if len(line) <= MAX_STORED_BYTES or line.endswith(b"\n"):
            yield line
            continue
        while line and not line.endswith(b"\n"):
            line = handle.readline(1024 * 1024)
        yield None
