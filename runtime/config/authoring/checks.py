"""What an edit may ask for: valid expert keys and skills, in messages a form can show."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from runtime.config.schema import EXPERT_NAME_RE, SkillConfig
from runtime.errors import ConfigError


class ConfigEditError(ConfigError, ValueError):
    """An edit was refused: an invalid name or value, a duplicate, or a missing expert or skill.

    Both a :class:`~runtime.errors.ConfigError` (the runtime's contract) and a ``ValueError``
    (what a form expects from a refused value). The document is unchanged when it is raised.
    """

    title = "Edit refused"


def check_expert_key(key: object) -> str:
    """``key`` if it is a valid expert key.

    Raises:
        ConfigEditError: It is not; the message gives the rule.
    """
    if not isinstance(key, str) or not EXPERT_NAME_RE.match(key) or len(key) > 255:
        raise ConfigEditError(
            f"Invalid expert key {key!r}: use lowercase letters, digits, '-' and '_', "
            "optionally prefixed by @scope/ (e.g. my-expert or @my-team/writer); no dots, no "
            "@version, at most 255 characters."
        )
    return key


def pydantic_problems(error: ValidationError, what: str) -> str:
    """One message for every problem pydantic found in ``what``, by TOML key path."""
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


def validate_skill(name: str, skill: Mapping[str, Any]) -> None:
    """Check a skill table against the schema.

    Raises:
        ConfigEditError: It has no type or the schema rejects it (the message lists why).
    """
    if not isinstance(skill.get("type"), str):
        raise ConfigEditError(
            f'Skill "{name}" needs a type: "mcpStdioSkill", "mcpSseSkill", '
            '"mcpStreamableHttpSkill" or "interactiveSkill".'
        )
    try:
        _skill_adapter().validate_python(dict(skill), by_alias=True, by_name=False)
    except ValidationError as error:
        raise ConfigEditError(pydantic_problems(error, f'Skill "{name}"')) from None


def without_none(table: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``table`` without the keys set to None (TOML has no null: absent)."""
    return {
        str(key): without_none(value) if isinstance(value, Mapping) else copy.deepcopy(value)
        for key, value in table.items()
        if value is not None
    }
