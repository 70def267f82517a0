"""What is wrong in a parsed perstack.toml, found by walking the data along the schema.

* Unknown keys are ignored, as Perstack ignores them, but each one is reported as a
  :class:`~runtime.config.problems.ConfigWarning` with its line and a "did you mean" when it
  looks like a typo (:func:`unknown_keys`).
* pydantic's validation errors become one :class:`~runtime.config.problems.ConfigProblem` per
  key, in TOML words (:func:`schema_problems`).
* Things that are valid but will not work as written (a delegate defined nowhere, a stdio skill
  with neither ``packageName`` nor ``args``) are warnings too (:func:`semantic_warnings`).

Every message names the key as written in TOML (:func:`render_path`) and where it is, from
:mod:`runtime.config.locate`.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from runtime.config.env import PROTECTED_ENV_NAMES
from runtime.config.locate import KeyPath, TomlLocator
from runtime.config.problems import (
    SHOWN_KEY_CHARS,
    ConfigProblem,
    ConfigWarning,
    clip,
    line_order,
    quoted,
)
from runtime.config.schema import (
    BASE_SKILL_NAME,
    ERROR_AT,
    ExpertConfig,
    McpStdioSkill,
    PerstackConfig,
    SkillConfig,
    short_repr,
    split_expert_ref,
)

_BARE_KEY_FULL_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def _warning(
    locator: TomlLocator, path: KeyPath, data: Any, message: str, label: str
) -> ConfigWarning:
    line, column = _place(locator, path)
    return ConfigWarning(line, render_path(path, data), message, label, column=column)


def _problem(
    locator: TomlLocator, path: KeyPath, data: Any, message: str, label: str
) -> ConfigProblem:
    line, column = _place(locator, path)
    return ConfigProblem(line, render_path(path, data), message, label, column=column)


def _place(locator: TomlLocator, path: KeyPath) -> tuple[int | None, int | None]:
    """The line and column of ``path``, or of its nearest enclosing table when it is missing."""
    where = locator.locate(path)
    return (None, None) if where is None else (where.line, where.column)


# Walking the schema --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    """What a value at some place in the document should be, as far as key checking goes."""

    kind: Literal["model", "map", "list", "union", "leaf"]
    model: type[BaseModel] | None = None
    item: Any = None
    members: tuple[type[BaseModel], ...] = ()


def _unannotated(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _node(annotation: Any) -> _Node:
    annotation = _unannotated(annotation)
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        options = [_unannotated(arg) for arg in get_args(annotation) if arg is not type(None)]
        if len(options) == 1:
            return _node(options[0])
        if all(isinstance(arg, type) and issubclass(arg, BaseModel) for arg in options):
            return _Node("union", members=tuple(options))
        return _Node("leaf")
    if origin is dict:
        return _Node("map", item=get_args(annotation)[1])
    if origin is list:
        return _Node("list", item=get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _Node("model", model=annotation)
    return _Node("leaf")


@cache
def _fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The model's fields by their TOML name (alias)."""
    return {(info.alias or name): info for name, info in model.model_fields.items()}


def _type_tag(model: type[BaseModel]) -> str | None:
    info = model.model_fields.get("type")
    if info is None or get_origin(info.annotation) is not Literal:
        return None
    tag = get_args(info.annotation)[0]
    return tag if isinstance(tag, str) else None


def _member(node: _Node, tag: object) -> type[BaseModel] | None:
    for member in node.members:
        if _type_tag(member) == tag:
            return member
    return None


def _child(node: _Node, key: str | int, value: Any) -> _Node:
    """The node for ``key`` inside ``value``, described by ``node`` (value picks union members)."""
    if node.kind == "union":
        model = _member(node, value.get("type") if isinstance(value, dict) else None)
        if model is None:
            return _Node("leaf")
        node = _Node("model", model=model)
    if node.kind == "model" and node.model is not None and isinstance(key, str):
        info = _fields(node.model).get(key)
        return _node(info.annotation) if info is not None else _Node("leaf")
    if node.kind in ("map", "list"):
        return _node(node.item)
    return _Node("leaf")


