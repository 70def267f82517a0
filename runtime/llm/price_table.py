r"""Reading litellm's price table (``model_prices_and_context_window_backup.json``) in place.

litellm ships its price table as a data file in its package directory (about 3.5 MB). This
module reads that file *without importing litellm* (a 3–4 s, 200 MB import): the package
directory comes from :func:`runtime.llm.litellm_data.package_dir`, which does not run litellm's
``__init__``.

Memory and time matter on the run path, so the table is never loaded whole. The file is pretty
printed, one model per top-level key (``\\n    "<model>": {``). A lookup reads the bytes once,
finds every place the exact quoted key is used as a key, checks that each one begins a top-level
entry (on a line of its own, after the previous entry's ``},`` at the top-level indentation) and
decodes only that entry with :meth:`json.JSONDecoder.raw_decode` (:class:`IndexedTable`). If the
key is also used anywhere else (a nested key with that name, at any depth), or the file is laid
out otherwise (compact, or with ``aliases`` lists), the top-level entries are scanned one by one
instead (:class:`ScannedTable`): a layout change costs time, never correctness.

``alias_of`` rows resolve to their target, and names in an ``aliases`` list to their owner, as
litellm does when it loads the table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from runtime.llm.litellm_data import package_dir

__all__ = [
    "RULES_KEY",
    "Entry",
    "IndexedTable",
    "ScannedTable",
    "SearchAnomaly",
    "Table",
    "open_table",
    "resolve",
    "table_path",
]

_TABLE_FILE = "model_prices_and_context_window_backup.json"
RULES_KEY = "fallback_generalizations"
"""A top-level block of the table that holds rules, not a model (litellm removes it)."""

Entry = Mapping[str, Any]
"""One table entry (a model's facts), as decoded from the file."""


def table_path() -> Path | None:
    """The price table inside litellm's package directory, found without importing litellm."""
    root = package_dir()
    if root is None:
        return None
    path = root / _TABLE_FILE
    return path if path.is_file() else None


_WS_BYTES = frozenset(b" \t\r\n")


def _skip(buffer: bytes | str, pos: int) -> int:
    """The first offset at or after ``pos`` that is not JSON whitespace."""
    end = len(buffer)
    if isinstance(buffer, bytes):
        while pos < end and buffer[pos] in _WS_BYTES:
            pos += 1
    else:
        while pos < end and buffer[pos] in " \t\r\n":
            pos += 1
    return pos


def _skip_back(buffer: bytes, end: int) -> int:
    """The offset just after the last non-whitespace byte before ``end`` (0 if none)."""
    while end > 0 and buffer[end - 1] in _WS_BYTES:
        end -= 1
    return end


_LAYOUT = re.compile(rb"\A(?:\xef\xbb\xbf)?[ \t\r\n]*\{[ \t\r]*\n([ \t]*)\"")
"""An indented table: ``{`` then a newline, then the first key at the top-level indentation."""


class Table:
    """Top-level entries of the price table, by exact key and case-insensitively.

    Subclasses differ in how they find an entry; alias handling is shared (see :func:`_served`).
    Answers are memoised for the life of the object (one lookup).
    """

    def __init__(self) -> None:
        self._raw_memo: dict[str, Entry | None] = {}
        self._ci_memo: dict[str, list[str]] = {}

    def raw(self, name: str) -> Entry | None:
        """The top-level value stored under exactly ``name`` (the last one if repeated)."""
        if name not in self._raw_memo:
            self._raw_memo[name] = self._raw(name)
        return self._raw_memo[name]

    def names_ci(self, name: str) -> list[str]:
        """Top-level keys equal to ``name`` ignoring case, in file order."""
        if name not in self._ci_memo:
            self._ci_memo[name] = self._names_ci(name)
        return self._ci_memo[name]

    def list_alias_owner(self, name: str) -> str | None:
        """The entry whose ``aliases`` list serves ``name`` (only the scanned table has these)."""
        return None

    def _raw(self, name: str) -> Entry | None:
        raise NotImplementedError

    def _names_ci(self, name: str) -> list[str]:
        raise NotImplementedError


class SearchAnomaly(Exception):
    """The fast search cannot vouch for its answer; scan the table instead."""


class IndexedTable(Table):
    r"""Finds entries by searching the pretty-printed bytes for ``\\n<indent>"<key>":``."""

    def __init__(self, data: bytes, indent: bytes) -> None:
        super().__init__()
        self._data = data
        self._line_start = b"\n" + indent
        self._decoder = json.JSONDecoder()

    def _key_starts(self, matches: Iterator[int], length: int) -> list[int]:
        """The matches (of a quoted name ``length`` bytes long) used as a top-level key.

        Raises SearchAnomaly when the name is a key anywhere else: the fast search cannot tell a
        misplaced top-level entry from a nested key, so the caller scans the table instead.
        """
        data = self._data
        found: list[int] = []
        for start in matches:
            after = _skip(data, start + length)
            if data[after : after + 1] == b":":
                if not self._is_top_level(data, start):
                    raise SearchAnomaly(data[start : start + length])
                found.append(start)
        return found

    def _finds(self, quoted: bytes) -> Iterator[int]:
        start = self._data.find(quoted)
        while start >= 0:
            yield start
            start = self._data.find(quoted, start + 1)

    def _is_top_level(self, haystack: bytes, start: int) -> bool:
        """Whether the key at ``start`` begins a top-level entry.

        It must open its own line, and the entry before it must close on a line of its own at
        the top-level indentation (``},``), or be the object's opening ``{``. The key's own
        indentation may be off (the shipped table has such a line); a nested key would need the
        line before it to be misplaced as well.
        """
        line = haystack.rfind(b"\n", 0, start)
        if line < 0 or haystack[line + 1 : start].strip(b" \t\r"):
            return False
        before = _skip_back(haystack, line)
        if haystack[before - 1 : before] == b"{":  # the first entry: only a BOM may precede
            head = _skip_back(haystack, before - 1)
            return head == 0 or (head == 3 and haystack[:3] == b"\xef\xbb\xbf")
        if haystack[before - 1 : before] != b",":
            return False
        close = _skip_back(haystack, before - 1) - 1
        return (
            close >= 0
            and haystack[close : close + 1] == b"}"
            and haystack[close - len(self._line_start) : close] == self._line_start
        )

    def _value_at(self, start: int, length: int) -> Entry | None:
        """The value of the top-level key whose quoted form is ``data[start:start + length]``."""
        data = self._data
        begin = _skip(data, data.index(b":", _skip(data, start + length)) + 1)
        if data[begin : begin + 1] != b"{":
            return None
        # Decode just this entry: try up to the next top-level-looking line, then further out.
        end = data.find(self._line_start + b'"', begin)
        while True:
            chunk = data[begin:] if end < 0 else data[begin:end]
            try:
                value, _ = self._decoder.raw_decode(chunk.decode("utf-8"))
            except ValueError:  # cut short (UnicodeDecodeError is a ValueError too)
                if end < 0:
                    raise
                end = data.find(self._line_start + b'"', end + 1)
                continue
            return value if isinstance(value, dict) else None

    @staticmethod
    def _quoted(name: str) -> list[bytes]:
        forms = {json.dumps(name).encode("ascii")}
        if not name.isascii():
            forms.add(json.dumps(name, ensure_ascii=False).encode("utf-8"))
        return sorted(forms)

    def _raw(self, name: str) -> Entry | None:
        found = [
            (s, len(q))
            for q in self._quoted(name)
            for s in self._key_starts(self._finds(q), len(q))
        ]
        if not found:
            return None
        return self._value_at(*max(found))

    def _names_ci(self, name: str) -> list[str]:
        if not name.isascii():
            raise SearchAnomaly(name)  # a bytes pattern only folds ASCII letters
        quoted = json.dumps(name).encode("ascii")
        pattern = re.compile(re.escape(quoted), re.IGNORECASE)
        starts = self._key_starts((m.start() for m in pattern.finditer(self._data)), len(quoted))
        return [json.loads(self._data[start : start + len(quoted)]) for start in starts]


class ScannedTable(Table):
    """Walks every top-level entry once: exact for any layout, slower than the search.

    Each value is decoded to find where it ends and then dropped; only the text and each
    entry's span are kept, so this too stays far from a whole-table ``json.load``.
    """

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._text = text = data.decode("utf-8-sig")
        decoder = json.JSONDecoder()
        self._spans: dict[str, tuple[int, int]] = {}
        pointers: dict[str, str] = {}
        lists: dict[str, list[object]] = {}
        pos = _skip(text, 0)
        if text[pos : pos + 1] != "{":
            raise ValueError("the price table is not a JSON object")
        pos = _skip(text, pos + 1)
        while text[pos : pos + 1] != "}":
            key, pos = decoder.raw_decode(text, pos)
            pos = _skip(text, pos)
            if not isinstance(key, str) or text[pos : pos + 1] != ":":
                raise ValueError("malformed price table")
            start = _skip(text, pos + 1)
            value, pos = decoder.raw_decode(text, start)
            # A repeated key keeps its last value (in its first place), as in json.loads.
            entry = value if isinstance(value, dict) else {}
            _put(self._spans, key, (start, pos) if isinstance(value, dict) else None)
            target = entry.get("alias_of")
            _put(pointers, key, target if isinstance(target, str) else None)
            _put(lists, key, entry.get("aliases"))
            pos = _skip(text, pos)
            if text[pos : pos + 1] == ",":
                pos = _skip(text, pos + 1)
            elif text[pos : pos + 1] != "}":
                raise ValueError("malformed price table")
        self._list_aliases = _list_alias_owners(self._spans, pointers, lists)
        self._lower: dict[str, list[str]] = {}
        for name in [*self._spans, *self._list_aliases]:
            self._lower.setdefault(name.lower(), []).append(name)

    def _raw(self, name: str) -> Entry | None:
        span = self._spans.get(name)
        if span is None:
            return None
        value: Entry = json.loads(self._text[span[0] : span[1]])
        return value

    def _names_ci(self, name: str) -> list[str]:
        return self._lower.get(name.lower(), [])

    def list_alias_owner(self, name: str) -> str | None:
        """The entry whose ``aliases`` list serves ``name``, as litellm resolves conflicts."""
        return self._list_aliases.get(name)


def _put(index: dict[str, Any], key: str, value: object) -> None:
    if value is None:
        index.pop(key, None)
    else:
        index[key] = value


def _list_alias_owners(
    names: Mapping[str, object], pointers: Mapping[str, str], lists: Mapping[str, list[object]]
) -> dict[str, str]:
    """``aliases`` lists → {alias: owner}, resolving conflicts the way litellm does."""
    owners: dict[str, str] = {}
    for owner, aliases in lists.items():
        if owner in pointers or not isinstance(aliases, list):
            continue
        for alias in aliases:
            if isinstance(alias, str) and (alias not in names or alias in pointers):
                owners.setdefault(alias, owner)
    return owners


def open_table(data: bytes) -> Table:
    """The table in ``data`` (the file's bytes): searched in place if pretty printed, else scanned.

    A search may still raise :class:`SearchAnomaly` on a lookup; scan the table then.
    """
    layout = _LAYOUT.match(data)
    if layout is None or (b'"aliases"' in data and re.search(rb'"aliases"[ \t\r\n]*:', data)):
        return ScannedTable(data)
    return IndexedTable(data, layout.group(1))


def _served(table: Table, name: str) -> Entry | None:
    """The entry litellm serves under ``name`` once it has expanded aliases, or None.

    An ``alias_of`` row serves its target (and disappears if the target is missing or is itself
    an alias); a name in an entry's ``aliases`` list serves that entry.
    """
    if name == RULES_KEY:
        return None
    owner = table.list_alias_owner(name)
    if owner is not None:
        raw = table.raw(owner)
    else:
        raw = table.raw(name)
        target = raw.get("alias_of") if raw is not None else None
        if isinstance(target, str):
            raw = table.raw(target)
            if raw is not None and isinstance(raw.get("alias_of"), str):
                raw = None
    if raw is None:
        return None
    return {k: v for k, v in raw.items() if k != "aliases"}


def resolve(table: Table, name: str) -> tuple[str, Entry] | None:
    """Mirror litellm's ``get_model_cost_key``: the exact key, else the case-insensitive one."""
    entry = _served(table, name)
    if entry is not None:
        return name, entry
    for key in reversed(table.names_ci(name)):
        entry = _served(table, key)
        if entry is not None:
            return key, entry
    return None
