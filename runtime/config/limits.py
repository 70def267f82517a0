"""The limits perstack.toml must keep, checked on the raw text before any parser sees it.

Whatever the input, loading ends in a result or a :class:`~runtime.errors.ConfigError`, in
bounded time: :func:`check_limits` refuses files that are too large, too deeply nested or have
too many keys (:data:`MAX_CONFIG_BYTES`, :data:`MAX_NESTING`, :data:`MAX_KEY_PARTS`,
:data:`MAX_ENTRIES`). ``tomllib`` recurses per nesting level and is quadratic in the parts of a
dotted key; tomlkit and tree-sitter are slower still on such input.

The check is its own small scanner rather than :mod:`runtime.config.locate`: it must run on text
that does not parse, stop at the first limit passed, and stay linear on any input, while the
locator parses the whole text first (on a megabyte of adversarial input tree-sitter takes a
hundred times longer than this scan).
"""

from __future__ import annotations

import re

from runtime.config.problems import (
    CONFIG_FILE_NAME,
    ConfigLimitError,
    ConfigProblem,
    printable,
)

MAX_CONFIG_BYTES = 1024 * 1024
"""Largest perstack.toml read: 1 MiB. Real files are a few kilobytes; 50 experts with 2 KB
instructions each make about 120 KB."""

MAX_NESTING = 32
"""Deepest nesting of arrays and inline tables in one value (real files: 1 or 2)."""

MAX_KEY_PARTS = 32
"""Most parts of one dotted key or table header; ``[experts."a".skills."b"]`` has 4."""

MAX_ENTRIES = 10_000
"""Most keys, table headers and array elements in one file, counted together (a 50-expert team
has about 1,000)."""


_LIMIT_TOKEN_RE = re.compile(
    r"""
    \n(?:[ \t\r\n]+|\#[^\n]*)*     # a line break, with the blank and comment lines after it
    | \#[^\n]*                       # a comment
    | (?P<multiline>\"\"\"|''')        # the start of a multi-line string
    | "(?:[^"\\\n]+|\\.)*"?           # a basic string (or the start of an unclosed one)
    | '[^'\n]*'?                     # a literal string
    | [\[\]{}=.,]
    """,
    re.VERBOSE,
)
_BLANK_RE = re.compile(r"(?:[ \t\r\n]+|#[^\n]*)*")
_MULTILINE_BASIC_BODY_RE = re.compile(r'(?:[^\\"]+|\\[\s\S]|"(?!""))*')


