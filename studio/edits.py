"""The structured edits of the studio's forms, applied through the runtime's ConfigDocument.

A form returns the fields it shows (:class:`ExpertFields`, :class:`SkillFields`); these functions
turn the difference from the original into the fewest
:class:`~runtime.config.authoring.ConfigDocument` calls, so every key the user did not touch keeps
its bytes (comments, order, quoting, ``\"\"\"``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from runtime.config import ConfigDocument

T = TypeVar("T")

SKILL_FIELDS: dict[str, tuple[str, ...]] = {
    "mcpStdioSkill": (
        "description",
        "rule",
        "command",
        "packageName",
        "args",
        "requiredEnv",
        "lazyInit",
        "pick",
        "omit",
        "allowedDomains",
    ),
    "mcpSseSkill": ("description", "rule", "endpoint", "pick", "omit", "allowedDomains"),
    "mcpStreamableHttpSkill": (
        "description",
        "rule",
        "endpoint",
        "headers",
        "pick",
        "omit",
        "allowedDomains",
    ),
    "interactiveSkill": ("description", "rule", "tools"),
}
"""The keys the skill form edits, per skill type (camelCase, as in perstack.toml)."""


def edit_text(
    text: str, change: Callable[[ConfigDocument], T], *, label: str = "perstack.toml"
) -> tuple[str, T]:
    """Apply ``change`` to the document ``text`` parses to.

    Returns:
        The new text and what ``change`` returned.

    Raises:
        ConfigEditError: The document refused the change (the message says why).
        ConfigError: ``text`` is not valid TOML.
        KeyError: An expert or skill the change names is not in the text.
    """
    from runtime.config import ConfigDocument

    document = ConfigDocument.parse(text, label=label)
    result = change(document)
    return document.dumps(), result


# Values as the forms show them -----------------------------------------------------------------


def split_list(value: str) -> list[str]:
    """``"a, b  c"`` → ``["a", "b", "c"]`` (commas or spaces separate)."""
    return [item for item in re.split(r"[,\s]+", value.strip()) if item]


def join_list(values: Iterable[Any]) -> str:
    """The inverse of :func:`split_list`."""
    return ", ".join(str(value) for value in values)


def split_args(value: str) -> list[str]:
    """Command arguments as a shell would split them.

    Raises:
        ValueError: An unclosed quote.
    """
    return shlex.split(value)


def join_args(values: Iterable[Any]) -> str:
    """The inverse of :func:`split_args`."""
    return shlex.join(str(value) for value in values)


def parse_headers(value: str) -> dict[str, str]:
    """``"Authorization: Bearer ${TOKEN}; X-Team: games"`` → a header dict.

    Raises:
        ValueError: An entry without ``:``.
    """
    headers: dict[str, str] = {}
    for entry in value.split(";"):
        if not entry.strip():
            continue
        name, sep, content = entry.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"{entry.strip()!r} is not 'Name: value'")
        headers[name.strip()] = content.strip()
    return headers


def format_headers(headers: Mapping[str, Any]) -> str:
    """The inverse of :func:`parse_headers`."""
    return "; ".join(f"{name}: {value}" for name, value in headers.items())


def _plain(value: Any) -> Any:
    """A tomlkit item (or anything) as plain Python data."""
    unwrap = getattr(value, "unwrap", None)
    if callable(unwrap):
        return unwrap()
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


# Experts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpertFields:
    """The fields of the expert form."""

    key: str
    instruction: str
    description: str | None = None
    version: str | None = None
    delegates: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @classmethod
    def from_table(cls, key: str, table: Mapping[str, Any]) -> ExpertFields:
        """The form's fields for an existing ``[experts."<key>"]`` table."""
        data = _plain(table)

        def text(name: str) -> str | None:
            value = data.get(name)
            return value if isinstance(value, str) else None

        def strings(name: str) -> tuple[str, ...]:
            value = data.get(name)
            return tuple(str(item) for item in value) if isinstance(value, list) else ()

        return cls(
            key=key,
            instruction=text("instruction") or "",
            description=text("description"),
            version=text("version"),
            delegates=strings("delegates"),
            tags=strings("tags"),
        )


def apply_expert(
    document: ConfigDocument, fields: ExpertFields, original: ExpertFields | None
) -> None:
    """Add the expert (``original`` is ``None``) or change what the form changed."""
    if original is None:
        document.add_expert(
            fields.key,
            instruction=fields.instruction,
            description=fields.description,
            delegates=list(fields.delegates),
        )
        if fields.version:
            document.set_expert_field(fields.key, "version", fields.version)
        if fields.tags:
            document.set_expert_field(fields.key, "tags", list(fields.tags))
        return
    key = original.key
    if fields.key != original.key:
        document.rename_expert(original.key, fields.key)
        key = fields.key
    for name in ("description", "instruction", "version"):
        new, old = getattr(fields, name), getattr(original, name)
        if new != old:
            document.set_expert_field(key, name, new)
    for name in ("delegates", "tags"):
        new_list, old_list = getattr(fields, name), getattr(original, name)
        if new_list != old_list:
            document.set_expert_field(key, name, list(new_list) if new_list else None)


# Skills ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkillFields:
    """The fields of the skill form: the skill's name and its table (camelCase keys)."""

    name: str
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        """The skill's ``type``."""
        value = self.values.get("type")
        return value if isinstance(value, str) else ""

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any]) -> SkillFields:
        """The form's fields for an existing skill table."""
        return cls(name=name, values=_plain(table))


def apply_skill(
    document: ConfigDocument,
    expert: str,
    fields: SkillFields,
    original: SkillFields | None,
) -> None:
    """Add the skill (``original`` is ``None``) or change the keys the form changed.

    Adding an expert's first skill adds ``@perstack/base`` too (the document does it: a skills
    table without it is an error).

    Args:
        document: The document to change.
        expert: The expert the skill belongs to.
        fields: What the form holds.
        original: The skill as it was, or ``None`` to add it.
    """
    if original is None:
        document.add_skill(expert, fields.name, dict(fields.values))
        return
    for name in SKILL_FIELDS.get(original.type, ()):
        new, old = fields.values.get(name), original.values.get(name)
        if new != old:
            document.set_skill_field(expert, fields.name, name, new)
