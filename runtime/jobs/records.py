"""Reading a job's stored event lines lazily, for views that work on the JSON as stored.

Everything works on the stored JSON objects as they are on disk (camelCase keys), because that is
what ``perstack log --filter`` paths and ``--json`` output speak. Lines are decoded lazily: a
cheap scan of the top-level fields that precede any nested object (``type``, ``stepNumber``,
``timestamp``, ``expertKey``) is enough to count, order and filter by step or type, so a summary
of a job of 10,000 events never decodes the (large, checkpoint-carrying) payloads it does not
show. A payload is decoded with ``json.loads`` only when it is displayed, filtered or needed for
the delegation tree; it is never validated into the runtime's pydantic models, which would cost
far more and would refuse events written by a newer runtime. (:func:`runtime.jobs.events.
read_job_events` is the other reader: it gives validated events, for replays.)
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from runtime.errors import CheckpointError
from runtime.jobs.events import CheckpointMessages
from runtime.jobs.store import (
    MAX_STORED_BYTES,
    MESSAGES_REF,
    Storage,
    decode_json,
    error_line,
    is_inside,
)

JSON = dict[str, Any]
"""A decoded JSON object (an event, checkpoint or job document as stored)."""

Warn = Callable[[str], None]
"""Receives one diagnostic line for stderr (e.g. a skipped corrupt event line)."""

# The runtime writes every event with the same leading fields (pydantic field order), so one
# anchored match reads them; anything else goes through the generic scan below.
_RUNTIME_HEADER = re.compile(
    rb'\{"id":"[^"\\]*","timestamp":(\d+),"jobId":"[^"\\]*","runId":"[^"\\]*",'
    rb'(?:"expertKey":"([^"\\]*)","stepNumber":(-?\d+),)?"type":"([^"\\]*)"'
)
_HEADER_FIELD = re.compile(
    rb'"(type|stepNumber|timestamp|expertKey)"\s*:\s*(?:"([^"\\]*)"|(-?\d+))'
)
_HEADER_WINDOW = 4096
_MMAP_THRESHOLD = 4 * 1024 * 1024
Header = tuple[str, int | None, int, str | None]
"""An event's type, step number, timestamp and expert key, read without decoding the line."""
REF_NEEDLE = f'"{MESSAGES_REF}"'.encode()

Buffer = bytes | mmap.mmap
"""What holds an events file's bytes: a memory map, or the bytes when mapping is impossible."""


class EventRecord:
    """One stored event line, with the few top-level fields every selection needs.

    The line itself stays in the (memory-mapped) file until its payload is needed.

    Attributes:
        run_id: The run segment (directory) the line belongs to.
        path: The events.jsonl file.
        line_number: 1-based line number in ``path`` (for warnings).
        type: Event type.
        step: ``stepNumber`` (None for runtime events, which have none).
        timestamp: Milliseconds since the epoch.
        expert_key: ``expertKey`` (None for runtime events).
        index: Position in the scope's ordered event list (set by :func:`load_events`).
    """

    __slots__ = (
        "_buffer",
        "_end",
        "_payload",
        "_start",
        "expert_key",
        "index",
        "line_number",
        "path",
        "run_id",
        "step",
        "timestamp",
        "type",
    )

    def __init__(
        self,
        run_id: str,
        path: Path,
        line_number: int,
        line: tuple[Buffer, int, int],
        header: Header,
        payload: JSON | None = None,
    ) -> None:
        self.run_id = run_id
        self.path = path
        self.line_number = line_number
        self._buffer, self._start, self._end = line
        self.type, self.step, self.timestamp, self.expert_key = header
        self.index = 0
        self._payload = payload

    def contains(self, needle: bytes) -> bool:
        """Whether the raw line contains ``needle`` (searched in place, nothing decoded)."""
        return self._buffer.find(needle, self._start, self._end) != -1

    @property
    def raw(self) -> bytes:
        """The JSON line as stored (UTF-8, without the newline)."""
        return bytes(self._buffer[self._start : self._end])

    def __repr__(self) -> str:
        return f"EventRecord({self.type!r}, step={self.step}, run={self.run_id!r})"