_ROOT = _Node("model", model=PerstackConfig)

_SKILL_TYPES: tuple[str, ...] = tuple(
    tag for member in _node(SkillConfig).members if (tag := _type_tag(member)) is not None
)
"""Every skill ``type`` the schema knows, for messages."""


def _render_bare_or_quoted(key: str) -> str:
    return key if len(key) <= SHOWN_KEY_CHARS and _BARE_KEY_FULL_RE.match(key) else quoted(key)


def render_path(path: KeyPath, data: Any) -> str:
    """``experts."writer".skills."@perstack/base".pick[0]``: names quoted, field names bare."""
    node = _ROOT
    value = data
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            # Table names chosen by the user are always quoted (as Perstack's docs write them);
            # schema keys only when TOML requires it.
            text = quoted(key) if node.kind == "map" else _render_bare_or_quoted(key)
            out = f"{out}.{text}" if out else text
        node = _child(node, key, value)
        value = _index(value, key)
    return out


def _index(value: Any, key: str | int) -> Any:
    if isinstance(key, str) and isinstance(value, dict):
        return value.get(key)
    if isinstance(key, int) and isinstance(value, list) and 0 <= key < len(value):
        return value[key]
    return None


# Unknown keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnknownKey:
    """A key the schema does not know, with the known key it probably meant."""

    warning: ConfigWarning
    parent: KeyPath
    key: str
    suggestion: str | None


def _normalized(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def suggest(key: str, candidates: Sequence[str]) -> str | None:
    """The known key ``key`` was probably meant to be, if any."""
    for candidate in candidates:
        if _normalized(candidate) == _normalized(key):
            return candidate
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.75)
    return close[0] if close else None


def unknown_keys(data: dict[str, Any], locator: TomlLocator, label: str) -> list[UnknownKey]:
    """Every key of ``data`` the schema does not know, in document order, with a hint."""
    found: list[UnknownKey] = []
    top_level = list(_fields(PerstackConfig))
    expert_keys = list(_fields(ExpertConfig))

    def walk(node: _Node, value: Any, path: KeyPath, context: _KeyContext) -> None:
        if node.kind == "union" and isinstance(value, dict):
            model = _member(node, value.get("type"))
            if model is not None:  # else an unknown or missing skill type: validation says so
                others = tuple(member for member in node.members if member is not model)
                walk(_Node("model", model=model), value, path, _KeyContext(context.named, others))
        elif node.kind == "model" and node.model is not None and isinstance(value, dict):
            for key, child in value.items():
                if key in _fields(node.model):
                    walk(_child(node, key, value), child, (*path, key), _KeyContext())
                else:
                    found.append(unknown(path, key, node.model, context))
        elif node.kind == "map" and isinstance(value, dict):
            for key, child in value.items():
                walk(_node(node.item), child, (*path, key), _KeyContext(named=True))
        elif node.kind == "list" and isinstance(value, list):
            for index, child in enumerate(value):
                walk(_node(node.item), child, (*path, index), _KeyContext())

    def unknown(
        parent: KeyPath, key: str, model: type[BaseModel], context: _KeyContext
    ) -> UnknownKey:
        path = (*parent, key)
        suggestion = suggest(key, list(_fields(model)))
        owner = next((m for m in context.siblings if key in _fields(m)), None)
        owner_tag = _type_tag(owner) if owner is not None else None
        if suggestion is not None:
            hint = f"did you mean {suggestion}?"
        elif parent and key in top_level:
            hint = f"did you mean the top-level {key}? " + _top_level_advice(locator)
        elif key == "name" and context.named:
            hint = "the name is the table key"
        elif owner_tag is not None:
            hint = f"{key} applies to {owner_tag} skills only"
        elif not parent and key in expert_keys:
            hint = f'{key} belongs in an [experts."<key>"] table'
        elif len(key) >= 3 and (
            ending := [k for k in _fields(model) if _normalized(k).endswith(_normalized(key))]
        ):
            # A shortened key: "name" for providerName, "env" for requiredEnv.
            suggestion = ending[0]
            hint = f"did you mean {suggestion}?"
        else:
            hint = ""
        message = f"unknown key (ignored; {hint})" if hint else "unknown key (ignored)"
        warning = _warning(locator, path, data, message, label)
        return UnknownKey(warning, parent, key, suggestion)

    walk(_ROOT, data, (), _KeyContext())
    return found


