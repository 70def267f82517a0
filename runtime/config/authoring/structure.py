"""Adding, deleting and renaming whole tables, with the comments that introduce them.

A comment block above a header describes that table, but tomlkit keeps it at the end of the
previous table. Appending a table would put it under the next table's comment, and deleting one
would leave its comment behind (and take the next table's with it); these functions work on the
document in rendering order (:func:`~runtime.config.authoring.layout.flatten`) and move those
comments where they belong.

They change container bodies directly, which leaves tomlkit's indexes stale: callers make them
inside an edit that reparses the new text.
"""

from __future__ import annotations

from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, InlineTable, Item, Null, Table, Whitespace
from tomlkit.toml_document import TOMLDocument

from runtime.config.authoring.checks import ConfigEditError
from runtime.config.authoring.layout import (
    Entry,
    KeyPath,
    ensure_line_end,
    flatten,
    last_container,
    name_headers,
    rename_in_header,
    starts_with,
)
from runtime.config.authoring.tables import inline_append, inline_copy
from runtime.config.authoring.values import new_key, renamed_key


def append_table(
    document: TOMLDocument, parent: KeyPath, name: str, table: Table, *, quote: bool = True
) -> None:
    """Add ``table`` as the last child of ``parent``, after a blank line.

    Comments and blank lines at the end of the parent's last section usually introduce the
    next header; they move below the new table so they keep introducing it.
    """
    key = new_key(name, bare_ok=not quote)
    entries, scopes = flatten(document)
    holders = [scope for scope in scopes if scope.path == parent]
    sections = [scope for scope in holders if not scope.inline]
    if not holders:
        # The parent does not exist yet (e.g. no experts): create it as an implicit table.
        if not parent:  # pragma: no cover - the document itself is always a scope
            raise ConfigEditError("Cannot add a table here.")
        holder = tomlkit.table(is_super_table=True)
        holder.value.body.append((key, table))
        append_table(document, parent[:-1], parent[-1], holder, quote=False)
        return
    inline = next((scope for scope in holders if isinstance(scope.item, InlineTable)), None)
    if inline is not None and not sections:
        # A table written inline cannot be extended by a header: extend it in place.
        assert isinstance(inline.item, InlineTable)
        inline_append(inline.item, key, inline_copy(table))
        return
    owner = parent
    if not sections:
        # The parent is spelled with dotted keys (``skills.x.type = ...``): the new header
        # goes at the end of the nearest section that has its own header.
        while not sections:
            owner = owner[:-1]
            sections = [scope for scope in scopes if scope.path == owner and not scope.inline]
    section = sections[-1]
    name_headers(table, (*parent, name), scopes)
    extent = [entry for entry in entries if starts_with(entry.path, owner)]
    # The tail of trivia at the end of the parent's extent, from its first blank line on,
    # belongs to whatever follows: it moves below the new table.
    tail: list[Entry] = []
    last: Entry | None
    if extent and owner:
        index = len(extent)
        while index > 0 and extent[index - 1].is_trivia:
            index -= 1
        trivia = extent[index:]
        first_blank = next((i for i, entry in enumerate(trivia) if entry.is_blank), None)
        if first_blank is not None:
            tail = trivia[first_blank:]
        before = trivia[:first_blank] if first_blank is not None else trivia
        last = before[-1] if before else (extent[index - 1] if index > 0 else None)
    else:
        last = entries[-1] if entries else None
    for entry in tail:
        entry.container.body[entry.index] = (None, Null())
    if last is not None:
        if not last.header:
            ensure_line_end(last)
        elif "\n" not in last.item.trivia.trail:
            last.item.trivia.trail += "\n"
    # Raw body appends: tomlkit's append() reorders and re-validates; the edit reparses.
    body = section.container.body
    if last is not None or tail:
        body.append((None, Whitespace("\n")))
    body.append((key, table))
    target = last_container(table)
    target.body.extend((None, entry.item) for entry in tail)