def _scan_header(head: bytes) -> Header | None:
    """Read type/step/timestamp/expertKey from the start of a line, or None to decode it.

    Only the part before the first nested object or array is searched, so a ``"type"`` key
    inside a message part can never be taken for the event's type.
    """
    match = _RUNTIME_HEADER.match(head)
    if match:
        timestamp, expert_key, step, event_type = match.groups()
        return (
            event_type.decode(),
            int(step) if step is not None else None,
            int(timestamp),
            expert_key.decode() if expert_key is not None else None,
        )
    if not head.startswith(b"{"):
        return None
    cut = len(head)
    for opener in (b"{", b"["):
        found = head.find(opener, 1)
        if found != -1 and found < cut:
            cut = found
    fields: dict[bytes, bytes] = {}
    for found_field in _HEADER_FIELD.finditer(head, 0, cut):
        name, string, number = found_field.groups()
        fields.setdefault(name, string if string is not None else number)
    event_type, timestamp = fields.get(b"type"), fields.get(b"timestamp")
    if event_type is None or timestamp is None or not timestamp.lstrip(b"-").isdigit():
        return None
    step = fields.get(b"stepNumber")
    expert_key = fields.get(b"expertKey")
    return (
        event_type.decode(errors="replace"),
        int(step) if step is not None and step.lstrip(b"-").isdigit() else None,
        int(timestamp),
        expert_key.decode(errors="replace") if expert_key is not None else None,
    )


def _decode(raw: bytes) -> JSON:
    """Decode one event line; raise ValueError with a short reason when it is not an event."""
    data = decode_json(raw)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, found {type(data).__name__}")
    if not isinstance(data.get("type"), str):
        raise ValueError('the object has no "type"')
    return data


class EventSource:
    """Decodes event payloads on demand and reports each corrupt line or file once.

    Args:
        warn: Receives one line per skipped corrupt event, unreadable file or reference that is
            not followed.
        messages: Reads the message lists that stored events refer to (None: never read).
    """

    def __init__(self, warn: Warn, messages: CheckpointMessages | None = None) -> None:
        self._warn = warn
        self._bad: set[tuple[Path, int]] = set()
        self._messages = messages

    def _once(self, path: Path, line_number: int, message: str) -> None:
        if (path, line_number) not in self._bad:
            self._bad.add((path, line_number))
            self._warn(message)

    def corrupt(self, path: Path, line_number: int, reason: str) -> None:
        """Report an event line that is skipped."""
        self._once(path, line_number, f"skipping corrupt event line {path}:{line_number}: {reason}")

    def unreadable(self, what: str, path: Path, error: ValueError) -> None:
        """Report a JSON document (``what``: "checkpoint file", ...) that is skipped."""
        line_number = error_line(error)
        self._once(
            path,
            line_number,
            f"skipping unreadable {what} {path}:{line_number}: {_reason(error)}",
        )

    def outside(self, path: Path) -> None:
        """Report a file or folder of the job that is a link to somewhere else: never read."""
        self._once(path, 0, f"skipping {path}: it resolves outside the job folder")

    def payload(self, record: EventRecord) -> JSON | None:
        """The decoded event as stored, or None (after a warning) when the line is corrupt.

        Message lists that a checkpoint file holds are references here (see
        :func:`full_payload`).
        """
        if record._payload is None:
            try:
                record._payload = _decode(record.raw)
            except ValueError as error:
                self.corrupt(record.path, record.line_number, _reason(error))
                return None
        return record._payload

    def full_payload(self, record: EventRecord) -> JSON | None:
        """The decoded event as it was emitted: referenced messages read back from checkpoints.

        When a reference cannot be followed (the checkpoint file is gone or unreadable, or the
        reference is not a plain id or leads out of the job folder), warns once and returns the
        stored form, reference included.
        """
        payload = self.payload(record)
        if payload is None or self._messages is None or not record.contains(REF_NEEDLE):
            return payload
        try:
            return self._messages.expand(payload)
        except CheckpointError as error:
            where = f"{record.path}:{record.line_number}"
            self._once(
                record.path,
                record.line_number,
                f"event line {where} keeps its {MESSAGES_REF}: {error.message}",
            )
            return payload

    def record(
        self, run_id: str, path: Path, line_number: int, line: tuple[Buffer, int, int]
    ) -> EventRecord | None:
        """Build the record of one line, or None (after a warning) when it is corrupt.

        A line that does not end with ``}`` (a torn write) is decoded at once so that it is
        reported here, not counted and then lost. A line over ``MAX_STORED_BYTES`` is skipped
        without being read.
        """
        buffer, start, end = line
        if end - start > MAX_STORED_BYTES:
            self.corrupt(
                path,
                line_number,
                f"the line is {end - start:,} bytes, over the limit of {MAX_STORED_BYTES:,}",
            )
            return None
        if buffer[end - 1 : end] == b"}":
            header = _scan_header(bytes(buffer[start : min(end, start + _HEADER_WINDOW)]))
            if header is not None:
                return EventRecord(run_id, path, line_number, line, header)
        try:
            data = _decode(bytes(buffer[start:end]))
        except ValueError as error:
            self.corrupt(path, line_number, _reason(error))
            return None
        step = data.get("stepNumber")
        timestamp = data.get("timestamp")
        expert_key = data.get("expertKey")
        header = (
            str(data["type"]),
            step if isinstance(step, int) and not isinstance(step, bool) else None,
            timestamp if isinstance(timestamp, int) and not isinstance(timestamp, bool) else 0,
            expert_key if isinstance(expert_key, str) else None,
        )
        return EventRecord(run_id, path, line_number, line, header, data)