@dataclass(frozen=True)
class _KeyContext:
    """Where a table sits, for better unknown-key hints."""

    named: bool = False
    """The table is an entry of a name-keyed map (an expert, a skill, a tool)."""
    siblings: tuple[type[BaseModel], ...] = ()
    """The other models a skill table could have been (to say which type a key belongs to)."""


def _top_level_advice(locator: TomlLocator) -> str:
    if locator.first_header is None:
        return "Top-level keys must come before the first table header"
    header, where = locator.first_header
    return f"Top-level keys must come before the first table header, {header} on line {where.line}"


# Schema problems -----------------------------------------------------------------------------


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"{'integer' if isinstance(value, int) else 'float'} {value}"
    if isinstance(value, str):
        return f"string {short_repr(value)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


def _got(value: object) -> str:
    return short_repr(value) if isinstance(value, str) else _toml_type(value)


_EXPECTED_TYPE = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
"""What a pydantic type error's field wanted, in TOML words."""


def _friendly(error: Mapping[str, Any]) -> str:
    """Rephrase one pydantic error for someone editing a TOML file."""
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    message = str(error["msg"])
    if kind == "missing":
        return "field required"
    if kind in _EXPECTED_TYPE:
        return f"must be {_EXPECTED_TYPE[kind]} (got {_toml_type(value)})"
    if kind == "literal_error":
        return f"must be {ctx['expected']} (got {_got(value)})"
    if kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters (got {len(str(value))})"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']} (got {_got(value)})"
    if kind == "union_tag_invalid":
        hint = suggest(str(ctx.get("tag")), _SKILL_TYPES)
        tag = short_repr(ctx.get("tag"))
        return f"unknown skill type {tag}: use one of {_one_of(_SKILL_TYPES)}" + (
            f" (did you mean {hint!r}?)" if hint else ""
        )
    if kind == "union_tag_not_found":
        return f"field required (the skill type: one of {_one_of(_SKILL_TYPES)})"
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    # Our validators cut the values they quote; pydantic's own messages might not.
    message = clip(message, 500)
    # "Field required" -> "field required", but leave acronyms ("URL must ...") alone.
    return message[:1].lower() + message[1:] if message[1:2].islower() else message


def _one_of(options: Sequence[str]) -> str:
    quoted = [repr(option) for option in options]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else "".join(quoted)


def _error_path(loc: Sequence[str | int], data: Any) -> tuple[KeyPath, bool]:
    """Turn a pydantic location into a document path; also whether it blames a table key.

    pydantic adds entries that are not keys of the file: the tag of a discriminated union
    (``"mcpStdioSkill"``), the member of a plain union, ``"[key]"`` for a bad dict key.
    """
    node, value = _ROOT, data
    path: list[str | int] = []
    for entry in loc:
        if entry == "[key]":
            return tuple(path), True
        if node.kind == "union":
            member = _member(node, entry)
            if member is not None:
                node = _Node("model", model=member)
                continue
        if node.kind == "leaf":
            break
        path.append(entry)
        node = _child(node, entry, value)
        value = _index(value, entry)
    return tuple(path), False


