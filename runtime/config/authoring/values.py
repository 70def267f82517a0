"""Values and keys as tomlkit items: arrays edited element by element, keys in their style."""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import tomlkit
from tomlkit.items import Array, Item, Key, KeyType, SingleKey, String, StringType, Whitespace

from runtime.config.authoring.strings import BARE_KEY_RE, escape_basic, string_item


def is_multiline_array(item: Array) -> bool:
    """Whether the array is written over several lines (one element per line, usually)."""
    return "\n" in item.as_string()


def array_item(values: Sequence[Any], like: object = None) -> Array:
    """A one-line array of ``values``; strings keep the quoting the old elements used."""
    literal = (
        isinstance(like, Array)
        and len(like) > 0
        and all(isinstance(old, String) and old.type is StringType.SLL for old in like)
    )
    array = tomlkit.array()
    for value in values:
        if isinstance(value, str):
            array.append(string_item(value, prefer=(StringType.SLL,) if literal else ()))
        else:
            array.append(value_item(value))
    return array


def update_array(array: Array, values: Sequence[Any]) -> None:
    """Turn ``array`` into ``values`` in place with the fewest element edits.

    Used for multi-line arrays, where each element has its own line and maybe its own comment:
    only the lines of elements that change are touched.
    """
    old = [item.unwrap() if isinstance(item, Item) else item for item in array]
    matcher = difflib.SequenceMatcher(a=old, b=list(values), autojunk=False)
    # Back to front, so the indexes of the earlier opcodes stay valid.
    for tag, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
        if tag == "equal":
            continue
        common = min(i2 - i1, j2 - j1)
        for offset in range(common):
            array[i1 + offset] = _element(values[j1 + offset], array[i1 + offset])
        for index in range(i2 - 1, i1 + common - 1, -1):
            del array[index]
        for offset in range(common, j2 - j1):
            position = i1 + offset
            item = _element(values[j1 + offset], None)
            if position >= len(array):
                array.append(item)
            else:
                array.insert(position, item)
            _single_line_indent(array, item)


def _single_line_indent(array: Array, item: Item) -> None:
    """Undo tomlkit copying the previous element's leading whitespace, blank lines included."""
    for group in array._value:
        indent = group.indent
        if group.value is item and isinstance(indent, Whitespace) and indent.s.count("\n") > 1:
            group.indent = Whitespace("\n" + indent.s.rsplit("\n", 1)[1])


def _element(value: Any, like: object) -> Item:
    return string_item(value, like) if isinstance(value, str) else value_item(value)


def value_item(value: Any, like: object = None) -> Item:
    """Any plain value (str, bool, int, float, list, dict) as a tomlkit item."""
    if isinstance(value, str):
        return string_item(value, like)
    if isinstance(value, list | tuple):
        return array_item(list(value), like)
    if isinstance(value, Mapping):
        table = tomlkit.inline_table()
        for key, child in value.items():
            table.append(new_key(str(key), bare_ok=True), value_item(child))
        return table
    item: Item = tomlkit.item(value)
    return item


# Keys ----------------------------------------------------------------------------------------


def new_key(name: str, *, bare_ok: bool) -> SingleKey:
    """A key as Perstack's docs write it: field names bare, names the user chose quoted."""
    if bare_ok and BARE_KEY_RE.match(name):
        return SingleKey(name, KeyType.Bare)
    return SingleKey(name, KeyType.Basic)


def renamed_key(old: Key, name: str) -> Key:
    """``old`` with another name, in the same quoting style when the name allows it."""
    original = old.as_string()
    lead = original[: len(original) - len(original.lstrip())]
    trail = original[len(original.rstrip()) :]
    style = old.t if isinstance(old, SingleKey) else KeyType.Basic
    if style is KeyType.Bare and not BARE_KEY_RE.match(name):
        style = KeyType.Basic
    if style is KeyType.Literal and ("'" in name or "\n" in name):
        style = KeyType.Basic
    text = escape_basic(name) if style is KeyType.Basic else name
    key = copy.copy(old)
    key.key = name
    if isinstance(key, SingleKey):
        key.t = style
        key._keys = [key]
    key._original = f"{lead}{style.value}{text}{style.value}{trail}"
    return key


def render_key(name: str) -> str:
    """A table name as it appears in a dotted key."""
    return name if BARE_KEY_RE.match(name) else f'"{escape_basic(name)}"'
