"""Tables as tomlkit items: new header tables in Perstack's key order, and inline table edits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import tomlkit
from tomlkit.items import InlineTable, Item, Key, Null, SingleKey, StringType, Table, Whitespace

from runtime.config.authoring.layout import last_container
from runtime.config.authoring.strings import string_item
from runtime.config.authoring.values import new_key, value_item
from runtime.config.schema import BASE_SKILL_NAME

EXPERT_ORDER: Final = (
    "version",
    "minRuntimeVersion",
    "description",
    "instruction",
    "delegates",
    "tags",
    "providerTools",
    "providerSkills",
    "providerToolOptions",
)
"""Where a new key goes in an expert table: before the first existing key that follows it."""

SKILL_ORDER: Final = (
    "type",
    "description",
    "rule",
    "command",
    "packageName",
    "args",
    "endpoint",
    "headers",
    "requiredEnv",
    "pick",
    "omit",
    "allowedDomains",
    "lazyInit",
)
"""Where a new key goes in a skill table (Perstack's documentation order)."""

TOOL_ORDER: Final = ("description", "inputJsonSchema")
"""Where a new key goes in a tool table of an ``interactiveSkill``."""

_TABLE_FIELDS: Final = frozenset({"skills", "tools"})
"""Keys whose value is written as sub-tables with headers, not as an inline table."""


def _ordered(table: Mapping[str, Any], order: Sequence[str]) -> list[tuple[str, Any]]:
    """The items of ``table`` with the known keys first, in Perstack's order."""
    known = [(key, table[key]) for key in order if key in table]
    return known + [(key, value) for key, value in table.items() if key not in order]


def table_item(table: Mapping[str, Any], order: Sequence[str]) -> Table:
    """A header table for ``table``; ``skills`` and ``tools`` become sub-tables."""
    item = tomlkit.table()
    subtables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in _ordered(table, order):
        if key in _TABLE_FIELDS and isinstance(value, Mapping):
            subtables.append((key, value))
            continue
        prefer = (
            (StringType.MLL, StringType.SLL) if key == "inputJsonSchema" else ()
        )  # JSON reads best without escapes
        if isinstance(value, str) and prefer:
            styles = [StringType.MLL, StringType.MLB] if "\n" in value else [StringType.SLL]
            item.value.body.append((new_key(key, bare_ok=True), string_item(value, prefer=styles)))
        else:
            item.value.body.append((new_key(key, bare_ok=True), value_item(value)))
    for key, children in subtables:
        holder = tomlkit.table(is_super_table=True)
        names = sorted(children, key=lambda name: name != BASE_SKILL_NAME)
        for name in names:
            child_order = SKILL_ORDER if key == "skills" else TOOL_ORDER
            child = children[name]
            child_item = table_item(child if isinstance(child, Mapping) else {}, child_order)
            if holder.value.body:
                previous = holder.value.body[-1][1]
                if isinstance(previous, Table):
                    last_container(previous).body.append((None, Whitespace("\n")))
            holder.value.body.append((new_key(name, bare_ok=False), child_item))
        if item.value.body:
            item.value.body.append((None, Whitespace("\n")))
        item.value.body.append((new_key(key, bare_ok=True), holder))
    return item


# Inline tables -------------------------------------------------------------------------------


def inline_copy(table: Table) -> InlineTable:
    """A new header table rewritten as an inline table (for a parent that is inline)."""
    inline = tomlkit.inline_table()
    for key, value in table.value.body:
        if key is None:
            continue
        inline.append(
            SingleKey(key.key, key.t if isinstance(key, SingleKey) else None),
            inline_copy(value) if isinstance(value, Table) else value,
        )
    return inline


def inline_append(inline: InlineTable, key: Key, item: Item) -> None:
    """Append ``key = item`` to an inline table as ``, key = item`` before its closing brace."""
    body = inline.value.body
    keyed = [
        index for index, (k, v) in enumerate(body) if k is not None and not isinstance(v, Null)
    ]
    item.trivia.indent = ""
    if keyed:
        position = keyed[-1] + 1
        body[position:position] = [(None, Whitespace(",")), (None, Whitespace(" ")), (key, item)]
    else:
        body[:] = [(None, Whitespace(" ")), (key, item), (None, Whitespace(" "))]


def inline_remove(inline: InlineTable, index: int) -> None:
    """Remove the key at body ``index`` of an inline table with its separating comma."""
    body = inline.value.body
    keyed = [i for i, (k, v) in enumerate(body) if k is not None and not isinstance(v, Null)]
    position = keyed.index(index)
    if len(keyed) == 1:
        body[:] = []
    elif position > 0:
        # ``a = 1, b = 2`` without ``b``: drop ", b = 2" (from the previous key's end).
        del body[keyed[position - 1] + 1 : index + 1]
    else:
        del body[index : keyed[1]]
