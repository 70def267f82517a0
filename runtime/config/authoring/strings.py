"""TOML strings written the way the field already was: ``\"\"\"``, ``'''``, ``'...'`` or ``"..."``.

Assigning a plain ``str`` through tomlkit turns a ``\"\"\"`` string into a one-line basic string;
:func:`string_item` builds the item in the style of the value it replaces instead, with exactly
the escapes TOML needs, and checks the result with ``tomllib`` (the runtime's parser).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from typing import Final

from tomlkit.items import String, StringType, Trivia

BARE_KEY_RE: Final = re.compile(r"^[A-Za-z0-9_-]+$")
"""A key that TOML allows without quotes."""

_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

_SHORT_ESCAPES: Final = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def escape_basic(value: str) -> str:
    """The body of a basic ``"..."`` string (or quoted key) that reads as ``value``."""
    out: list[str] = []
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif _CONTROL_RE.match(char):
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def _escape_multiline_basic(value: str) -> str:
    """The body of a ``\"\"\"`` string: real newlines, as few escapes as TOML needs."""
    out: list[str] = []
    quotes = 0  # unescaped quotes just emitted: a third one would close the string
    for char in value:
        if char == '"':
            if quotes == 2:
                out.append('\\"')
                quotes = 0
            else:
                out.append('"')
                quotes += 1
            continue
        quotes = 0
        if char == "\\":
            out.append("\\\\")
        elif char in "\n\t":
            out.append(char)
        elif char == "\r":
            # A lone CR is not a newline in TOML; written raw it would be rejected.
            out.append("\\r")
        elif _CONTROL_RE.match(char):
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    # Quotes right before the closing delimiter would be read as part of it: escape them.
    index = len(out)
    while index > 0 and out[index - 1] == '"':
        index -= 1
        out[index] = '\\"'
    return "".join(out)


_DELIMITERS: Final = {
    StringType.SLB: '"',
    StringType.MLB: '"""',
    StringType.SLL: "'",
    StringType.MLL: "'''",
}


def _raw_string(value: str, style: StringType) -> str | None:
    """What goes between the delimiters to write ``value`` in ``style``; None if it cannot."""
    if style is StringType.SLB:
        raw = escape_basic(value)
    elif style is StringType.MLB:
        # TOML drops a newline right after the opening delimiter: start the text on its own line.
        raw = "\n" + _escape_multiline_basic(value)
    elif style is StringType.SLL:
        if "'" in value or _CONTROL_RE.search(value.replace("\t", " ")):
            return None
        raw = value
    else:
        if "'''" in value or value.endswith("'") or _CONTROL_RE.search(value.replace("\n", " ")):
            return None
        raw = "\n" + value
    delimiter = _DELIMITERS[style]
    # The escaping above is meant to be exact; checking with the runtime's parser makes sure.
    try:
        parsed = tomllib.loads(f"v = {delimiter}{raw}{delimiter}")["v"]
    except tomllib.TOMLDecodeError:
        return None
    return raw if parsed == value else None


def string_item(value: str, like: object = None, *, prefer: Sequence[StringType] = ()) -> String:
    """``value`` as a string item in the style of ``like`` (the value it replaces), if it fits.

    Multi-line text becomes a ``\"\"\"`` string (or stays ``'''`` when it was one); a field that
    was multi-line keeps its delimiters even for one line; literal ``'...'`` stays literal when
    the text allows; anything else is a basic ``"..."`` string, which can hold any text.
    """
    old = like.type if isinstance(like, String) else None
    styles: list[StringType] = list(prefer)
    multiline = "\n" in value or "\r" in value
    if multiline:
        if old is StringType.MLL:
            styles.append(StringType.MLL)
        styles.append(StringType.MLB)
    elif old is not None:
        styles.append(old)
    styles.append(StringType.SLB)
    for style in styles:
        if multiline and style in (StringType.SLB, StringType.SLL):
            continue  # one-line delimiters would need \n escapes: use a multi-line style
        raw = _raw_string(value, style)
        if raw is not None:
            return String(style, value, raw, Trivia())
    return String(StringType.SLB, value, escape_basic(value), Trivia())
