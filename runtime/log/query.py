"""Load a job's events and select what ``perstack log`` shows (§11 of the reference).

Everything works on the stored JSON objects as they are on disk (camelCase keys), because that is
what ``--filter`` paths and ``--json`` output speak. Lines are decoded lazily: a cheap scan of the
top-level fields that precede any nested object (``type``, ``stepNumber``, ``timestamp``,
``expertKey``) is enough to count, order and filter by step or type, so ``--summary`` on a job of
10,000 events never decodes the (large, checkpoint-carrying) payloads it does not show. A payload
is decoded with ``json.loads`` only when it is displayed, filtered by ``--filter`` or needed for the
delegation tree; it is never validated into the runtime's pydantic models, which would cost far
more and would refuse events written by a newer runtime.

Order of selection (§11): step → type → errors → tools → delegations → expression, then
offset/take, then context.
"""

from __future__ import annotations

import difflib
import json
import mmap
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from runtime.errors import CheckpointError
from runtime.jobs.lock import INTERRUPTED_ERROR, JOB_INTERRUPTED
from runtime.jobs.store import (
    MAX_STORED_BYTES,
    MESSAGES_REF,
    CheckpointMessages,
    Storage,
    decode_json,
    error_line,
    is_inside,
    read_json_file,
)

JSON = dict[str, Any]
"""A decoded JSON object (an event, checkpoint or job document as stored)."""

Warn = Callable[[str], None]
"""Receives one diagnostic line for stderr (e.g. a skipped corrupt event line)."""

ERROR_TYPES = frozenset({"stopRunByError", "retry"})
"""Event types selected by ``--errors``."""
TOOL_TYPES = frozenset({"callTools", "resolveToolResults", "callInteractiveTool"})
"""Event types selected by ``--tools``."""
DELEGATION_TYPES = frozenset({"callDelegate", "stopRunByDelegate"})
"""Event types selected by ``--delegations``."""

TERMINAL_EVENT_TYPES = frozenset(
    {
        "completeRun",
        "stopRunByInteractiveTool",
        "stopRunByDelegate",
        "stopRunByExceededMaxSteps",
        "stopRunByError",
    }
)
"""Types that end a run segment. The same set as ``runtime.schema.events.TERMINAL_EVENT_TYPES`` (a
test keeps them equal); copied because importing the event models costs ~30 ms of start-up."""


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


_STATUS_BY_TERMINAL = {
    "completeRun": "completed",
    "stopRunByDelegate": "stoppedByDelegate",
    "stopRunByInteractiveTool": "stoppedByInteractiveTool",
    "stopRunByExceededMaxSteps": "stoppedByExceededMaxSteps",
    "stopRunByError": "stoppedByError",
}
_JOB_STATUS_BY_RUN_STATUS = {
    "completed": "completed",
    "stoppedByInteractiveTool": "stoppedByInteractiveTool",
    "stoppedByExceededMaxSteps": "stoppedByMaxSteps",
    "stoppedByError": "stoppedByError",
    JOB_INTERRUPTED: JOB_INTERRUPTED,
}
_USAGE_FIELDS = (
    "inputTokens",
    "outputTokens",
    "reasoningTokens",
    "totalTokens",
    "cachedInputTokens",
)
# An id given on the command line names a directory: anything that could step outside the
# storage tree is simply unknown. (Jobs may be named with --job-id, so dots are allowed; ids read
# from stored data must be plain ids, see runtime.jobs.store.is_plain_id.)
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class LogError(Exception):
    """Bad input or unusable storage; the CLI prints ``message`` and exits with ``exit_code``.

    Attributes:
        message: What is wrong and, where possible, what exists instead.
        exit_code: 2 for bad input (unknown id, invalid expression), 1 when there is no storage.
    """

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


# --step ------------------------------------------------------------------------------------

StepOp = Literal["==", ">", ">=", "<", "<=", "range"]


@dataclass(frozen=True)
class StepFilter:
    """A parsed ``--step`` expression.

    Attributes:
        op: ``==``, ``>``, ``>=``, ``<``, ``<=`` or ``range`` (inclusive).
        value: The step number (the lower bound for ``range``).
        upper: The upper bound of a ``range``.
    """

    op: StepOp
    value: int
    upper: int | None = None

    def matches(self, step: int) -> bool:
        """Whether ``step`` is selected."""
        if self.op == "==":
            return step == self.value
        if self.op == ">":
            return step > self.value
        if self.op == ">=":
            return step >= self.value
        if self.op == "<":
            return step < self.value
        if self.op == "<=":
            return step <= self.value
        assert self.upper is not None
        return self.value <= step <= self.upper


