"""Setting one key of a table in place: the value in its old style, a new key where it reads best.

A new key goes after the table's last key (or before the key Perstack's order puts after it),
above the comment block of the next header, and a new top-level key before the first table, so
``envPath`` never lands under ``[provider]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tomlkit.container import Container
from tomlkit.items import AoT, Array, Comment, InlineTable, Item, Null, Table, Whitespace
from tomlkit.toml_document import TOMLDocument

from runtime.config.authoring.checks import ConfigEditError
from runtime.config.authoring.layout import Entry, KeyPath, ensure_line_end, flatten
from runtime.config.authoring.tables import inline_append, inline_remove
from runtime.config.authoring.values import (
    array_item,
    is_multiline_array,
    new_key,
    update_array,
    value_item,
)


def write_field(
    document: TOMLDocument, path: KeyPath, field: str, value: Any, order: Sequence[str]
) -> bool:
    """Set ``field`` of the table at ``path`` to ``value``, or remove it when ``value`` is None.

    Args:
        document: The tomlkit document.
        path: The table's key path (``()`` for the top level).
        field: The key.
        value: The plain value, or None.
        order: Where a new key goes among the table's keys (see :func:`_insert_key`).

    Returns:
        Whether a container body was changed directly, which leaves tomlkit's indexes stale.

    Raises:
        ConfigEditError: The table is not in the document.
    """
    scopes = [scope for scope in flatten(document)[1] if scope.path == path]
    # The scope that already has the key, else the one that reads best for a new key:
    # the table's own header section, then an inline table, then dotted keys.
    holder = next(
        (
            scope
            for scope in scopes
            if any(key is not None and key.key == field for key, _ in scope.container.body)
        ),
        None,
    )
    if holder is not None:
        index = next(
            index
            for index, (key, item) in enumerate(holder.container.body)
            if key is not None and key.key == field and not isinstance(item, Null)
        )
        key, old = holder.container.body[index]
        if value is None:
            if isinstance(holder.item, InlineTable):
                inline_remove(holder.item, index)
                return True
            del holder.item[field]
        elif isinstance(old, Array) and isinstance(value, list | tuple):
            if is_multiline_array(old):
                update_array(old, list(value))
            else:
                holder.item[field] = array_item(list(value), old)
        else:
            holder.item[field] = value_item(value, old)
        return False
    if value is None:
        return False
    if not scopes:
        raise ConfigEditError(f"Cannot find {'.'.join(path)} in the document.")
    scope = next((s for s in scopes if s.header or not path), None)
    if scope is None:
        scope = next((s for s in scopes if isinstance(s.item, InlineTable)), scopes[0])
    item = value_item(value)
    if isinstance(scope.item, InlineTable):
        inline_append(scope.item, new_key(field, bare_ok=True), item)
        return True
    stale = _insert_key(scope.container, field, item, order, top_level=not path)
    if scope.item is not scope.container:
        # A table mirrors its container's values as a dict; inserting into the container
        # directly (to choose the position) must keep that mirror in step for later edits.
        dict.__setitem__(scope.item, field, item.value)
    return stale


def _insert_key(
    container: Container,
    field: str,
    item: Item,
    order: Sequence[str],
    *,
    top_level: bool,
) -> bool:
    """Insert ``field = item`` among the keys of a table section (or the top level).

    Returns whether the body was changed directly (a raw insert tomlkit does not index).
    """
    body = container.body
    # Keys end where the first header begins (dotted keys render as key/value lines).
    end = next(
        (
            index
            for index, (key, value) in enumerate(body)
            if key is not None and isinstance(value, Table | AoT) and not key.is_dotted()
        ),
        len(body),
    )
    keyed = [
        index
        for index in range(end)
        if body[index][0] is not None and not isinstance(body[index][1], Null)
    ]
    position: int | None = None
    if field in order:
        later = set(order[order.index(field) + 1 :])
        following = next((i for i in keyed if body[i][0].key in later), None)  # type: ignore[union-attr]
        if following is not None:
            position = following
            # Stay below the comment block that introduces the following key.
            while position > 0 and isinstance(body[position - 1][1], Comment):
                position -= 1
    if position is None and keyed:
        position = keyed[-1] + 1
    blank_after = False
    if position is None:
        if top_level:
            # No top-level keys yet: go above the comment block of the first table, which
            # describes that table, and keep a blank line between.
            position = end
            while position > 0 and isinstance(body[position - 1][1], Comment):
                position -= 1
            blank_after = True
        else:
            position = 0
    # Indent like the other keys of the table (headers may be indented too).
    plain = [index for index in keyed if not isinstance(body[index][1], Table | AoT)]
    if plain:
        item.trivia.indent = body[plain[-1]][1].trivia.indent
    # Make sure the line before ends, also at the end of a file without a final newline.
    if position > 0:
        previous = Entry(container, position - 1, body[position - 1][0], body[position - 1][1], ())
        if not isinstance(previous.item, Table | AoT):
            ensure_line_end(previous)
    if position >= len(body):
        container.append(new_key(field, bare_ok=True), item)
    else:
        container._insert_at(position, new_key(field, bare_ok=True), item)
        if blank_after:
            next_item = body[position + 1][1]
            if not (isinstance(next_item, Whitespace) and next_item.as_string() == "\n"):
                # A raw insert leaves tomlkit's index stale: the edit reparses the text.
                body.insert(position + 1, (None, Whitespace("\n")))
                return True
    return False