def check_limits(text: str, label: str = CONFIG_FILE_NAME) -> None:
    """Refuse perstack.toml text over the limits, before any parser sees it.

    The limits (:data:`MAX_CONFIG_BYTES`, :data:`MAX_NESTING`, :data:`MAX_KEY_PARTS`,
    :data:`MAX_ENTRIES`) are far above any real file and keep loading fast: ``tomllib`` recurses
    once per level of nested arrays (a thousand levels crash it) and takes seconds for a key of
    a few thousand dotted parts. The scan is linear and knows just enough TOML (strings,
    comments, headers, keys, brackets) to count right on any valid file; on invalid text it
    may stop at a limit where ``tomllib`` would have reported a syntax error.

    Args:
        text: The TOML source.
        label: How to name the file in messages.

    Raises:
        ConfigLimitError: The text is over a limit; its message names the line and the key.
    """
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_CONFIG_BYTES:
        raise too_large(size, label)
    stack: list[str] = []  # the open arrays ("[") and inline tables ("{")
    entries = 0
    in_key = True  # reading a key: at the start of a line, or of an inline table entry
    in_header = False  # reading a [table] header
    skip_line = False  # after a header: tomllib reads nothing more of the line
    parts = 1
    key_start = pos = _BLANK_RE.match(text).end()  # type: ignore[union-attr]
    key = ""

    def refuse(at: int, shown_key: str, message: str) -> ConfigLimitError:
        line = text.count("\n", 0, at) + 1
        column = at - (text.rfind("\n", 0, at) + 1) + 1
        return limit_error(label, line, _source_key(shown_key), f"{message} (at column {column})")

    def count_entry(at: int) -> None:
        nonlocal entries
        entries += 1
        if entries > MAX_ENTRIES:
            raise refuse(
                at,
                "",
                f"too many entries: over the limit of {MAX_ENTRIES:,} keys, table headers and "
                "array elements",
            )

    while (match := _LIMIT_TOKEN_RE.search(text, pos)) is not None:
        token, start, pos = match.group(), match.start(), match.end()
        first = token[0]
        if first == "\n":
            if not stack:
                in_key, in_header, skip_line, parts, key_start = True, False, False, 1, pos
        elif skip_line or (first in "#\"'" and match.group("multiline") is None):
            continue
        elif match.group("multiline") is not None:
            pos = _multiline_end(text, pos, token)
        elif first == ".":
            if in_key or in_header:
                parts += 1
                if parts > MAX_KEY_PARTS:
                    raise refuse(
                        start,
                        text[key_start : min(start, key_start + 200)],
                        f"too many parts in one dotted key: over the limit of {MAX_KEY_PARTS}",
                    )
        elif first == "=":
            count_entry(start)
            if in_key and not stack:  # messages name the statement's key, not an inner one
                key = text[key_start : min(start, key_start + 200)]
            in_key = False
        elif first == "[":
            if in_key and not stack and start == key_start:
                count_entry(start)
                in_key, in_header, parts = False, True, 1
                if text.startswith("[", pos):  # [[array.of.tables]]
                    pos += 1
            elif not in_key and not in_header:
                stack.append("[")
                count_entry(start)
                if len(stack) > MAX_NESTING:
                    raise refuse(start, key, _too_deep())
        elif first == "{":
            if not in_key and not in_header:
                stack.append("{")
                count_entry(start)
                if len(stack) > MAX_NESTING:
                    raise refuse(start, key, _too_deep())
                in_key, parts, key_start = True, 1, pos
        elif first in "]}":
            if in_header:
                in_header, skip_line = False, True
            elif stack:
                stack.pop()
                in_key = False
        elif stack:  # ","
            if stack[-1] == "{":
                in_key, parts, key_start = True, 1, pos
            else:
                count_entry(start)


def _multiline_end(text: str, pos: int, delimiter: str) -> int:
    """Where the multi-line string whose content starts at ``pos`` ends (or the text's end)."""
    if delimiter == '"""':
        pos = _MULTILINE_BASIC_BODY_RE.match(text, pos).end()  # type: ignore[union-attr]
    else:
        pos = text.find(delimiter, pos)
    if pos < 0 or not text.startswith(delimiter, pos):
        return len(text)
    pos += 3
    for _ in range(2):  # up to two quotes right before the end belong to the content
        if text.startswith(delimiter[0], pos):
            pos += 1
    return pos


def _too_deep() -> str:
    return f"too deeply nested: over the limit of {MAX_NESTING} levels of arrays and inline tables"


def too_large(size: int | None, label: str) -> ConfigLimitError:
    """``size``: the file's size in bytes, or ``None`` when only "over the limit" is known."""
    over = f"{size:,} bytes, over" if size is not None else "over"
    return limit_error(
        label,
        None,
        "",
        f"too large: {over} the limit of {MAX_CONFIG_BYTES:,} bytes (1 MiB); perstack.toml "
        "holds settings and instructions, keep data in files the experts read",
    )


def limit_error(label: str, line: int | None, key: str, message: str) -> ConfigLimitError:
    """The error refusing a file for one limit, placed at ``line`` and ``key`` when known."""
    return ConfigLimitError([ConfigProblem(line, key, message, label)], label=label)


def _source_key(text: str) -> str:
    """A key as written in the source, on one line and cut short, for a message."""
    text = " ".join(printable(text).split()).lstrip("[ ")
    return text if len(text) <= 80 else text[:80] + "…"