_STEP_PREFIXES: tuple[StepOp, ...] = (">=", "<=", ">", "<")
_STEP_FORMS = "use N, >N, >=N, <N, <=N or N-M (inclusive), e.g. 5, >=3 or 1-10"


def parse_step(text: str) -> StepFilter:
    """Parse a ``--step`` value: ``5``, ``>5``, ``>=5``, ``<5``, ``<=5`` or ``1-10``.

    Raises:
        LogError: the expression is malformed or the range is reversed; the message shows the
            expression with a caret under the offending part.
    """
    stripped = text.strip()
    lead = len(text) - len(text.lstrip())
    if not stripped:
        raise LogError(f"Invalid --step: the value is empty; {_STEP_FORMS}")
    range_match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", stripped)
    if range_match:
        low, high = int(range_match.group(1)), int(range_match.group(2))
        if low > high:
            raise LogError(
                _with_caret(
                    f"Invalid --step {text!r}: the range starts at {low}, after its end {high}"
                    f" (write {high}-{low})",
                    "--step",
                    text,
                    lead,
                    len(stripped),
                )
            )
        return StepFilter("range", low, high)
    for op in _STEP_PREFIXES:
        if stripped.startswith(op):
            rest = stripped[len(op) :]
            number = rest.strip()
            if re.fullmatch(r"\d+", number):
                return StepFilter(op, int(number))
            position = lead + len(op) + (len(rest) - len(rest.lstrip()))
            what = f"{number!r} is not a step number" if number else "the step number is missing"
            raise LogError(
                _with_caret(
                    f"Invalid --step {text!r}: {what} after {op!r}; {_STEP_FORMS}",
                    "--step",
                    text,
                    position,
                    max(1, len(number)),
                )
            )
    if re.fullmatch(r"\d+", stripped):
        return StepFilter("==", int(stripped))
    bad = re.search(r"[^\d\s]", stripped)
    position = lead + (bad.start() if bad else 0)
    raise LogError(
        _with_caret(f"Invalid --step {text!r}: {_STEP_FORMS}", "--step", text, position, 1)
    )


def _with_caret(message: str, option: str, source: str, position: int, length: int) -> str:
    pad = " " * (len(option) + 1)
    return f"{message}\n  {option} {source}\n  {pad}{' ' * position}{'^' * max(1, length)}"


# --filter ----------------------------------------------------------------------------------

FilterOp = Literal["==", "!=", ">", ">=", "<", "<="]
Scalar = str | int | float | bool
_FAN_OUT = None  # a path segment meaning "every element of the array"
PathSegment = str | int | None
_OPERATORS: tuple[FilterOp, ...] = ("==", "!=", ">=", "<=", ">", "<")
_NUMERIC_OPS = frozenset({">", ">=", "<", "<="})
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


@dataclass(frozen=True)
class FilterExpression:
    """A parsed ``--filter`` expression: ``.<path> <op> <value>``.

    Attributes:
        source: The expression as given.
        path: Field names, ``None`` for ``[]`` (any element) and ints for ``[N]``.
        op: The comparison.
        value: The value compared against (bool, number or string).
    """

    source: str
    path: tuple[PathSegment, ...]
    op: FilterOp
    value: Scalar

    def matches(self, event: JSON) -> bool:
        """Whether any value the path reaches in ``event`` satisfies the comparison.

        A missing field never matches (not even with ``!=``), as in Perstack; arrays fan out
        with ``[]`` and also when the path ends on an array.
        """
        return any(_compare(candidate, self.op, self.value) for candidate in self.resolve(event))

    def required_key(self) -> bytes | None:
        """``"<first key>"`` as bytes: every line the expression can match contains it.

        JSON writers (pydantic, ``JSON.stringify``, ``json.dumps``) never escape the ASCII
        letters, digits, ``_`` and ``$`` a field name here is made of, so the key appears
        verbatim.
        """
        first = self.path[0] if self.path else None
        if isinstance(first, str) and first.isascii():
            return f'"{first}"'.encode()
        return None

    @property
    def reads_messages(self) -> bool:
        """Whether the path goes through a ``messages`` list (stored events may refer to one)."""
        return "messages" in self.path

    def resolve(self, event: JSON) -> list[Any]:
        """Every value the path reaches in ``event`` (empty when the path is absent)."""
        current: list[Any] = [event]
        for segment in self.path:
            reached: list[Any] = []
            for value in current:
                if segment is _FAN_OUT:
                    if isinstance(value, list):
                        reached.extend(value)
                elif isinstance(segment, int):
                    if isinstance(value, list) and -len(value) <= segment < len(value):
                        reached.append(value[segment])
                elif isinstance(value, dict) and segment in value:
                    reached.append(value[segment])
            current = reached
        leaves: list[Any] = []
        for value in current:
            if isinstance(value, list):
                leaves.extend(value)
            else:
                leaves.append(value)
        return leaves


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(actual: object, expected: Scalar) -> bool:
    # Strict like JavaScript's ===: true is not 1 and "3" is not 3.
    if isinstance(expected, bool):
        return isinstance(actual, bool) and actual == expected
    if _is_number(expected):
        return _is_number(actual) and actual == expected
    return isinstance(actual, str) and actual == expected


