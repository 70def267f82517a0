"""Edit perstack.toml the way a person would: change what was asked and nothing else.

:class:`ConfigDocument` is the headless editing engine behind the studio's forms and
create-expert's merge. Every change is made on the tomlkit document of the real text, so
comments, key order, blank lines, quoting and ``\"\"\"`` strings the change does not touch keep
their bytes. Three things tomlkit does not do on its own are handled here:

* Comments above a table header belong, in tomlkit's tree, to the end of the *previous* table.
  Deleting a table would leave its comment behind (and take the next table's comment with it);
  appending a table would put it under the next table's comment. Structural edits therefore work
  on the document in rendering order (:func:`_flatten`) and move those comments where they belong.
* Assigning a plain ``str`` turns a ``\"\"\"`` string into a one-line basic string; strings are
  built here in the style the field already used (:func:`_string_item`).
* New keys go after the table's last key, before the comment block of the next header, and new
  top-level keys before the first table (so ``envPath`` never lands under ``[provider]``).

Every edit is checked before it is kept: the new text is parsed with ``tomllib`` (the parser the
runtime uses) and must give exactly the data the edit means, or the edit is refused and the
document left as it was. A tomlkit corner case can therefore never silently corrupt a file.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import re
import shutil
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

import tomlkit
from pydantic import TypeAdapter, ValidationError
from tomlkit.container import Container
from tomlkit.exceptions import ParseError, TOMLKitError
from tomlkit.items import (
    AoT,
    Array,
    Comment,
    InlineTable,
    Item,
    Key,
    KeyType,
    Null,
    SingleKey,
    String,
    StringType,
    Table,
    Trivia,
    Whitespace,
)
from tomlkit.toml_document import TOMLDocument

from runtime.config.loader import (
    CONFIG_FILE_NAME,
    ConfigFileError,
    ConfigProblem,
    check_limits,
    parse_config,
)
from runtime.config.schema import (
    BASE_SKILL_NAME,
    EXPERT_NAME_RE,
    ExpertConfig,
    PerstackConfig,
    SkillConfig,
    split_expert_ref,
)
from runtime.errors import ConfigError
from runtime.files import atomic_write

__all__ = [
    "EXPERT_FIELDS",
    "MINIMAL_CONFIG",
    "ConfigDocument",
    "ConfigEditError",
    "backup_config",
    "minimal_config",
    "save_config",
    "unified_diff",
]

KeyPath = tuple[str, ...]

EXPERT_FIELDS: Final = ("version", "description", "instruction", "delegates", "tags")
"""The expert fields :meth:`ConfigDocument.set_expert_field` edits, in the order new ones go."""

_EXPERT_ORDER: Final = (
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

_SKILL_ORDER: Final = (
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

_TOOL_ORDER: Final = ("description", "inputJsonSchema")

_BASE_SKILL_TABLE: Final[Mapping[str, Any]] = {
    "type": "mcpStdioSkill",
    "command": "npx",
    "packageName": BASE_SKILL_NAME,
}
"""The ``@perstack/base`` skill added when an expert gets its first skills table."""

_TABLE_FIELDS: Final = frozenset({"skills", "tools"})
"""Keys whose value is written as sub-tables with headers, not as an inline table."""

_BARE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_LONE_LF_RE = re.compile(r"(?<!\r)\n")


class ConfigEditError(ConfigError, ValueError):
    """An edit was refused: an invalid name or value, a duplicate, or a missing expert or skill.

    Both a :class:`~runtime.errors.ConfigError` (the runtime's contract) and a ``ValueError``
    (what a form expects from a refused value). The document is unchanged when it is raised.
    """

    title = "Edit refused"


# Strings -------------------------------------------------------------------------------------


def _escape_basic(value: str) -> str:
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


_SHORT_ESCAPES: Final = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


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
        raw = _escape_basic(value)
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


def _string_item(value: str, like: object = None, *, prefer: Sequence[StringType] = ()) -> String:
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
    return String(StringType.SLB, value, _escape_basic(value), Trivia())


# Values --------------------------------------------------------------------------------------


def _is_multiline_array(item: Array) -> bool:
    return "\n" in item.as_string()


def _array_item(values: Sequence[Any], like: object = None) -> Array:
    """A one-line array of ``values``; strings keep the quoting the old elements used."""
    literal = (
        isinstance(like, Array)
        and len(like) > 0
        and all(isinstance(old, String) and old.type is StringType.SLL for old in like)
    )
    array = tomlkit.array()
    for value in values:
        if isinstance(value, str):
            array.append(_string_item(value, prefer=(StringType.SLL,) if literal else ()))
        else:
            array.append(_value_item(value))
    return array


def _update_array(array: Array, values: Sequence[Any]) -> None:
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
    return _string_item(value, like) if isinstance(value, str) else _value_item(value)


def _value_item(value: Any, like: object = None) -> Item:
    """Any plain value (str, bool, int, float, list, dict) as a tomlkit item."""
    if isinstance(value, str):
        return _string_item(value, like)
    if isinstance(value, list | tuple):
        return _array_item(list(value), like)
    if isinstance(value, Mapping):
        table = tomlkit.inline_table()
        for key, child in value.items():
            table.append(_new_key(str(key), bare_ok=True), _value_item(child))
        return table
    item: Item = tomlkit.item(value)
    return item


def _new_key(name: str, *, bare_ok: bool) -> SingleKey:
    """A key as Perstack's docs write it: field names bare, names the user chose quoted."""
    if bare_ok and _BARE_KEY_RE.match(name):
        return SingleKey(name, KeyType.Bare)
    return SingleKey(name, KeyType.Basic)


def _renamed_key(old: Key, name: str) -> Key:
    """``old`` with another name, in the same quoting style when the name allows it."""
    original = old.as_string()
    lead = original[: len(original) - len(original.lstrip())]
    trail = original[len(original.rstrip()) :]
    style = old.t if isinstance(old, SingleKey) else KeyType.Basic
    if style is KeyType.Bare and not _BARE_KEY_RE.match(name):
        style = KeyType.Basic
    if style is KeyType.Literal and ("'" in name or "\n" in name):
        style = KeyType.Basic
    text = _escape_basic(name) if style is KeyType.Basic else name
    key = copy.copy(old)
    key.key = name
    if isinstance(key, SingleKey):
        key.t = style
        key._keys = [key]
    key._original = f"{lead}{style.value}{text}{style.value}{trail}"
    return key


def _render_key(name: str) -> str:
    """A table name as it appears in a dotted key."""
    return name if _BARE_KEY_RE.match(name) else f'"{_escape_basic(name)}"'


# The document in rendering order -------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
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
        return self.key is None

    @property
    def is_comment(self) -> bool:
        return self.key is None and isinstance(self.item, Comment)

    @property
    def is_blank(self) -> bool:
        """A whitespace entry that ends a line: a blank line between statements."""
        return (
            self.key is None and isinstance(self.item, Whitespace) and "\n" in self.item.as_string()
        )


@dataclass(frozen=True)
class _Scope:
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


def _flatten(document: TOMLDocument) -> tuple[list[_Entry], list[_Scope]]:
    """Every entry of the document in rendering order, and every scope (table) it defines."""
    entries: list[_Entry] = []
    scopes: list[_Scope] = [_Scope((), document, document, False)]

    def inline_scopes(item: Item, path: KeyPath) -> None:
        if isinstance(item, InlineTable | Table):
            scopes.append(_Scope(path, item.value, item, False, inline=True))
            for key, child in item.value.body:
                if key is not None:
                    inline_scopes(child, path + _key_parts(key))

    def walk(container: Container, prefix: KeyPath) -> None:
        for index, (key, item) in enumerate(container.body):
            if isinstance(item, Null):
                continue
            if key is None:
                entries.append(_Entry(container, index, None, item, prefix))
            elif isinstance(item, Table) and not key.is_dotted():
                path = prefix + _key_parts(key)
                header = not item.is_super_table()
                scopes.append(_Scope(path, item.value, item, header))
                if header:
                    entries.append(_Entry(container, index, key, item, path, header=True))
                walk(item.value, path)
            elif isinstance(item, AoT) and not key.is_dotted():
                path = prefix + _key_parts(key)
                entries.append(_Entry(container, index, key, item, path, header=True))
                for table in item.body:
                    walk(table.value, path)
            else:
                path = prefix + (
                    _dotted_leaf_path(key, item) if key.is_dotted() else _key_parts(key)
                )
                entries.append(_Entry(container, index, key, item, path))
                if isinstance(item, InlineTable | Table):
                    inline_scopes(item, prefix + _key_parts(key))

    walk(document, ())
    return entries, scopes


def _starts_with(path: KeyPath, prefix: KeyPath) -> bool:
    return path[: len(prefix)] == prefix


def _ensure_line_end(entry: _Entry) -> None:
    """Make ``entry`` end its line (the last line of a file may have no newline)."""
    item = entry.item
    if isinstance(item, Whitespace):
        if not item.as_string().endswith("\n"):
            entry.container.body[entry.index] = (None, Whitespace(item.as_string() + "\n"))
    elif not isinstance(item, Table | AoT) and "\n" not in item.trivia.trail:
        item.trivia.trail += "\n"


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


def _rename_in_header(display: str, depth: int, name: str) -> str:
    """``experts."old".skills`` → ``experts."new".skills`` (part ``depth`` renamed)."""
    spans = _split_dotted(display)
    start, end = spans[depth]
    old = display[start:end]
    if old.startswith("'") and "'" not in name:
        new = f"'{name}'"
    elif old.startswith('"') or not _BARE_KEY_RE.match(name):
        new = f'"{_escape_basic(name)}"'
    else:
        new = name
    return display[:start] + new + display[end:]


# Plain data ----------------------------------------------------------------------------------


def _plain_experts(data: Mapping[str, Any]) -> dict[str, Any]:
    experts = data.get("experts")
    return experts if isinstance(experts, dict) else {}


def _check_expert_key(key: object) -> str:
    if not isinstance(key, str) or not EXPERT_NAME_RE.match(key) or len(key) > 255:
        raise ConfigEditError(
            f"Invalid expert key {key!r}: use lowercase letters, digits, '-' and '_', "
            "optionally prefixed by @scope/ (e.g. my-expert or @my-team/writer); no dots, no "
            "@version, at most 255 characters."
        )
    return key


def _pydantic_problems(error: ValidationError, what: str) -> str:
    lines = []
    for item in error.errors(include_url=False):
        # Drop pydantic's union tags (e.g. "mcpStdioSkill") so the path is the TOML key path.
        loc = [
            str(part)
            for part in item["loc"]
            if not (isinstance(part, str) and part.endswith("Skill"))
        ]
        where = ".".join(loc)
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return f"{what} is invalid: " + "; ".join(lines)


@cache
def _skill_adapter() -> TypeAdapter[Any]:
    return TypeAdapter(SkillConfig)


def _validate_skill(name: str, skill: Mapping[str, Any]) -> None:
    if not isinstance(skill.get("type"), str):
        raise ConfigEditError(
            f'Skill "{name}" needs a type: "mcpStdioSkill", "mcpSseSkill", '
            '"mcpStreamableHttpSkill" or "interactiveSkill".'
        )
    try:
        _skill_adapter().validate_python(dict(skill), by_alias=True, by_name=False)
    except ValidationError as error:
        raise ConfigEditError(_pydantic_problems(error, f'Skill "{name}"')) from None


def _without_none(table: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``table`` without the keys set to None (TOML has no null: absent)."""
    return {
        str(key): _without_none(value) if isinstance(value, Mapping) else copy.deepcopy(value)
        for key, value in table.items()
        if value is not None
    }


def _ordered(table: Mapping[str, Any], order: Sequence[str]) -> list[tuple[str, Any]]:
    """The items of ``table`` with the known keys first, in Perstack's order."""
    known = [(key, table[key]) for key in order if key in table]
    return known + [(key, value) for key, value in table.items() if key not in order]


# The document --------------------------------------------------------------------------------


class ConfigDocument:
    """A perstack.toml being edited.

    Every change goes through tomlkit on the real document, so comments, key order, blank lines,
    quoting and \"\"\" strings the user did not touch stay byte-identical. Each edit is verified
    with ``tomllib`` before it is kept; a refused edit raises :class:`ConfigEditError` and leaves
    the document as it was.
    """

    def __init__(self, text: str, data: dict[str, Any], *, label: str = CONFIG_FILE_NAME) -> None:
        """Wrap text that ``tomllib`` parsed to ``data``; use :meth:`parse` instead."""
        self._text = text
        self._data = data
        self._label = label
        self._tree: TOMLDocument | None = None
        # A file written with CRLF everywhere keeps CRLF on the lines edits add.
        self._crlf = "\r\n" in text and _LONE_LF_RE.search(text) is None
        self._stale = False
        """Set when a container body was changed directly: tomlkit's indexes must be rebuilt."""

    @property
    def _document(self) -> TOMLDocument:
        """The tomlkit tree of the current text, built on first use.

        tomlkit parses ten times slower than ``tomllib``; reading a document (hot reload,
        outline, the forms' initial values) never needs it, only the first edit does.

        Raises:
            ConfigError: tomlkit rejects the text or cannot write it back byte for byte.
        """
        if self._tree is None:
            try:
                tree = tomlkit.parse(self._text)
            except (ParseError, TOMLKitError) as error:
                line = getattr(error, "line", None)
                raise ConfigFileError(
                    [ConfigProblem(line, "", f"cannot be edited: {error}", self._label)],
                    label=self._label,
                ) from None
            if tree.as_string() != self._text:
                raise ConfigError(
                    f"{self._label} cannot be edited with forms: the TOML library would not "
                    "write it back unchanged. Edit the text instead."
                )
            self._tree = tree
        return self._tree

    # Reading ---------------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, *, label: str = CONFIG_FILE_NAME) -> ConfigDocument:
        """Parse perstack.toml text for editing.

        Only the TOML must be valid: a file with schema errors (a missing instruction, an
        unknown delegate) can be edited, which is how it gets fixed. Parsing is as cheap as
        ``tomllib``: the tomlkit tree edits work on is built on the first edit, which raises
        ``ConfigError`` in the rare case tomlkit cannot reproduce the text byte for byte.

        Args:
            text: The file's text.
            label: How to name the file in messages.

        Returns:
            The document.

        Raises:
            ConfigError: The text is not valid TOML (a ``ConfigFileError`` whose problem names
                the line).
        """
        # Before any parser: a file nested a thousand deep crashes tomllib, and one with a key
        # of thousands of dotted parts takes seconds (the studio reparses on every save).
        check_limits(text, label)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            # The loader words syntax errors best (line, column, the fix for common mistakes).
            parse_config(text, path_label=label)
            raise ConfigFileError(  # pragma: no cover - parse_config raises for this text
                [ConfigProblem(None, "", f"invalid TOML: {error}", label)], label=label
            ) from None
        return cls(text, data, label=label)

    def dumps(self) -> str:
        """The document's text; the parsed text itself when nothing was changed."""
        return self._text

    def data(self) -> dict[str, Any]:
        """The whole document as plain Python data (as the runtime parses it)."""
        return copy.deepcopy(self._data)

    def expert_keys(self) -> list[str]:
        """The keys of the ``[experts."<key>"]`` tables, in file order."""
        return list(_plain_experts(self._data))

    def expert(self, key: str) -> dict[str, Any]:
        """One expert table as plain Python data (a copy: changing it changes nothing).

        Args:
            key: The expert key.

        Returns:
            The table with Perstack's camelCase keys, skills included.

        Raises:
            KeyError: No expert ``key`` is defined.
        """
        experts = _plain_experts(self._data)
        if key not in experts:
            raise KeyError(key)
        table = experts[key]
        return copy.deepcopy(table) if isinstance(table, dict) else {}

    # Experts ---------------------------------------------------------------------------------

    def add_expert(
        self,
        key: str,
        *,
        instruction: str,
        description: str | None = None,
        delegates: Sequence[str] = (),
    ) -> None:
        """Append an ``[experts."<key>"]`` table (after a blank line) after the last expert.

        Args:
            key: The expert key.
            instruction: Its instruction; multi-line text is written as a ``\"\"\"`` string.
            description: Its description, if any.
            delegates: Keys of experts it may delegate to.

        Raises:
            ConfigEditError: The key is invalid (the message gives the rule) or already defined.
        """
        table: dict[str, Any] = {}
        if description is not None:
            table["description"] = description
        table["instruction"] = instruction
        if delegates:
            table["delegates"] = list(delegates)
        self._add_expert(key, table)

    def rename_expert(self, old: str, new: str) -> None:
        """Rename an expert in place, with its comments and sub-tables (skills).

        Delegates of other experts that name it are renamed too (``old@1.0.0`` becomes
        ``new@1.0.0``).

        Args:
            old: The current key.
            new: The new key.

        Raises:
            ConfigEditError: ``old`` is not defined, ``new`` is invalid or already defined.
        """
        self._require_expert(old)
        _check_expert_key(new)
        if new == old:
            return
        if new in _plain_experts(self._data):
            raise ConfigEditError(f'An expert "{new}" is already defined.')
        expected = copy.deepcopy(self._data)
        expected["experts"] = {
            (new if name == old else name): table for name, table in expected["experts"].items()
        }
        with self._edit(expected, reparse=True):
            self._rename_key(("experts",), old, new)
            self._rewrite_delegates(old, new, expected)

    def delete_expert(self, key: str) -> list[str]:
        """Delete an expert: its table, its sub-tables and the comment block right above it.

        It is also removed from the delegates of the other experts.

        Args:
            key: The expert key.

        Returns:
            The keys of the experts whose delegates changed, in file order.

        Raises:
            ConfigEditError: ``key`` is not defined.
        """
        self._require_expert(key)
        expected = copy.deepcopy(self._data)
        del expected["experts"][key]
        # Without experts, an implicit experts table is gone; an explicit [experts] stays.
        emptied = (
            None if expected["experts"] else {k: v for k, v in expected.items() if k != "experts"}
        )
        with self._edit(expected, reparse=True, empty_parent=emptied):
            self._delete_table(("experts", key))
            return self._rewrite_delegates(key, None, expected)

    def set_expert_field(self, key: str, field: str, value: str | list[str] | None) -> None:
        """Set or remove one field of an expert.

        Strings keep the style the field used (``\"\"\"``, ``'''``, ``'...'``); multi-line text
        is written as a ``\"\"\"`` string, other text as a basic string. A new field goes after
        the table's last key (before ``instruction`` when it is ``version`` or ``description``).

        Args:
            key: The expert key.
            field: One of ``description``, ``instruction``, ``version``, ``delegates``, ``tags``.
            value: A string (description, instruction, version), a list of strings (delegates,
                tags), or ``None`` to remove the field.

        Raises:
            ConfigEditError: Unknown field, a value of the wrong type, or no such expert.
        """
        if field not in EXPERT_FIELDS:
            raise ConfigEditError(
                f"Cannot set {field!r} of an expert here: use one of {', '.join(EXPERT_FIELDS)}."
            )
        if value is not None:
            wants_list = field in ("delegates", "tags")
            ok = (
                isinstance(value, list | tuple) and all(isinstance(item, str) for item in value)
                if wants_list
                else isinstance(value, str)
            )
            if not ok:
                kind = "a list of strings" if wants_list else "a string"
                raise ConfigEditError(f"{field} must be {kind} (got {value!r}).")
        self._require_expert(key)
        self._set_field(("experts", key), field, value, _EXPERT_ORDER)

    def merge_expert(self, key: str, table: Mapping[str, Any], *, replace: bool = True) -> None:
        """Add an expert, or make an existing one equal to ``table``, touching nothing else.

        An existing expert is changed field by field and skill by skill, so its comments and
        the formatting of what stays the same are kept.

        Args:
            key: The expert key.
            table: The expert table with Perstack's camelCase keys, skills included; keys set
                to None are left out.
            replace: Whether an existing expert may be changed.

        Raises:
            ConfigEditError: The key or the table is invalid (the message lists the problems),
                or the expert exists and ``replace`` is false.
        """
        _check_expert_key(key)
        plain = _without_none(table)
        try:
            ExpertConfig.model_validate(plain, by_alias=True, by_name=False)
        except ValidationError as error:
            raise ConfigEditError(_pydantic_problems(error, f'Expert "{key}"')) from None
        if key not in _plain_experts(self._data):
            self._add_expert(key, plain)
            return
        if not replace:
            raise ConfigEditError(f'An expert "{key}" is already defined.')
        with self._transaction():
            self._merge_existing(key, plain)

    # Skills ----------------------------------------------------------------------------------

    def add_skill(self, expert: str, name: str, skill: Mapping[str, Any]) -> None:
        """Add a skill table ``[experts."<expert>".skills."<name>"]``.

        When the expert has no skills table yet, ``@perstack/base`` is added first: a skills
        table without it is an error.

        Args:
            expert: The expert key.
            name: The skill name.
            skill: The skill with Perstack's camelCase keys, ``type`` included; for an
                ``interactiveSkill``, ``tools`` maps tool names to ``{description,
                inputJsonSchema}``.

        Raises:
            ConfigEditError: No such expert, the skill exists, or it is invalid (the message
                names the problem).
        """
        self._require_expert(expert)
        if not isinstance(name, str) or not name.strip():
            raise ConfigEditError("A skill needs a name.")
        plain = copy.deepcopy(dict(skill))
        _validate_skill(name, plain)
        skills = self.expert(expert).get("skills")
        if isinstance(skills, dict) and name in skills:
            raise ConfigEditError(f'Expert "{expert}" already has a skill "{name}".')
        with self._transaction():
            if not isinstance(skills, dict) and name != BASE_SKILL_NAME:
                self._add_skill(expert, BASE_SKILL_NAME, dict(_BASE_SKILL_TABLE))
            self._add_skill(expert, name, plain)

    def remove_skill(self, expert: str, name: str) -> None:
        """Remove a skill table (with the comment block above it).

        Removing the last skill removes the skills table, so the expert gets the default base
        skill again.

        Args:
            expert: The expert key.
            name: The skill name.

        Raises:
            ConfigEditError: No such expert or skill, or ``@perstack/base`` while other skills
                remain (a skills table must contain it).
        """
        skills = self._require_skill(expert, name)
        if name == BASE_SKILL_NAME and len(skills) > 1:
            others = ", ".join(f'"{other}"' for other in skills if other != name)
            raise ConfigEditError(
                f'Cannot remove "{BASE_SKILL_NAME}" from expert "{expert}" while it has other '
                f"skills ({others}): an expert with a skills table must include "
                f'"{BASE_SKILL_NAME}". Remove the other skills first.'
            )
        expected = copy.deepcopy(self._data)
        expert_table = expected["experts"][expert]
        if len(skills) == 1:
            del expert_table["skills"]
            path: KeyPath = ("experts", expert, "skills")
        else:
            del expert_table["skills"][name]
            path = ("experts", expert, "skills", name)
        with self._edit(expected, reparse=True):
            self._delete_table(path)

    def set_skill_field(self, expert: str, skill: str, field: str, value: Any) -> None:
        """Set or remove one key of a skill (pick, omit, requiredEnv, rule, args, command, ...).

        ``tools`` of an ``interactiveSkill`` takes the whole ``{name: {description,
        inputJsonSchema}}`` mapping; tools are added, changed and removed one by one.

        Args:
            expert: The expert key.
            skill: The skill name.
            field: The camelCase key.
            value: The new value (string, list, bool, int, dict), or ``None`` to remove the key.

        Raises:
            ConfigEditError: No such expert or skill, ``type`` (remove and add the skill
                instead), or a value the skill's schema rejects for this key.
        """
        skills = self._require_skill(expert, skill)
        if field == "type":
            raise ConfigEditError(
                "A skill's type cannot be changed in place: remove the skill and add it again."
            )
        current = skills[skill] if isinstance(skills[skill], dict) else {}
        candidate = {key: item for key, item in current.items() if key != field}
        if value is not None:
            candidate[field] = copy.deepcopy(value)
        if "type" in candidate:
            try:
                _validate_skill(skill, candidate)
            except ConfigEditError as error:
                # Only this key's own problems: a form sets keys one at a time, and the skill
                # may be incomplete until the last one.
                if f"{field}:" in error.message or f"{field}." in error.message:
                    raise
        path = ("experts", expert, "skills", skill)
        if field == "tools":
            with self._transaction():
                self._set_tools(path, value)
            return
        self._set_field(path, field, value, _SKILL_ORDER)

    # Top level -------------------------------------------------------------------------------

    def set_top_level(self, field: str, value: str | int | list[str] | None) -> None:
        """Set or remove a top-level setting (model, reasoningBudget, maxSteps, envPath, ...).

        A new key is written with the other top-level keys, before the first table header, so
        it really is top-level (a key written after ``[provider]`` would belong to it).

        Args:
            field: The camelCase key, e.g. ``model``, ``maxSteps``, ``envPath``.
            value: The value (string, integer, list of strings), or ``None`` to remove the key.

        Raises:
            ConfigEditError: ``field`` is not a top-level setting of perstack.toml (or is a
                table: experts, provider).
        """
        known = [
            info.alias or name
            for name, info in PerstackConfig.model_fields.items()
            if name not in ("experts", "provider")
        ]
        if field not in known:
            raise ConfigEditError(
                f"{field!r} is not a top-level setting: use one of {', '.join(known)}."
            )
        self._set_field((), field, value, ())

    # Implementation: transactions ------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """Undo every step of a compound edit when one of them fails."""
        saved = (self._text, self._data)
        try:
            yield
        except BaseException:
            self._text, self._data = saved
            self._tree = None  # steps that succeeded changed it in place: rebuild on next use
            raise

    @contextlib.contextmanager
    def _edit(
        self,
        expected: dict[str, Any],
        *,
        reparse: bool,
        empty_parent: dict[str, Any] | None = None,
    ) -> Iterator[None]:
        """Make one change on the tomlkit document, then keep it only if it means ``expected``.

        ``expected`` may be completed by the body; it is compared on exit. ``empty_parent`` is
        also accepted when the edit emptied an implicit table, which then disappears.
        Structural edits change container bodies directly, which leaves tomlkit's indexes
        stale: ``reparse`` rebuilds the document from the new text.
        """
        self._stale = reparse
        try:
            yield
            text = self._document.as_string()
            if self._crlf:
                text = _LONE_LF_RE.sub("\r\n", text)
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as error:
                raise ConfigEditError(
                    f"The edit was not applied: it would make the file invalid TOML ({error})."
                ) from None
            if data != expected and not (empty_parent is not None and data == empty_parent):
                raise ConfigEditError(
                    "The edit was not applied: it would change more than asked "
                    "(an unusual layout of the file). Make this change in the text editor."
                )
        except (TypeError, TOMLKitError) as error:
            # tomlkit refusing a value (e.g. None inside a list): the caller's value is wrong.
            self._tree = None
            raise ConfigEditError(f"The edit was not applied: {error}") from None
        except BaseException:
            # The tomlkit tree may be half-changed: rebuild it from the last good text.
            self._tree = None
            raise
        if self._stale or text != self._document.as_string():
            # Rebuilt from the new text on the next edit (not now: many callers make one edit).
            self._tree = None
        self._text = text
        self._data = data

    # Implementation: lookups -----------------------------------------------------------------

    def _require_expert(self, key: str) -> dict[str, Any]:
        experts = _plain_experts(self._data)
        if key not in experts:
            defined = ", ".join(experts) or "none"
            raise ConfigEditError(f'No expert "{key}" in the file (defined: {defined}).')
        table = experts[key]
        if not isinstance(table, dict):
            raise ConfigEditError(f'experts."{key}" is not a table.')
        return table

    def _require_skill(self, expert: str, name: str) -> dict[str, Any]:
        skills = self._require_expert(expert).get("skills")
        if not isinstance(skills, dict) or name not in skills:
            raise ConfigEditError(f'Expert "{expert}" has no skill "{name}".')
        return skills

    def _scopes(self, path: KeyPath) -> list[_Scope]:
        return [scope for scope in _flatten(self._document)[1] if scope.path == path]

    # Implementation: fields ------------------------------------------------------------------

    def _set_field(self, path: KeyPath, field: str, value: Any, order: Sequence[str]) -> None:
        expected = copy.deepcopy(self._data)
        target: dict[str, Any] = expected
        for part in path:
            target = target[part]
        if value is None:
            if field not in target:
                return
            del target[field]
        else:
            target[field] = copy.deepcopy(list(value) if isinstance(value, tuple) else value)
            if field in target and self._lookup(path).get(field) == target[field]:
                return
        with self._edit(expected, reparse=False):
            self._write_field(path, field, value, order)

    def _lookup(self, path: KeyPath) -> dict[str, Any]:
        target: Any = self._data
        for part in path:
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return target if isinstance(target, dict) else {}

    def _write_field(self, path: KeyPath, field: str, value: Any, order: Sequence[str]) -> None:
        scopes = self._scopes(path)
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
                    _inline_remove(holder.item, index)
                    self._stale = True
                else:
                    del holder.item[field]
            elif isinstance(old, Array) and isinstance(value, list | tuple):
                if _is_multiline_array(old):
                    _update_array(old, list(value))
                else:
                    holder.item[field] = _array_item(list(value), old)
            else:
                holder.item[field] = _value_item(value, old)
            return
        if value is None:
            return
        if not scopes:
            raise ConfigEditError(f"Cannot find {'.'.join(path)} in the document.")
        scope = next((s for s in scopes if s.header or not path), None)
        if scope is None:
            scope = next((s for s in scopes if isinstance(s.item, InlineTable)), scopes[0])
        item = _value_item(value)
        if isinstance(scope.item, InlineTable):
            _inline_append(scope.item, _new_key(field, bare_ok=True), item)
            self._stale = True
            return
        self._insert_key(scope.container, field, item, order, top_level=not path)
        if scope.item is not scope.container:
            # A table mirrors its container's values as a dict; inserting into the container
            # directly (to choose the position) must keep that mirror in step for later edits.
            dict.__setitem__(scope.item, field, item.value)

    def _insert_key(
        self,
        container: Container,
        field: str,
        item: Item,
        order: Sequence[str],
        *,
        top_level: bool,
    ) -> None:
        """Insert ``field = item`` among the keys of a table section (or the top level)."""
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
            previous = _Entry(
                container, position - 1, body[position - 1][0], body[position - 1][1], ()
            )
            if not isinstance(previous.item, Table | AoT):
                _ensure_line_end(previous)
        if position >= len(body):
            container.append(_new_key(field, bare_ok=True), item)
        else:
            container._insert_at(position, _new_key(field, bare_ok=True), item)
            if blank_after:
                next_item = body[position + 1][1]
                if not (isinstance(next_item, Whitespace) and next_item.as_string() == "\n"):
                    # A raw insert leaves tomlkit's index stale: the edit reparses the text.
                    body.insert(position + 1, (None, Whitespace("\n")))
                    self._stale = True

    # Implementation: expert and skill tables -------------------------------------------------

    def _add_expert(self, key: str, table: dict[str, Any]) -> None:
        _check_expert_key(key)
        if key in _plain_experts(self._data):
            raise ConfigEditError(f'An expert "{key}" is already defined.')
        expected = copy.deepcopy(self._data)
        experts = expected.setdefault("experts", {})
        if not isinstance(experts, dict):
            raise ConfigEditError("experts is not a table in this file; fix it in the text.")
        experts[key] = copy.deepcopy(table)
        with self._edit(expected, reparse=True):
            self._append_table(("experts",), key, _table_item(table, _EXPERT_ORDER))

    def _add_skill(self, expert: str, name: str, skill: dict[str, Any]) -> None:
        expected = copy.deepcopy(self._data)
        expert_table = expected["experts"][expert]
        skills = expert_table.get("skills")
        new_skill = _table_item(skill, _SKILL_ORDER)
        with self._edit(expected, reparse=True):
            if isinstance(skills, dict):
                skills[name] = copy.deepcopy(skill)
                self._append_table(("experts", expert, "skills"), name, new_skill)
            else:
                expert_table["skills"] = {name: copy.deepcopy(skill)}
                holder = tomlkit.table(is_super_table=True)
                holder.value.body.append((_new_key(name, bare_ok=False), new_skill))
                self._append_table(("experts", expert), "skills", holder, quote=False)

    def _set_tools(self, skill_path: KeyPath, tools: Any) -> None:
        if tools is not None and not isinstance(tools, Mapping):
            raise ConfigEditError("tools must be a table of tool names to tool tables.")
        new_tools: dict[str, Any] = dict(tools or {})
        old_tools = self._lookup(skill_path).get("tools")
        old_tools = old_tools if isinstance(old_tools, dict) else {}
        tools_path = (*skill_path, "tools")
        if not new_tools:
            if "tools" in self._lookup(skill_path):
                expected = copy.deepcopy(self._data)
                del _dig(expected, skill_path)["tools"]
                with self._edit(expected, reparse=True):
                    self._delete_table(tools_path)
            return
        for name in [name for name in old_tools if name not in new_tools]:
            expected = copy.deepcopy(self._data)
            del _dig(expected, tools_path)[name]
            with self._edit(expected, reparse=True):
                self._delete_table((*tools_path, name))
        for name, tool in new_tools.items():
            if not isinstance(tool, Mapping):
                raise ConfigEditError(f'Tool "{name}" must be a table.')
            if name in old_tools:
                old_tool = old_tools[name] if isinstance(old_tools[name], dict) else {}
                for field in [field for field in old_tool if field not in tool]:
                    self._set_field((*tools_path, name), field, None, _TOOL_ORDER)
                for field, value in tool.items():
                    if old_tool.get(field) != value:
                        self._set_field((*tools_path, name), field, value, _TOOL_ORDER)
                continue
            expected = copy.deepcopy(self._data)
            parent = _dig(expected, skill_path)
            item = _table_item(dict(tool), _TOOL_ORDER)
            with self._edit(expected, reparse=True):
                if isinstance(parent.get("tools"), dict):
                    parent["tools"][name] = copy.deepcopy(dict(tool))
                    self._append_table(tools_path, name, item)
                else:
                    parent["tools"] = {name: copy.deepcopy(dict(tool))}
                    holder = tomlkit.table(is_super_table=True)
                    holder.value.body.append((_new_key(name, bare_ok=False), item))
                    self._append_table(skill_path, "tools", holder, quote=False)

    def _merge_existing(self, key: str, table: dict[str, Any]) -> None:
        path: KeyPath = ("experts", key)
        old = self.expert(key)
        for field in [field for field in old if field not in table and field != "skills"]:
            self._set_field(path, field, None, _EXPERT_ORDER)
        for field, value in table.items():
            if field != "skills" and old.get(field) != value:
                if isinstance(value, Mapping) or (
                    isinstance(value, list) and any(isinstance(v, Mapping) for v in value)
                ):
                    # Nested tables (providerToolOptions, providerSkills): written whole.
                    self._set_field(path, field, None, _EXPERT_ORDER)
                self._set_field(path, field, value, _EXPERT_ORDER)
        old_skills = old.get("skills")
        new_skills = table.get("skills")
        if not isinstance(new_skills, dict):
            if isinstance(old_skills, dict):
                expected = copy.deepcopy(self._data)
                del expected["experts"][key]["skills"]
                with self._edit(expected, reparse=True):
                    self._delete_table((*path, "skills"))
            return
        old_skills = old_skills if isinstance(old_skills, dict) else {}
        # Base first when adding, last when removing: the skills table must always contain it.
        names = sorted(new_skills, key=lambda name: name != BASE_SKILL_NAME)
        for name in names:
            skill = new_skills[name]
            if name not in old_skills:
                self._add_skill(key, name, dict(skill))
                continue
            previous = old_skills[name]
            if previous == skill:
                continue
            if not isinstance(previous, dict) or previous.get("type") != skill.get("type"):
                self._replace_skill(key, name, dict(skill))
                continue
            for field in [field for field in previous if field not in skill]:
                self.set_skill_field(key, name, field, None)
            for field, value in skill.items():
                if previous.get(field) != value:
                    self.set_skill_field(key, name, field, value)
        for name in sorted(
            (name for name in old_skills if name not in new_skills),
            key=lambda name: name == BASE_SKILL_NAME,
        ):
            self.remove_skill(key, name)
        final = self.expert(key)
        if final != table:
            raise ConfigEditError(
                f'The expert "{key}" could not be merged exactly; edit it in the text editor.'
            )

    def _replace_skill(self, expert: str, name: str, skill: dict[str, Any]) -> None:
        expected = copy.deepcopy(self._data)
        del expected["experts"][expert]["skills"][name]
        with self._edit(expected, reparse=True):
            self._delete_table(("experts", expert, "skills", name))
        self._add_skill(expert, name, skill)

    def _rewrite_delegates(self, old: str, new: str | None, expected: dict[str, Any]) -> list[str]:
        """Rename (or, with ``new`` None, remove) ``old`` in every expert's delegates."""
        changed: list[str] = []
        experts = _plain_experts(self._data)
        scopes: list[_Scope] | None = None  # element edits do not change the structure
        for key, table in experts.items():
            delegates = table.get("delegates") if isinstance(table, dict) else None
            if not isinstance(delegates, list):
                continue
            hits = [
                index
                for index, ref in enumerate(delegates)
                if isinstance(ref, str) and split_expert_ref(ref)[0] == old
            ]
            if not hits:
                continue
            owner = new if (new is not None and key == old) else key
            if key == old and new is None:
                continue  # the deleted expert itself
            changed.append(owner)
            values = list(delegates)
            for index in reversed(hits):
                if new is None:
                    del values[index]
                else:
                    values[index] = new + (
                        f"@{suffix}" if (suffix := split_expert_ref(values[index])[1]) else ""
                    )
            expected["experts"][owner]["delegates"] = values
            if scopes is None:
                scopes = _flatten(self._document)[1]
            for scope in (scope for scope in scopes if scope.path == ("experts", owner)):
                array = next(
                    (
                        item
                        for item_key, item in scope.container.body
                        if item_key is not None and item_key.key == "delegates"
                    ),
                    None,
                )
                if isinstance(array, Array):
                    _update_array(array, values)
                    break
            else:
                raise ConfigEditError(f'Cannot find the delegates of "{key}" in the document.')
        return changed

    # Implementation: structure ---------------------------------------------------------------

    def _append_table(
        self, parent: KeyPath, name: str, table: Table, *, quote: bool = True
    ) -> None:
        """Add ``table`` as the last child of ``parent``, after a blank line.

        Comments and blank lines at the end of the parent's last section usually introduce the
        next header; they move below the new table so they keep introducing it.
        """
        key = _new_key(name, bare_ok=not quote)
        entries, scopes = _flatten(self._document)
        holders = [scope for scope in scopes if scope.path == parent]
        sections = [scope for scope in holders if not scope.inline]
        if not holders:
            # The parent does not exist yet (e.g. no experts): create it as an implicit table.
            if not parent:  # pragma: no cover - the document itself is always a scope
                raise ConfigEditError("Cannot add a table here.")
            holder = tomlkit.table(is_super_table=True)
            holder.value.body.append((key, table))
            self._append_table(parent[:-1], parent[-1], holder, quote=False)
            return
        inline = next((scope for scope in holders if isinstance(scope.item, InlineTable)), None)
        if inline is not None and not sections:
            # A table written inline cannot be extended by a header: extend it in place.
            assert isinstance(inline.item, InlineTable)
            _inline_append(inline.item, key, _inline_copy(table))
            self._stale = True
            return
        owner = parent
        if not sections:
            # The parent is spelled with dotted keys (``skills.x.type = ...``): the new header
            # goes at the end of the nearest section that has its own header.
            while not sections:
                owner = owner[:-1]
                sections = [scope for scope in scopes if scope.path == owner and not scope.inline]
        section = sections[-1]
        _name_headers(table, (*parent, name), scopes)
        extent = [entry for entry in entries if _starts_with(entry.path, owner)]
        # The tail of trivia at the end of the parent's extent, from its first blank line on,
        # belongs to whatever follows: it moves below the new table.
        tail: list[_Entry] = []
        last: _Entry | None
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
                _ensure_line_end(last)
            elif "\n" not in last.item.trivia.trail:
                last.item.trivia.trail += "\n"
        # Raw body appends: tomlkit's append() reorders and re-validates; the edit reparses.
        body = section.container.body
        if last is not None or tail:
            body.append((None, Whitespace("\n")))
        body.append((key, table))
        target = _last_container(table)
        target.body.extend((None, entry.item) for entry in tail)

    def _delete_table(self, path: KeyPath) -> None:
        """Remove the table at ``path`` with all its sections and their leading comments."""
        entries, _ = _flatten(self._document)
        inside = [i for i, entry in enumerate(entries) if _starts_with(entry.path, path)]
        if not inside:
            self._delete_inline(path)
            return
        removed: set[int] = set()
        moves: list[tuple[_Entry | None, list[Item]]] = []
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
                container, position = self._document, 0
            elif anchor.header and isinstance(anchor.item, Table):
                # The anchor is a header: put the lines at the start of its own section.
                container, position = anchor.item.value, 0
            elif anchor.header and isinstance(anchor.item, AoT) and anchor.item.body:
                container = _last_container(anchor.item.body[-1])
                position = len(container.body)
            else:
                container, position = anchor.container, anchor.index + 1
                _ensure_line_end(anchor)
            for offset, item in enumerate(items):
                container.body.insert(position + offset, (None, item))

    def _delete_inline(self, path: KeyPath) -> None:
        """Delete a key that lives inside an inline table (or anywhere tomlkit can reach)."""
        target: Any = self._document
        for part in path[:-1]:
            target = target[part]
        try:
            del target[path[-1]]
        except (KeyError, TOMLKitError):
            raise ConfigEditError(f"Cannot find {'.'.join(path)} in the document.") from None

    def _rename_key(self, parent: KeyPath, old: str, new: str) -> None:
        """Rename the child ``old`` of ``parent`` everywhere it is written."""
        _, scopes = _flatten(self._document)
        depth = len(parent)
        found = False
        for scope in scopes:
            if scope.path == parent:
                body = scope.container.body
                for index, (key, item) in enumerate(body):
                    if key is not None and key.key == old and not isinstance(item, Null):
                        body[index] = (_renamed_key(key, new), item)
                        found = True
            if _starts_with(scope.path, (*parent, old)) and isinstance(scope.item, Table):
                table = scope.item
                if table.display_name is not None:
                    table.display_name = _rename_in_header(table.display_name, depth, new)
                if scope.path == (*parent, old) and table.name == old:
                    table.name = new
        if not found:
            raise ConfigEditError(f"Cannot find {'.'.join((*parent, old))} in the document.")


def _dig(data: dict[str, Any], path: KeyPath) -> dict[str, Any]:
    target = data
    for part in path:
        target = target[part]
    return target


def _last_container(table: Table) -> Container:
    """The container whose end is the end of ``table``'s rendering (its last sub-table's)."""
    container = table.value
    while container.body:
        key, item = container.body[-1]
        if key is not None and isinstance(item, Table) and not key.is_dotted():
            container = item.value
        else:
            break
    return container


_NAMED_PARTS: Final = frozenset({"experts", "skills", "tools"})
"""Tables whose keys are names a user chose: written quoted, as in Perstack's docs."""


def _header_part(part: str, previous: str | None) -> str:
    if previous in _NAMED_PARTS or not _BARE_KEY_RE.match(part):
        return f'"{_escape_basic(part)}"'
    return part


def _name_headers(table: Table, path: KeyPath, scopes: Sequence[_Scope]) -> None:
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
            and _starts_with(path, scope.path)
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


def _inline_append(inline: InlineTable, key: Key, item: Item) -> None:
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


def _inline_remove(inline: InlineTable, index: int) -> None:
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


def _table_item(table: Mapping[str, Any], order: Sequence[str]) -> Table:
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
            item.value.body.append(
                (_new_key(key, bare_ok=True), _string_item(value, prefer=styles))
            )
        else:
            item.value.body.append((_new_key(key, bare_ok=True), _value_item(value)))
    for key, children in subtables:
        holder = tomlkit.table(is_super_table=True)
        names = sorted(children, key=lambda name: name != BASE_SKILL_NAME)
        for name in names:
            child_order = _SKILL_ORDER if key == "skills" else _TOOL_ORDER
            child = children[name]
            child_item = _table_item(child if isinstance(child, Mapping) else {}, child_order)
            if holder.value.body:
                previous = holder.value.body[-1][1]
                if isinstance(previous, Table):
                    _last_container(previous).body.append((None, Whitespace("\n")))
            holder.value.body.append((_new_key(name, bare_ok=False), child_item))
        if item.value.body:
            item.value.body.append((None, Whitespace("\n")))
        item.value.body.append((_new_key(key, bare_ok=True), holder))
    return item


def _inline_copy(table: Table) -> InlineTable:
    """A new header table rewritten as an inline table (for a parent that is inline)."""
    inline = tomlkit.inline_table()
    for key, value in table.value.body:
        if key is None:
            continue
        inline.append(
            SingleKey(key.key, key.t if isinstance(key, SingleKey) else None),
            _inline_copy(value) if isinstance(value, Table) else value,
        )
    return inline


# Files ---------------------------------------------------------------------------------------


def save_config(path: Path, text: str) -> None:
    """Write perstack.toml atomically, keeping its mode; do nothing if it is unchanged.

    The text goes to a temporary file in the same directory, is flushed to disk, then renamed
    over the file: readers (the runtime, a watcher) see the old or the new file, never a part.
    Writing the same content would only wake file watchers and change the mtime, so it is
    skipped. A symlink is followed: the file it points to is replaced, the link kept.

    Args:
        path: The file.
        text: The new content (written as UTF-8, line endings as they are).

    Raises:
        ConfigError: The file cannot be written (permissions, missing directory, full disk).
    """
    target = path.resolve() if path.is_symlink() else path
    data = text.encode("utf-8")
    try:
        if target.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    except OSError as error:
        raise ConfigError(f"Cannot read {path}: {error.strerror or error}") from error
    try:
        atomic_write(path, data, keep_mode=True)
    except OSError as error:
        raise ConfigError(f"Cannot write {path}: {error.strerror or error}") from error


def backup_config(path: Path) -> Path:
    """Copy perstack.toml to ``perstack.toml.bak``, or ``.bak.1``, ``.bak.2``... if taken.

    Args:
        path: The file to back up.

    Returns:
        The backup's path.

    Raises:
        ConfigError: The file does not exist or the copy cannot be written.
    """
    candidate = path.with_name(f"{path.name}.bak")
    number = 0
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.name}.bak.{number}")
    try:
        shutil.copy2(path, candidate)
    except OSError as error:
        raise ConfigError(f"Cannot back up {path}: {error.strerror or error}") from error
    return candidate


def minimal_config(expert_key: str = "my-expert") -> str:
    """A minimal valid perstack.toml: one expert, with comments that explain each part.

    Args:
        expert_key: The key of the expert.

    Returns:
        The text.

    Raises:
        ConfigEditError: ``expert_key`` is not a valid expert key.
    """
    key = _check_expert_key(expert_key)
    header = _render_key(key) if key.startswith("@") else f'"{key}"'
    return (
        "# perstack.toml: the experts of this project and how they run.\n"
        f'# Run an expert with:  perstack start {key} "what you want done"\n'
        "\n"
        '# The model (default "claude-sonnet-4-5"); its API key comes from the environment\n'
        "# or from .env.\n"
        '# model = "claude-sonnet-4-5"\n'
        "\n"
        "# An expert: the table key is its name (lowercase letters, digits, '-' and '_').\n"
        f"[experts.{header}]\n"
        "# Shown to the experts that delegate to this one.\n"
        'description = "Answers questions about this project."\n'
        "# Private to this expert: what it does and how.\n"
        'instruction = """\n'
        "You are a helpful assistant for this project.\n"
        "Read the relevant files before you answer, and keep answers short.\n"
        '"""\n'
        '# Experts it may hand work to:  delegates = ["another-expert"]\n'
    )


MINIMAL_CONFIG: Final = minimal_config()
"""The perstack.toml the studio offers to create when there is none."""


def unified_diff(old: str, new: str, *, label: str = CONFIG_FILE_NAME) -> str:
    """A unified diff from ``old`` to ``new``, empty when they are equal.

    Args:
        old: The text before (e.g. on disk).
        new: The text after (e.g. in the editor).
        label: The file name shown in the ``---``/``+++`` lines.

    Returns:
        The diff, ``git diff`` style, including "No newline at end of file" markers.
    """
    if old == new:
        return ""
    lines: list[str] = []
    for line in difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{label}",
        tofile=f"b/{label}",
    ):
        if line.endswith("\n"):
            lines.append(line)
        else:
            lines.append(line + "\n\\ No newline at end of file\n")
    return "".join(lines)