def schema_problems(
    error: ValidationError,
    data: dict[str, Any],
    locator: TomlLocator,
    label: str,
    unknown: Sequence[UnknownKey],
) -> list[ConfigProblem]:
    """The validation errors as one problem per key, in TOML words, ordered by line.

    A missing key is placed on its table's header, and names the typo behind it when one of
    the ``unknown`` keys looks like it.
    """
    problems: list[ConfigProblem] = []
    seen: set[tuple[KeyPath, str]] = set()
    for item in error.errors(include_url=False):
        path, _ = _error_path(item["loc"], data)
        ctx: Mapping[str, Any] = item.get("ctx") or {}
        if item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            path = (*path, "type")
        if isinstance(ctx.get(ERROR_AT), str):
            path = (*path, *ctx[ERROR_AT].split("."))
        message = _friendly(item)
        if item["type"] == "missing":
            # A required key is often "missing" because of a typo one line away: say so here,
            # since a failed load shows no warnings.
            for candidate in unknown:
                if candidate.parent == path[:-1] and candidate.suggestion == path[-1]:
                    message += (
                        f" (found {short_repr(candidate.key)} on line {candidate.warning.line}: "
                        f"did you mean {candidate.suggestion}?)"
                    )
                    break
        if (path, message) in seen:
            continue
        seen.add((path, message))
        problems.append(_problem(locator, path, data, message, label))
    return sorted(problems, key=line_order)


# Checks across the validated document --------------------------------------------------------


def semantic_warnings(
    config: PerstackConfig, data: dict[str, Any], locator: TomlLocator, label: str
) -> Iterator[ConfigWarning]:
    """Valid but suspicious: these would fail (or be ignored) only later, at run time."""

    def warn(path: KeyPath, message: str) -> ConfigWarning:
        return _warning(locator, path, data, message, label)

    defined = list(config.experts)
    for key, expert in config.experts.items():
        seen: set[str] = set()
        for index, delegate in enumerate(expert.delegates):
            path: KeyPath = ("experts", key, "delegates", index)
            name, _ = split_expert_ref(delegate)
            if delegate in seen:
                yield warn(path, f'delegate "{delegate}" is listed twice')
            seen.add(delegate)
            if name == key:
                yield warn(path, f'expert "{key}" lists itself as a delegate')
            elif name not in config.experts and not name.startswith("@"):
                close = suggest(name, defined)
                yield warn(
                    path,
                    f'delegate "{delegate}" of expert "{key}" is not defined in {label} '
                    + (
                        f'(did you mean "{close}"?)'
                        if close
                        else "(it will be looked up in the registry)"
                    ),
                )
        if expert.skills is not None and BASE_SKILL_NAME not in expert.skills:
            yield warn(
                ("experts", key, "skills"),
                f'has no "{BASE_SKILL_NAME}", so this expert cannot run ("Base skill is not '
                f'defined"); the other experts can. Add skills."{BASE_SKILL_NAME}" with type = '
                f'"mcpStdioSkill", command = "npx", packageName = "{BASE_SKILL_NAME}"',
            )
        for skill_name, skill in (expert.skills or {}).items():
            if not isinstance(skill, McpStdioSkill):
                continue
            path = ("experts", key, "skills", skill_name)
            if skill.package_name and skill.args:
                yield warn(
                    path,
                    "has both packageName and args, so it cannot start: keep only one of them",
                )
            elif not skill.package_name and not skill.args:
                yield warn(
                    path,
                    "has neither packageName nor args, so it cannot start: set packageName "
                    '(e.g. packageName = "@modelcontextprotocol/server-github") or args',
                )
            for index, name in enumerate(skill.required_env):
                if name in PROTECTED_ENV_NAMES:
                    yield warn(
                        (*path, "requiredEnv", index),
                        f"{name} is protected and is never passed to skills (ignored)",
                    )
            if skill_name == BASE_SKILL_NAME and skill.lazy_init:
                yield warn((*path, "lazyInit"), f"ignored for {BASE_SKILL_NAME} (always started)")