def _compare(actual: object, op: FilterOp, expected: Scalar) -> bool:
    if op == "==":
        return _same(actual, expected)
    if op == "!=":
        return actual is not None and not _same(actual, expected)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return False
    if not (isinstance(actual, int | float) and isinstance(expected, int | float)):
        return False
    left, right = float(actual), float(expected)
    if op == ">":
        return left > right
    if op == ">=":
        return left >= right
    if op == "<":
        return left < right
    return left <= right


class _FilterSyntaxError(Exception):
    def __init__(self, message: str, position: int, length: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.length = length


def parse_filter(text: str) -> FilterExpression:
    """Parse a ``--filter`` expression such as ``.toolCalls[].toolName == "writeTextFile"``.

    Grammar: a field path (``.name`` segments, ``[]`` for any array element, ``[N]`` for one),
    an operator (``== != > >= < <=``) and a value (``true``/``false``, a quoted string, a number
    or a bare word). ``> >= < <=`` need a number.

    Raises:
        LogError: the expression is malformed; the message repeats it with a caret under the
            offending token.
    """
    try:
        return _FilterParser(text).parse()
    except _FilterSyntaxError as error:
        raise LogError(
            _with_caret(
                f"Invalid --filter expression: {error.message}",
                "--filter",
                text,
                error.position,
                error.length,
            )
        ) from None


class _FilterParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def parse(self) -> FilterExpression:
        self._skip_spaces()
        if self.pos >= len(self.text):
            raise _FilterSyntaxError(
                'the expression is empty; write e.g. .type == "callTools"', self.pos
            )
        path = self._path()
        self._skip_spaces()
        op = self._operator()
        self._skip_spaces()
        value = self._value(op)
        self._skip_spaces()
        if self.pos < len(self.text):
            rest = self.text[self.pos :]
            raise _FilterSyntaxError(
                f"unexpected {rest.split()[0]!r} after the value (quote a string that contains "
                "spaces)",
                self.pos,
                len(rest.rstrip()),
            )
        return FilterExpression(self.text, tuple(path), op, value)

    def _path(self) -> list[PathSegment]:
        text = self.text
        if text[self.pos] != ".":
            word = text[self.pos :].split()[0]
            raise _FilterSyntaxError(
                f"expected a field path starting with '.', e.g. .type, got {word!r}",
                self.pos,
                len(word),
            )
        segments: list[PathSegment] = []
        while self.pos < len(text) and text[self.pos] in ".[":
            if text[self.pos] == ".":
                self.pos += 1
                match = _IDENT.match(text, self.pos)
                if not match:
                    found = repr(text[self.pos]) if self.pos < len(text) else "the end"
                    raise _FilterSyntaxError(
                        f"expected a field name after '.', found {found}", self.pos
                    )
                segments.append(match.group())
                self.pos = match.end()
            else:
                if not segments:
                    raise _FilterSyntaxError(
                        "a path starts with a field name, e.g. .toolCalls[]", self.pos
                    )
                match = re.compile(r"\[\s*(-?\d*)\s*\]").match(text, self.pos)
                if not match:
                    raise _FilterSyntaxError(
                        "expected '[]' (any element) or '[N]' (element N)", self.pos
                    )
                segments.append(int(match.group(1)) if match.group(1) else _FAN_OUT)
                self.pos = match.end()
        if self.pos < len(text) and not text[self.pos].isspace() and text[self.pos] not in "=!<>":
            raise _FilterSyntaxError(
                f"unexpected character {text[self.pos]!r} in the field path", self.pos
            )
        return segments

    def _operator(self) -> FilterOp:
        for op in _OPERATORS:
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                return op
        if self.pos >= len(self.text):
            raise _FilterSyntaxError(
                "missing operator after the field path (one of == != > >= < <=)", self.pos
            )
        word = self.text[self.pos :].split()[0]
        hint = "; use '==' to compare" if word.startswith("=") else ""
        raise _FilterSyntaxError(
            f"expected an operator (== != > >= < <=), got {word!r}{hint}", self.pos, len(word)
        )

    def _value(self, op: FilterOp) -> Scalar:
        text, start = self.text, self.pos
        if start >= len(text):
            raise _FilterSyntaxError(f"missing value after {op!r}", start)
        quote = text[start]
        value: Scalar
        if quote in "\"'":
            value = self._quoted(quote)
        else:
            end = start
            while end < len(text) and not text[end].isspace():
                end += 1
            word = text[start:end]
            self.pos = end
            if word in ("true", "false"):
                value = word == "true"
            elif _NUMBER.fullmatch(word):
                number = float(word)
                value = (
                    int(number) if number.is_integer() and re.fullmatch(r"-?\d+", word) else number
                )
            else:
                value = word
        if op in _NUMERIC_OPS and not _is_number(value):
            raise _FilterSyntaxError(
                f"{op!r} compares numbers, but {text[start : self.pos]} is not a number",
                start,
                self.pos - start,
            )
        return value

    def _quoted(self, quote: str) -> str:
        text, start = self.text, self.pos
        index = start + 1
        while index < len(text):
            char = text[index]
            if char == "\\":
                index += 2
                continue
            if char == quote:
                break
            index += 1
        else:
            raise _FilterSyntaxError(
                f"unterminated string: add the closing {quote}", start, len(text) - start
            )
        self.pos = index + 1
        body = text[start + 1 : index]
        if quote == '"':
            try:
                decoded = json.loads(text[start : index + 1])
            except ValueError:
                raise _FilterSyntaxError(
                    "invalid escape in string", start, index + 1 - start
                ) from None
            return str(decoded)
        return body.replace("\\'", "'").replace("\\\\", "\\")


# events ------------------------------------------------------------------------------------

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
_REF_NEEDLE = f'"{MESSAGES_REF}"'.encode()

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
        if payload is None or self._messages is None or not record.contains(_REF_NEEDLE):
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
    by timestamp instead of showing one run after the other.
    """
    records: list[EventRecord] = []
    for run_id in run_ids:
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


# selection ---------------------------------------------------------------------------------


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
                if not (expression.reads_messages and record.contains(_REF_NEEDLE)):
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


def summarize(records: Iterable[EventRecord]) -> JSON:
    """Counts over ``records`` (the matched events): Perstack's summary keys plus ``types``.

    ``toolCallCount`` counts tool events (callTools, resolveToolResults, callInteractiveTool) and
    ``delegationCount`` delegation events, as Perstack does.
    """
    total = errors = tools = delegations = 0
    steps: list[int] = []
    types: dict[str, int] = {}
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
    summary: JSON = {
        "totalEvents": total,
        "errorCount": errors,
        "toolCallCount": tools,
        "delegationCount": delegations,
    }
    if steps:
        summary["stepRange"] = {"min": min(steps), "max": max(steps)}
    summary["types"] = dict(sorted(types.items()))
    return summary


# runs and the delegation tree ----------------------------------------------------------------


def _usage(value: object) -> JSON:
    source = value if isinstance(value, dict) else {}
    usage: JSON = {}
    for name in _USAGE_FIELDS:
        number = source.get(name, 0)
        usage[name] = number if _is_number(number) else 0
    cost = source.get("costUsd")
    if _is_number(cost):
        usage["costUsd"] = cost
    return usage


def _usage_delta(end: JSON, start: JSON) -> JSON:
    delta: JSON = {name: max(0, end[name] - start[name]) for name in _USAGE_FIELDS}
    if "costUsd" in end:
        delta["costUsd"] = max(0.0, end["costUsd"] - start.get("costUsd", 0.0))
    return delta


def add_usage(left: JSON, right: JSON) -> JSON:
    """Field-wise sum of two usage objects (cost stays absent when neither has one)."""
    total: JSON = {name: left.get(name, 0) + right.get(name, 0) for name in _USAGE_FIELDS}
    if "costUsd" in left or "costUsd" in right:
        total["costUsd"] = left.get("costUsd", 0.0) + right.get("costUsd", 0.0)
    return total


def _last_message_id(checkpoint: JSON) -> str | None:
    ref = checkpoint.get(MESSAGES_REF)
    if isinstance(ref, dict):
        message_id = ref.get("lastMessageId")
        return message_id if isinstance(message_id, str) else None
    messages = checkpoint.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        message_id = messages[-1].get("id")
        return message_id if isinstance(message_id, str) else None
    return None


def first_user_text(messages: object) -> str | None:
    """The first text part of the first user message in ``messages`` (a stored message list)."""
    if not isinstance(messages, list):
        return None
    for message in messages:
        if isinstance(message, dict) and message.get("type") == "userMessage":
            text = first_text_part(message.get("contents"))
            if text is not None:
                return text
    return None


def first_text_part(contents: object) -> str | None:
    """The text of the first ``textPart`` in a list of parts."""
    if isinstance(contents, list):
        for part in contents:
            if isinstance(part, dict) and part.get("type") == "textPart":
                text = part.get("text")
                if isinstance(text, str):
                    return text
    return None


@dataclass
class RunInfo:
    """One run segment (one runId) of a job, derived from its events.

    Attributes:
        run_id: The segment's id.
        expert_key: The expert that ran (never empty: falls back to the run setting).
        expert_name: The expert's name when the start event records it.
        status: Status of the last terminal event, ``running`` when there is none yet.
        initial_status: Status of the checkpoint the segment started from (``init`` when new).
        delegated_by: The start checkpoint's ``delegatedBy`` (None for the coordinator).
        steps: Distinct step numbers of the segment, ascending.
        usage: Tokens and cost of this segment's own generations.
        query: The user query the segment started with (None when it resumed).
        started_at: First event timestamp (ms).
        finished_at: Timestamp of the terminal event, if any.
        event_count: Stored events of the segment.
        parent_run_id: The run that delegated to this one (for a new delegate).
        resumes_run_id: The previous segment this one continues (resume after delegation,
            interactive answer or ``--continue``).
        first_message_id: Id of the last message of the start checkpoint (links a resume).
        final_message_id: Id of the last message of the final checkpoint (links a resume).
        delegated_calls: Tool call ids of the delegates the segment stopped for, in call order
            (its final checkpoint's ``delegateTo``).
    """

    run_id: str
    expert_key: str
    expert_name: str | None = None
    status: str = "running"
    initial_status: str | None = None
    delegated_by: JSON | None = None
    steps: list[int] = field(default_factory=list)
    usage: JSON = field(default_factory=lambda: _usage(None))
    query: str | None = None
    started_at: int | None = None
    finished_at: int | None = None
    event_count: int = 0
    parent_run_id: str | None = None
    resumes_run_id: str | None = None
    first_message_id: str | None = None
    final_message_id: str | None = None
    delegated_calls: list[str] = field(default_factory=list)

    def to_dict(self) -> JSON:
        """The ``runs[]`` entry of ``--json`` output."""
        data: JSON = {
            "runId": self.run_id,
            "expertKey": self.expert_key,
            "status": self.status,
            "initialStatus": self.initial_status,
            "parentRunId": self.parent_run_id,
            "resumesRunId": self.resumes_run_id,
            "firstStep": self.steps[0] if self.steps else None,
            "lastStep": self.steps[-1] if self.steps else None,
            "steps": len(self.steps),
            "eventCount": self.event_count,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "usage": self.usage,
            "query": self.query,
        }
        if self.expert_name is not None:
            data["expertName"] = self.expert_name
        if self.delegated_by is not None:
            data["delegatedBy"] = self.delegated_by
        return data


@dataclass
class TreeNode:
    """One expert's run in the delegation tree: its segments and the delegates it called.

    A parent that delegates stops, and resumes later as a new run segment; both segments belong
    to the same node, so the tree reads "lead → coder → tester" rather than listing lead twice.
    """

    segments: list[RunInfo]
    children: list[TreeNode] = field(default_factory=list)

    @property
    def expert_key(self) -> str:
        """The node's expert."""
        return self.segments[0].expert_key

    @property
    def status(self) -> str:
        """Status of the node's latest segment."""
        return self.segments[-1].status

    @property
    def steps(self) -> list[int]:
        """Distinct step numbers over the node's segments."""
        return sorted({step for segment in self.segments for step in segment.steps})

    @property
    def usage(self) -> JSON:
        """Tokens and cost of this node's own generations (children excluded)."""
        total = _usage(None)
        for segment in self.segments:
            total = add_usage(total, segment.usage)
        return total

    @property
    def total_usage(self) -> JSON:
        """Tokens and cost of the whole subtree."""
        total = self.usage
        for child in self.children:
            total = add_usage(total, child.total_usage)
        return total

    def to_dict(self) -> JSON:
        """The node in ``delegationTree`` of ``--json`` output."""
        delegated_by = self.segments[0].delegated_by
        by: JSON | None = None
        if delegated_by is not None:
            expert = delegated_by.get("expert")
            by = {
                "expertKey": expert.get("key") if isinstance(expert, dict) else None,
                "runId": delegated_by.get("runId"),
                "toolCallId": delegated_by.get("toolCallId"),
                "toolName": delegated_by.get("toolName"),
            }
        return {
            "expertKey": self.expert_key,
            "runIds": [segment.run_id for segment in self.segments],
            "status": self.status,
            "steps": len(self.steps),
            "stepRanges": [list(pair) for pair in step_ranges(self.steps)],
            "usage": self.usage,
            "totalUsage": self.total_usage,
            "delegatedBy": by,
            "query": self.segments[0].query,
            "children": [child.to_dict() for child in self.children],
        }


def step_ranges(steps: Sequence[int]) -> list[tuple[int, int]]:
    """Collapse ascending step numbers into inclusive ranges: [1, 2, 3, 6] → [(1, 3), (6, 6)]."""
    ranges: list[tuple[int, int]] = []
    for step in steps:
        if ranges and step == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], step)
        elif not ranges or step > ranges[-1][1]:
            ranges.append((step, step))
    return ranges


