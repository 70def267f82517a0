"""The tomlkit document in rendering order, and how its table headers are spelled.

Comments above a table header belong, in tomlkit's tree, to the end of the *previous* table.
Structural edits therefore see the document as :func:`flatten` gives it: every entry in the
order the file shows it, with the path it belongs to, and every table (scope) it defines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from tomlkit.container import Container
from tomlkit.items import AoT, Comment, InlineTable, Item, Key, Null, Table, Whitespace
from tomlkit.toml_document import TOMLDocument

from runtime.config.authoring.strings import BARE_KEY_RE, escape_basic

KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class Entry:
    """One body entry of a tomlkit container, seen in the order the document renders."""

    container: Container
    index: int
    key: Key | None
    item: Item
    path: KeyPath
    """Header entries: the table's path. Values: the path of the key (dotted keys expanded)."""
    header: bool = False

    @property
    def is_trivia(self) -> bool:
        """A comment or whitespace, not a key or header."""
        return self.key is None

    @property
    def is_comment(self) -> bool:
        """A comment line."""
        return self.key is None and isinstance(self.item, Comment)

    @property
    def is_blank(self) -> bool:
        """A whitespace entry that ends a line: a blank line between statements."""
        return (
            self.key is None and isinstance(self.item, Whitespace) and "\n" in self.item.as_string()
        )


@dataclass(frozen=True)
class Scope:
    """A table (header, implicit or dotted) or inline table: a container at a path."""

    path: KeyPath
    container: Container
    item: Table | InlineTable | TOMLDocument
    header: bool
    inline: bool = False
    """Written inline: an inline table, or a table made by dotted keys."""


def _key_parts(key: Key) -> KeyPath:
    return tuple(part.key for part in key)


def _dotted_leaf_path(key: Key, item: Item) -> KeyPath:
    """The full key of a dotted-key line (``a.b.c = 1`` is parsed as nested super tables)."""
    path = _key_parts(key)
    while isinstance(item, Table) and len(item.value.body) == 1:
        child_key, child = item.value.body[0]
        if child_key is None:
            break
        path += _key_parts(child_key)
        item = child
    return path


def flatten(document: TOMLDocument) -> tuple[list[Entry], list[Scope]]:
    """Every entry of the document in rendering order, and every scope (table) it defines."""
    entries: list[Entry] = []
    scopes: list[Scope] = [Scope((), document, document, False)]

    def inline_scopes(item: Item, path: KeyPath) -> None:
        if isinstance(item, InlineTable | Table):
            scopes.append(Scope(path, item.value, item, False, inline=True))
            for key, child in item.value.body:
                if key is not None:
                    inline_scopes(child, path + _key_parts(key))

    def walk(container: Container, prefix: KeyPath) -> None:
        for index, (key, item) in enumerate(container.body):
            if isinstance(item, Null):
                continue
            if key is None:
                entries.append(Entry(container, index, None, item, prefix))
            elif isinstance(item, Table) and not key.is_dotted():
                path = prefix + _key_parts(key)
                header = not item.is_super_table()
                scopes.append(Scope(path, item.value, item, header))
                if header:
                    entries.append(Entry(container, index, key, item, path, header=True))
                walk(item.value, path)
            elif isinstance(item, AoT) and not key.is_dotted():
                path = prefix + _key_parts(key)
                entries.append(Entry(container, index, key, item, path, header=True))
                for table in item.body:
                    walk(table.value, path)
            else:
                path = prefix + (
                    _dotted_leaf_path(key, item) if key.is_dotted() else _key_parts(key)
                )
                entries.append(Entry(container, index, key, item, path))
                if isinstance(item, InlineTable | Table):
                    inline_scopes(item, prefix + _key_parts(key))

    walk(document, ())
    return entries, scopes


def starts_with(path: KeyPath, prefix: KeyPath) -> bool:
    """Whether ``path`` is ``prefix`` or lies under it."""
    return path[: len(prefix)] == prefix


def ensure_line_end(entry: Entry) -> None:
    """Make ``entry`` end its line (the last line of a file may have no newline)."""
    item = entry.item
    if isinstance(item, Whitespace):
        if not item.as_string().endswith("\n"):
            entry.container.body[entry.index] = (None, Whitespace(item.as_string() + "\n"))
    elif not isinstance(item, Table | AoT) and "\n" not in item.trivia.trail:
        item.trivia.trail += "\n"


def last_container(table: Table) -> Container:
    """The container whose end is the end of ``table``'s rendering (its last sub-table's)."""
    container = table.value
    while container.body:
        key, item = container.body[-1]
        if key is not None and isinstance(item, Table) and not key.is_dotted():
            container = item.value
        else:
            break
    return container


# Headers -------------------------------------------------------------------------------------


def _split_dotted(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each part of a dotted key as written, quotes included."""
    spans: list[tuple[int, int]] = []
    index = 0
    while index < len(text):
        while index < len(text) and text[index] in " \t":
            index += 1
        start = index
        if index < len(text) and text[index] == '"':
            index += 1
            while text[index] != '"':
                index += 2 if text[index] == "\\" else 1
            index += 1
        elif index < len(text) and text[index] == "'":
            index = text.index("'", index + 1) + 1
        else:
            while index < len(text) and text[index] not in " \t.":
                index += 1
        spans.append((start, index))
        while index < len(text) and text[index] in " \t":
            index += 1
        index += 1  # the dot
    return spans


def rename_in_header(display: str, depth: int, name: str) -> str:
    """``experts."old".skills`` → ``experts."new".skills`` (part ``depth`` renamed)."""
    spans = _split_dotted(display)
    start, end = spans[depth]
    old = display[start:end]
    if old.startswith("'") and "'" not in name:
        new = f"'{name}'"
    elif old.startswith('"') or not BARE_KEY_RE.match(name):
        new = f'"{escape_basic(name)}"'
    else:
        new = name
    return display[:start] + new + display[end:]


_NAMED_PARTS: Final = frozenset({"experts", "skills", "tools"})
"""Tables whose keys are names a user chose: written quoted, as in Perstack's docs."""


def _header_part(part: str, previous: str | None) -> str:
    if previous in _NAMED_PARTS or not BARE_KEY_RE.match(part):
        return f'"{escape_basic(part)}"'
    return part


def name_headers(table: Table, path: KeyPath, scopes: Sequence[Scope]) -> None:
    """Spell the headers of a new table (and its sub-tables) from the nearest existing header.

    Without a display name, tomlkit derives a header from the tables around it, which for a
    table under dotted keys or an oddly spaced header (``[ experts . "a" ]``) is not what a
    person would write.
    """
    prefix: tuple[int, str] = (0, "")
    for scope in scopes:
        item = scope.item
        if (
            scope.header
            and isinstance(item, Table)
            and item.display_name is not None
            and len(scope.path) > prefix[0]
            and starts_with(path, scope.path)
            and len(scope.path) < len(path)
            and re.fullmatch(r"[^\s]+", item.display_name)
        ):
            prefix = (len(scope.path), item.display_name)

    def name(item: Table, item_path: KeyPath) -> None:
        if not item.is_super_table():
            depth, text = prefix
            parts = [text] if text else []
            for index in range(depth, len(item_path)):
                previous = item_path[index - 1] if index > 0 else None
                parts.append(_header_part(item_path[index], previous))
            item.display_name = ".".join(parts)
        for key, child in item.value.body:
            if key is not None and isinstance(child, Table):
                name(child, (*item_path, key.key))

    name(table, path)
