"""What ``perstack log`` accepts besides ids: ``--step`` ranges and ``--filter`` expressions.

Both parse into small objects that match stored events as decoded JSON; a malformed value raises
:class:`LogError` with a caret under the offending part.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from runtime.jobs.records import JSON
from runtime.jobs.runs import is_number


class LogError(Exception):
    """Bad input or unusable storage; the CLI prints ``message`` and exits with ``exit_code``.

    Attributes:
        message: What is wrong and, where possible, what exists instead.
        exit_code: 2 for bad input (unknown id, invalid expression), 0 when the storage holds no
            job (nothing to show, as Perstack says it: "No data found").
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


def _same(actual: object, expected: Scalar) -> bool:
    # Strict like JavaScript's ===: true is not 1 and "3" is not 3.
    if isinstance(expected, bool):
        return isinstance(actual, bool) and actual == expected
    if is_number(expected):
        return is_number(actual) and actual == expected
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
        if op in _NUMERIC_OPS and not is_number(value):
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