def build_runs(
    storage: Storage,
    job_id: str,
    run_ids: Sequence[str],
    records: Sequence[EventRecord],
    source: EventSource,
) -> list[RunInfo]:
    """Describe each run segment from its events, ordered by start time.

    Only the start event, the last checkpoint-carrying event and (when the start event is
    missing) the run setting are decoded, so this stays cheap on long jobs.
    """
    by_run: dict[str, list[EventRecord]] = {run_id: [] for run_id in run_ids}
    for record in records:
        by_run.setdefault(record.run_id, []).append(record)
    keyed: list[tuple[int, int, RunInfo]] = []
    for order, (run_id, events) in enumerate(by_run.items()):
        info = _describe_run(storage, job_id, run_id, events, source)
        # Runs with no events sort after those that have some, in directory order.
        keyed.append((info.started_at if info.started_at is not None else 2**62, order, info))
    runs = [info for _, _, info in sorted(keyed, key=lambda item: item[:2])]
    _link_segments(runs)
    return runs


def _describe_run(
    storage: Storage, job_id: str, run_id: str, events: Sequence[EventRecord], source: EventSource
) -> RunInfo:
    start = next((source.payload(r) for r in events if r.type == "startRun"), None)
    info = RunInfo(run_id=run_id, expert_key="")
    info.event_count = len(events)
    if events:
        info.started_at = events[0].timestamp
    info.steps = sorted({r.step for r in events if r.step is not None})
    start_usage = _usage(None)
    if start is not None:
        initial = start.get("initialCheckpoint")
        initial = initial if isinstance(initial, dict) else {}
        expert = initial.get("expert")
        if isinstance(expert, dict):
            info.expert_key = str(expert.get("key") or "")
            name = expert.get("name")
            info.expert_name = name if isinstance(name, str) else None
        if not info.expert_key and isinstance(start.get("expertKey"), str):
            info.expert_key = start["expertKey"]
        status = initial.get("status")
        info.initial_status = status if isinstance(status, str) else None
        delegated_by = initial.get("delegatedBy")
        info.delegated_by = delegated_by if isinstance(delegated_by, dict) else None
        start_usage = _usage(initial.get("usage"))
        info.first_message_id = _last_message_id(initial)
        info.query = first_user_text(start.get("inputMessages"))
    if not info.expert_key:
        info.expert_key = next((r.expert_key for r in events if r.expert_key), "") or ""
    if not info.expert_key:
        setting_key = _run_setting(storage, job_id, run_id, source).get("expertKey")
        info.expert_key = setting_key if isinstance(setting_key, str) and setting_key else "?"
    terminal = next((r for r in reversed(events) if r.type in TERMINAL_EVENT_TYPES), None)
    if terminal is not None:
        info.finished_at = terminal.timestamp
        info.status = _STATUS_BY_TERMINAL.get(terminal.type, terminal.type)
    last = terminal or next((r for r in reversed(events) if r.type == "continueToNextStep"), None)
    payload = source.payload(last) if last is not None else None
    if payload is not None:
        checkpoint = payload.get("checkpoint")
        if isinstance(checkpoint, dict):
            if terminal is not None and isinstance(checkpoint.get("status"), str):
                info.status = checkpoint["status"]
            info.usage = _usage_delta(_usage(checkpoint.get("usage")), start_usage)
            info.final_message_id = _last_message_id(checkpoint)
            targets = checkpoint.get("delegateTo")
            if isinstance(targets, list):
                info.delegated_calls = [
                    t["toolCallId"]
                    for t in targets
                    if isinstance(t, dict) and isinstance(t.get("toolCallId"), str)
                ]
        error = payload.get("error") if terminal is not None else None
        if isinstance(error, dict) and error.get("name") == INTERRUPTED_ERROR:
            info.status = JOB_INTERRUPTED  # the stopRunByError of Ctrl+C, SIGTERM or a cancel
    return info


