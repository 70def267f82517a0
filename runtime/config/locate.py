"""Where keys are in a TOML text: key path → line and column, for messages, jumps and edits.

``tomllib`` gives no positions and tomlkit keeps none either (its items only know their own
text, and it parses ten times slower than ``tomllib``). The tree-sitter TOML grammar (installed
for the studio's highlighting) does: every node of its tree has exact byte positions, it parses a
50-expert file in about 2 ms, and it knows every construct of TOML, so no document is scanned by
hand here. Quoted keys are decoded by ``tomllib`` itself.

:class:`TomlLocator` maps the paths of the parsed document to the place that defines them:

* ``[experts."a".skills."b"]`` defines ``("experts", "a", "skills", "b")``; each of its prefixes
  is placed where it is first mentioned, unless an explicit header for it comes later;
* ``[[x.y]]`` defines ``("x", "y")`` (at its first header) and ``("x", "y", i)``; a header inside
  it (``[x.y.z]``) belongs to its last element, as in TOML;
* a key (dotted or not, bare or quoted, in a table or an inline table) defines its path, and
  its prefixes where first mentioned;
* an array element defines ``(*array, index)``.

The text should be valid TOML (everything that asks has parsed it with ``tomllib`` first). Where
the grammar reports an error, the scan stops: paths after it are not found, and
:meth:`TomlLocator.locate` falls back to the nearest enclosing one found. An answer is never a
guess.

:func:`read_key` reads one dotted key as written (``experts."writer".delegates[0]``), for the
keys that messages quote.
"""

from __future__ import annotations

import re
import threading
import tomllib
from bisect import bisect_right
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from tree_sitter import Language, Node, Parser

__all__ = ["KeyPath", "Position", "TomlLocator", "locator_for", "read_key"]

KeyPath = tuple[str | int, ...]
"""A location in the parsed document: table keys, and indexes into arrays."""


class Position(NamedTuple):
    """Where a key, table header or array element starts."""

    line: int
    """1-based line (lines end at ``\\n``, as ``tomllib`` counts them)."""
    column: int
    """1-based column, in characters."""


class _Stop(Exception):
    """The tree has a node the scan does not understand: the text is not valid TOML there."""


_KEY_TYPES = frozenset(("bare_key", "quoted_key", "dotted_key"))
_HEADER_TYPES = frozenset(("table", "table_array_element"))