def delete_table(document: TOMLDocument, path: KeyPath) -> None:
    """Remove the table at ``path`` with all its sections and their leading comments."""
    entries, _ = flatten(document)
    inside = [i for i, entry in enumerate(entries) if starts_with(entry.path, path)]
    if not inside:
        _delete_inline(document, path)
        return
    removed: set[int] = set()
    moves: list[tuple[Entry | None, list[Item]]] = []
    runs: list[list[int]] = []
    for index in inside:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    for run in runs:
        start, end = run[0], run[-1]
        # Trailing trivia: comments right after the table's last line are its own; from
        # the first blank line on, they introduce what follows and are kept.
        tail_start = end + 1
        while tail_start > start and entries[tail_start - 1].is_trivia:
            tail_start -= 1
        trivia = list(range(tail_start, end + 1))
        first_blank = next((i for i in trivia if entries[i].is_blank), None)
        kept = [] if first_blank is None else list(range(first_blank, end + 1))
        # The comment block directly above the first header (no blank line between).
        lead = start
        while lead > 0 and entries[lead - 1].is_comment:
            lead -= 1
        # Blank lines before that block are dropped when the kept tail brings its own, or
        # when nothing follows (no blank lines at the end of the file).
        blank = lead
        if kept or end + 1 >= len(entries):
            while blank > 0 and entries[blank - 1].is_blank:
                blank -= 1
        removed.update(range(blank, end + 1))
        anchor = entries[blank - 1] if blank > 0 else None
        moves.append((anchor, [entries[i].item for i in kept]))
    # Remove from the outermost entries: an entry whose container is itself removed goes
    # with it.
    for index in sorted(removed, reverse=True):
        entry = entries[index]
        entry.container.body[entry.index] = (None, Null())
    for anchor, items in reversed(moves):
        if not items:
            continue
        container: Container
        if anchor is None:
            # Nothing above any more: the file must not start with blank lines.
            while items and isinstance(items[0], Whitespace) and "\n" in items[0].as_string():
                items = items[1:]
            container, position = document, 0
        elif anchor.header and isinstance(anchor.item, Table):
            # The anchor is a header: put the lines at the start of its own section.
            container, position = anchor.item.value, 0
        elif anchor.header and isinstance(anchor.item, AoT) and anchor.item.body:
            container = last_container(anchor.item.body[-1])
            position = len(container.body)
        else:
            container, position = anchor.container, anchor.index + 1
            ensure_line_end(anchor)
        for offset, item in enumerate(items):
            container.body.insert(position + offset, (None, item))


def _delete_inline(document: TOMLDocument, path: KeyPath) -> None:
    """Delete a key that lives inside an inline table (or anywhere tomlkit can reach)."""
    target: Any = document
    for part in path[:-1]:
        target = target[part]
    try:
        del target[path[-1]]
    except (KeyError, TOMLKitError):
        raise ConfigEditError(f"Cannot find {'.'.join(path)} in the document.") from None


def rename_key(document: TOMLDocument, parent: KeyPath, old: str, new: str) -> None:
    """Rename the child ``old`` of ``parent`` everywhere it is written."""
    _, scopes = flatten(document)
    depth = len(parent)
    found = False
    for scope in scopes:
        if scope.path == parent:
            body = scope.container.body
            for index, (key, item) in enumerate(body):
                if key is not None and key.key == old and not isinstance(item, Null):
                    body[index] = (renamed_key(key, new), item)
                    found = True
        if starts_with(scope.path, (*parent, old)) and isinstance(scope.item, Table):
            table = scope.item
            if table.display_name is not None:
                table.display_name = rename_in_header(table.display_name, depth, new)
            if scope.path == (*parent, old) and table.name == old:
                table.name = new
    if not found:
        raise ConfigEditError(f"Cannot find {'.'.join((*parent, old))} in the document.")