def _run_setting(storage: Storage, job_id: str, run_id: str, source: EventSource) -> JSON:
    """A run's run-setting.json as stored (empty when missing or unreadable, with a warning)."""
    path = storage.run_dir(job_id, run_id) / "run-setting.json"
    if not path.is_file():
        return {}
    if not is_inside(storage.job_dir(job_id), path):
        source.outside(path)
        return {}
    try:
        data = read_json_file(path)
    except OSError:
        return {}
    except ValueError as error:
        source.unreadable("run setting", path, error)
        return {}
    return data if isinstance(data, dict) else {}


def _link_segments(runs: list[RunInfo]) -> None:
    """Set ``parent_run_id`` / ``resumes_run_id`` from delegatedBy and the checkpoints' messages.

    A new delegate starts from an ``init`` checkpoint whose ``delegatedBy.runId`` is the parent's
    run. Any other segment continues an earlier segment of the same expert under the same parent:
    preferably the one whose final checkpoint ends with the message this one starts from (exact
    even when parallel delegates of one expert resume), else the latest such segment.
    """
    by_id = {run.run_id: run for run in runs}
    for position, run in enumerate(runs):
        delegated_by = run.delegated_by
        parent_id = delegated_by.get("runId") if delegated_by else None
        parent_id = parent_id if isinstance(parent_id, str) else None
        if delegated_by is not None and run.initial_status in ("init", None):
            run.parent_run_id = parent_id
            continue
        root_of_parent = _segment_root(by_id, parent_id) if parent_id else None
        candidates = [
            earlier
            for earlier in runs[:position]
            if earlier.expert_key == run.expert_key
            and _logical_parent(by_id, earlier) == root_of_parent
        ]
        match = next(
            (
                earlier
                for earlier in reversed(candidates)
                if run.first_message_id is not None
                and earlier.final_message_id == run.first_message_id
            ),
            candidates[-1] if candidates else None,
        )
        if match is not None:
            run.resumes_run_id = match.run_id
            run.parent_run_id = match.parent_run_id