class TomlLocator:
    """The position of every key, table header and array element of a TOML text.

    The text is parsed on the first question, so creating one costs nothing until it is used.
    Threads may share one: each scan is complete before it is published.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._scan: _Scan | None = None

    # Questions --------------------------------------------------------------------------------

    def find(self, path: KeyPath) -> Position | None:
        """Where ``path`` is defined; ``None`` when it is not in the text (or not reached)."""
        scan = self._scanned()
        offset = scan.offsets.get(path)
        return None if offset is None else scan.position(offset)

    def locate(self, path: KeyPath) -> Position | None:
        """Where ``path`` is defined or, when it is not in the text, its nearest enclosing path.

        A missing key is thus placed on its table's header, a key of an unreached part of the
        file on the closest table found. ``None`` only when not even the first part is found.
        """
        scan = self._scanned()
        for end in range(len(path), 0, -1):
            offset = scan.offsets.get(path[:end])
            if offset is not None:
                return scan.position(offset)
        return None

    def line_of(self, path: KeyPath) -> int | None:
        """The line of :meth:`locate`."""
        position = self.locate(path)
        return None if position is None else position.line

    @property
    def first_header(self) -> tuple[str, Position] | None:
        """The first table header as written (``[provider]``) and where it is."""
        scan = self._scanned()
        if scan.first_header is None:
            return None
        header, offset = scan.first_header
        return header, scan.position(offset)

    def positions(self) -> dict[KeyPath, Position]:
        """Every path found, with its position."""
        scan = self._scanned()
        return {path: scan.position(offset) for path, offset in scan.offsets.items()}

    def _scanned(self) -> _Scan:
        scan = self._scan
        if scan is None:
            scan = _Scan(self._text)
            self._scan = scan
        return scan


class _Scan:
    """One walk over the tree-sitter tree: the byte offset of every path."""

    def __init__(self, text: str) -> None:
        self.data = text.encode("utf-8", "surrogatepass")
        self.offsets: dict[KeyPath, int] = {}
        self.first_header: tuple[str, int] | None = None
        """The first table header as written, and its offset."""
        self._arrays: dict[KeyPath, int] = {}
        """The last index of each array of tables so far."""
        self._line_starts: list[int] = []
        try:
            self._document(_parse(self.data))
        except (_Stop, UnicodeDecodeError, tomllib.TOMLDecodeError):
            pass  # an error node: what was found so far stays, the rest falls back

    def position(self, offset: int) -> Position:
        """The line and character column of a byte offset into the UTF-8 text."""
        starts = self._line_starts
        if not starts:
            find = self.data.find
            starts.append(0)
            start = find(b"\n")
            while start >= 0:
                starts.append(start + 1)
                start = find(b"\n", start + 1)
        line = bisect_right(starts, offset)
        prefix = self.data[starts[line - 1] : offset]
        column = len(prefix) if prefix.isascii() else len(prefix.decode("utf-8", "surrogatepass"))
        return Position(line, column + 1)

    def _document(self, root: Node) -> None:
        table: KeyPath = ()
        for node in root.children:
            kind = node.type
            if kind == "pair":
                self._pair(node, table)
            elif kind in _HEADER_TYPES:
                table = self._header(node, kind == "table_array_element")
                for child in node.children:
                    if child.type == "pair":
                        self._pair(child, table)
                    elif child.type == "ERROR" or child.is_missing:
                        raise _Stop
            elif kind != "comment":
                raise _Stop

    def _header(self, node: Node, is_array: bool) -> KeyPath:
        children = node.children
        close = next((child for child in children if child.type in ("]", "]]")), None)
        if close is None or any(child.has_error for child in children[: children.index(close) + 1]):
            raise _Stop
        key = next((child for child in children if child.type in _KEY_TYPES), None)
        if key is None or key.start_byte > close.start_byte:
            raise _Stop
        offset = node.start_byte
        if self.first_header is None:
            header = self.data[offset : close.end_byte].decode("utf-8", "surrogatepass")
            self.first_header = (header, offset)
        keys = _key_parts(key, self.data)
        # Inside [[a]], a header [a.b] belongs to the last element of a: insert its index.
        path: KeyPath = ()
        for part in keys[:-1]:
            path = (*path, part)
            if path in self._arrays:
                path = (*path, self._arrays[path])
        path = (*path, keys[-1])
        offsets = self.offsets
        for end in range(1, len(path)):
            offsets.setdefault(path[:end], offset)
        if is_array:
            index = self._arrays.get(path, -1) + 1
            self._arrays[path] = index
            offsets.setdefault(path, offset)
            path = (*path, index)
        offsets[path] = offset
        return path

    def _pair(self, node: Node, table: KeyPath) -> None:
        if node.has_error:
            raise _Stop
        offsets = self.offsets
        # Depth first, in document order; a stack instead of recursion, as values nest.
        work: list[tuple[Node, KeyPath]] = [(node, table)]
        while work:
            item, path = work.pop()
            kind = item.type
            if kind == "pair":
                children = [child for child in item.children if child.type != "comment"]
                if len(children) != 3 or children[0].type not in _KEY_TYPES:
                    raise _Stop
                offset = item.start_byte
                full = (*path, *_key_parts(children[0], self.data))
                for end in range(len(path) + 1, len(full)):
                    offsets.setdefault(full[:end], offset)
                offsets[full] = offset
                work.append((children[2], full))
            elif kind == "array":
                elements = [child for child in item.named_children if child.type != "comment"]
                for index, element in enumerate(elements):
                    offsets[(*path, index)] = element.start_byte
                for index in range(len(elements) - 1, -1, -1):
                    work.append((elements[index], (*path, index)))
            elif kind == "inline_table":
                pairs = [child for child in item.named_children if child.type == "pair"]
                work.extend((pair, path) for pair in reversed(pairs))
            elif kind == "ERROR" or item.is_missing:
                raise _Stop


def _key_parts(node: Node, data: bytes) -> list[str]:
    """The parts of a ``bare_key``, ``quoted_key`` or ``dotted_key`` node, decoded."""
    parts: list[str] = []
    while node.type == "dotted_key":  # left-nested: ((a . b) . c)
        children = node.children
        if len(children) != 3:
            raise _Stop
        parts.append(_key_text(children[2], data))
        node = children[0]
    parts.append(_key_text(node, data))
    parts.reverse()
    return parts


def _key_text(node: Node, data: bytes) -> str:
    raw = data[node.start_byte : node.end_byte].decode("utf-8", "surrogatepass")
    if node.type == "bare_key":
        return raw
    if node.type != "quoted_key":
        raise _Stop
    return _unquote(raw)


def _unquote(raw: str) -> str:
    """The value of a quoted key as written (a basic or a literal string)."""
    if raw.startswith("'") or "\\" not in raw:
        return raw[1:-1]
    value = tomllib.loads(f"k = {raw}")["k"]  # escapes: let the real parser read them
    if not isinstance(value, str):  # pragma: no cover - a quoted key is a string
        raise _Stop
    return value


# The parser ---------------------------------------------------------------------------------

_local = threading.local()
"""A tree-sitter parser per thread (the studio diagnoses in worker threads)."""


@lru_cache(maxsize=1)
def _language() -> Language:
    # Imported here: only messages and the studio need positions, the run path does not.
    import tree_sitter_toml
    from tree_sitter import Language

    return Language(tree_sitter_toml.language())


def _parse(data: bytes) -> Node:
    parser: Parser | None = getattr(_local, "parser", None)
    if parser is None:
        from tree_sitter import Parser

        parser = _local.parser = Parser(_language())
    return parser.parse(data).root_node


@lru_cache(maxsize=4)
def locator_for(text: str) -> TomlLocator:
    """The locator of ``text``, shared: the loader and the diagnostics of one check parse once."""
    return TomlLocator(text)


# One key as written -------------------------------------------------------------------------

_KEY_PART_RE = re.compile(
    r"""[ \t]*
    (?: (?P<bare>[A-Za-z0-9_-]+) | (?P<basic>"(?:[^"\\\n]|\\.)*") | '(?P<literal>[^'\n]*)' )
    [ \t]*""",
    re.VERBOSE,
)


def read_key(text: str, start: int = 0) -> tuple[tuple[str, ...], int] | None:
    """Read a dotted key as written (``experts."writer".instruction``) at ``start``.

    Returns:
        The key's parts and the index just after it (blanks after it skipped), or ``None``
        when there is no key there.
    """
    parts: list[str] = []
    position = start
    while True:
        match = _KEY_PART_RE.match(text, position)
        if match is None:
            return None
        if match.group("basic") is not None:
            try:
                parts.append(_unquote(match.group("basic")))
            except tomllib.TOMLDecodeError:
                return None
        else:
            parts.append(match.group("bare") or match.group("literal") or "")
        position = match.end()
        if not text.startswith(".", position):
            return tuple(parts), position
        position += 1