def _reason(error: ValueError) -> str:
    if isinstance(error, UnicodeDecodeError):
        return "not valid UTF-8"
    return str(error)


def _lines(path: Path) -> Iterator[tuple[int, tuple[Buffer, int, int]]]:
    """Non-blank lines of a file as (line number, (buffer, start, end)), without copying them.

    Large files are memory-mapped: finding line ends is a C-speed scan and only the lines that
    are decoded are ever copied. Small files are read whole, because each live map keeps a file
    descriptor open and a job may have thousands of runs.
    """
    buffer: Buffer
    try:
        if path.stat().st_size < _MMAP_THRESHOLD:
            buffer = path.read_bytes()
        else:
            with path.open("rb") as handle:
                buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        try:
            buffer = path.read_bytes()
        except OSError:
            return
    size = len(buffer)
    position = 0
    number = 0
    while position < size:
        newline = buffer.find(b"\n", position)
        end = size if newline == -1 else newline
        number += 1
        start = position
        position = end + 1
        while end > start and buffer[end - 1 : end] in (b"\r", b" ", b"\t"):
            end -= 1
        while start < end and buffer[start : start + 1] in (b" ", b"\t"):
            start += 1
        if end > start:
            yield number, (buffer, start, end)


def load_events(
    storage: Storage, job_id: str, run_ids: Sequence[str], source: EventSource
) -> list[EventRecord]:
    """Every readable event of the given runs, in time order (then run order, then line order).

    Runs of one job overlap in time when delegates run in parallel, so the job view merges them
    by timestamp instead of showing one run after the other. A run's events are read from its
    ``events.jsonl`` and from Perstack's one-file-per-event layout, so jobs written by Perstack
    read the same way.
    """
    records: list[EventRecord] = []
    for run_id in run_ids:
        for event_file in storage.event_files(job_id, run_id):
            record = _file_record(run_id, event_file, source)
            if record is not None:
                records.append(record)
        path = storage.run_dir(job_id, run_id) / "events.jsonl"
        if not path.is_file():
            continue
        if not is_inside(storage.job_dir(job_id), path):
            source.outside(path)
            continue
        for number, line in _lines(path):
            record = source.record(run_id, path, number, line)
            if record is not None:
                records.append(record)
    records.sort(key=lambda record: record.timestamp)
    for index, record in enumerate(records):
        record.index = index
    return records


def _file_record(run_id: str, path: Path, source: EventSource) -> EventRecord | None:
    """The record of one of Perstack's event files (one JSON object, maybe indented)."""
    try:
        if path.stat().st_size > MAX_STORED_BYTES:
            source.corrupt(path, 1, f"the file is over the limit of {MAX_STORED_BYTES:,} bytes")
            return None
        data = path.read_bytes().strip()
    except OSError:
        return None
    if not data:
        return None
    return source.record(run_id, path, 1, (data, 0, len(data)))