def _segment_root(by_id: dict[str, RunInfo], run_id: str | None) -> str | None:
    """The first segment of the logical run that ``run_id`` belongs to."""
    seen: set[str] = set()
    while run_id is not None and run_id in by_id and run_id not in seen:
        seen.add(run_id)
        previous = by_id[run_id].resumes_run_id
        if previous is None:
            return run_id
        run_id = previous
    return run_id


def _logical_parent(by_id: dict[str, RunInfo], run: RunInfo) -> str | None:
    return _segment_root(by_id, run.parent_run_id) if run.parent_run_id else None


def build_tree(runs: Sequence[RunInfo]) -> list[TreeNode]:
    """Group segments into nodes and nest delegates under the node that called them.

    A node's delegates are in the order they were called (parallel ones start in any order).
    """
    by_id = {run.run_id: run for run in runs}
    nodes: dict[str, TreeNode] = {}
    roots: list[TreeNode] = []
    for run in runs:
        root_id = _segment_root(by_id, run.run_id) or run.run_id
        node = nodes.get(root_id)
        if node is not None:
            node.segments.append(run)
            nodes[run.run_id] = node
            continue
        node = TreeNode(segments=[run])
        nodes[run.run_id] = node
        parent = nodes.get(run.parent_run_id) if run.parent_run_id else None
        (parent.children if parent is not None else roots).append(node)
    rank = {
        call_id: (index, position)
        for index, run in enumerate(runs)
        for position, call_id in enumerate(run.delegated_calls)
    }
    unknown = (len(runs), 0)  # jobs stored without delegateTo keep their start order
    for node in {id(n): n for n in nodes.values()}.values():
        node.children.sort(
            key=lambda child: rank.get(
                str((child.segments[0].delegated_by or {}).get("toolCallId")), unknown
            )
        )
    return roots


# job, run and checkpoint lookup ----------------------------------------------------------------


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


def checkpoint_ids(storage: Storage, job_id: str) -> list[str]:
    """Ids of a job's checkpoint files (unsorted names, no decoding)."""
    folder = storage.job_dir(job_id) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(path.stem for path in folder.glob("*.json"))


def load_checkpoints(storage: Storage, job_id: str, source: EventSource) -> list[JSON]:
    """Every readable checkpoint document of a job as stored, ordered by step number.

    Raw documents (not validated models), so ``--json`` shows exactly what is on disk.
    """
    found: list[tuple[int, float, JSON]] = []
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
        if isinstance(data, dict):
            step = data.get("stepNumber")
            found.append((step if isinstance(step, int) else 0, path.stat().st_mtime, data))
    return [data for _, _, data in sorted(found, key=lambda item: item[:2])]


# the whole query -------------------------------------------------------------------------------


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
        storage_path: The storage root.
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
    """

    storage_path: Path
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


def _find_job(storage: Storage, job_ids: list[str], query: LogQuery) -> tuple[str, bool]:
    if query.job is not None:
        if query.job in job_ids and _SAFE_ID.match(query.job):
            return query.job, False
        raise _not_found("Job", query.job, str(storage.jobs_dir), job_ids)
    if query.run is None and query.checkpoint is None:
        return job_ids[0], True
    # A run or checkpoint id alone: it is usually in the latest job, but look in every job so an
    # id copied from an older job still works.
    wanted = query.checkpoint if query.checkpoint is not None else query.run
    for job_id in job_ids if wanted is not None and _SAFE_ID.match(wanted) else ():
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


def _job_document(
    storage: Storage, job_id: str, runs: Sequence[RunInfo] | None, warn: Warn
) -> JSON:
    path = storage.job_dir(job_id) / "job.json"
    instead = "showing what the events tell instead"
    if not path.is_file():
        return _reconstruct_job(storage, job_id, runs or [])
    if not is_inside(storage.job_dir(job_id), path):
        warn(f"skipping {path}: it resolves outside the job folder; {instead}")
        return _reconstruct_job(storage, job_id, runs or [])
    try:
        job = storage.load_job(job_id).to_dict()
        # "running" in job.json while no process holds the job: that process is gone.
        job["status"] = storage.job_status(job_id, str(job.get("status")))
        return job
    except CheckpointError as error:
        warn(f"{error.message}; {instead}")
    except ValueError as error:  # valid, but too deep for pydantic to write back
        warn(f"Cannot show job file {path}: {error}; {instead}")
    return _reconstruct_job(storage, job_id, runs or [])


def _run_ids(storage: Storage, job_id: str, source: EventSource) -> list[str]:
    """The job's run folders, leaving out (with a warning) links to outside the job folder."""
    job_dir = storage.job_dir(job_id)
    run_ids = []
    for run_id in storage.run_ids(job_id):
        if is_inside(job_dir, storage.run_dir(job_id, run_id)):
            run_ids.append(run_id)
        else:
            source.outside(storage.run_dir(job_id, run_id))
    return run_ids


def _reconstruct_job(storage: Storage, job_id: str, runs: Sequence[RunInfo]) -> JSON:
    """A job document built from the runs, for jobs without a readable job.json (Perstack's)."""
    coordinator = [run for run in runs if run.parent_run_id is None]
    usage = _usage(None)
    for run in runs:
        usage = add_usage(usage, run.usage)
    steps = [step for run in runs for step in run.steps]
    last = coordinator[-1] if coordinator else None
    status = "running"
    if last is not None:
        status = _JOB_STATUS_BY_RUN_STATUS.get(last.status, "running")
    started = [run.started_at for run in runs if run.started_at is not None]
    job: JSON = {
        "id": job_id,
        "status": status,
        "coordinatorExpertKey": coordinator[0].expert_key if coordinator else "?",
        "totalSteps": max(steps) if steps else 0,
        "usage": usage,
        "startedAt": min(started)
        if started
        else int(storage.job_dir(job_id).stat().st_mtime * 1000),
    }
    if status != "running" and last is not None and last.finished_at is not None:
        job["finishedAt"] = last.finished_at
    return job


def build_log(storage: Storage, query: LogQuery, warn: Warn) -> LogResult:
    """Resolve the job, run and checkpoint, load the events and select what to show.

    Raises:
        LogError: no jobs in storage (exit code 1), an unknown id, an unknown ``--type`` or a
            ``--run`` that contradicts ``--checkpoint`` (exit code 2).
    """
    job_ids = storage.job_ids()
    if not job_ids:
        raise LogError(f"No jobs found in {storage.root}", exit_code=1)
    job_id, is_latest = _find_job(storage, job_ids, query)
    job_dir = storage.job_dir(job_id)
    source = EventSource(warn, CheckpointMessages(job_dir))
    all_run_ids = _run_ids(storage, job_id, source)

    checkpoint: JSON | None = None
    run_id = query.run
    if query.checkpoint is not None:
        path = job_dir / "checkpoints" / f"{query.checkpoint}.json"
        if not _SAFE_ID.match(query.checkpoint) or not path.is_file():
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
    if run_id is not None and (run_id not in all_run_ids or not _SAFE_ID.match(run_id)):
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
        runs_for_job: list[RunInfo] | None = build_runs(
            storage, job_id, all_run_ids, every, EventSource(lambda _: None)
        )
    else:
        runs_for_job = runs
    job = _job_document(storage, job_id, runs_for_job, warn)
    if job.get("status") == JOB_INTERRUPTED:
        for info in [*(runs or []), *([run_info] if run_info else [])]:
            if info.status == "running":  # no terminal event: its process is gone
                info.status = JOB_INTERRUPTED

    selection = select(records, query.criteria, source)
    checkpoints = load_checkpoints(storage, job_id, source) if query.with_checkpoints else None
    return LogResult(
        storage_path=storage.root,
        job=job,
        is_latest_job=is_latest,
        run=run_info,
        checkpoint=checkpoint,
        checkpoints=checkpoints,
        runs=runs,
        tree=tree,
        selection=selection,
        summary=summarize(selection.matched),
        source=source,
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
