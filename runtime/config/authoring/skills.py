"""Edits of an expert's skills: add, remove, set one key, and an interactive skill's tools."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

import tomlkit

from runtime.config.authoring.checks import ConfigEditError, validate_skill
from runtime.config.authoring.core import DocumentCore
from runtime.config.authoring.layout import KeyPath
from runtime.config.authoring.structure import append_table, delete_table
from runtime.config.authoring.tables import SKILL_ORDER, TOOL_ORDER, table_item
from runtime.config.authoring.values import new_key
from runtime.config.schema import BASE_SKILL_NAME

_BASE_SKILL_TABLE: Final[Mapping[str, Any]] = {
    "type": "mcpStdioSkill",
    "command": "npx",
    "packageName": BASE_SKILL_NAME,
}
"""The ``@perstack/base`` skill added when an expert gets its first skills table."""


class SkillEdits(DocumentCore):
    """The edits of ``[experts."<key>".skills."<name>"]`` tables."""

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
        validate_skill(name, plain)
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
            delete_table(self._document, path)

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
                validate_skill(skill, candidate)
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
        self._set_field(path, field, value, SKILL_ORDER)

    # Implementation --------------------------------------------------------------------------

    def _add_skill(self, expert: str, name: str, skill: dict[str, Any]) -> None:
        expected = copy.deepcopy(self._data)
        expert_table = expected["experts"][expert]
        skills = expert_table.get("skills")
        new_skill = table_item(skill, SKILL_ORDER)
        with self._edit(expected, reparse=True):
            if isinstance(skills, dict):
                skills[name] = copy.deepcopy(skill)
                append_table(self._document, ("experts", expert, "skills"), name, new_skill)
            else:
                expert_table["skills"] = {name: copy.deepcopy(skill)}
                holder = tomlkit.table(is_super_table=True)
                holder.value.body.append((new_key(name, bare_ok=False), new_skill))
                append_table(self._document, ("experts", expert), "skills", holder, quote=False)

    def _replace_skill(self, expert: str, name: str, skill: dict[str, Any]) -> None:
        expected = copy.deepcopy(self._data)
        del expected["experts"][expert]["skills"][name]
        with self._edit(expected, reparse=True):
            delete_table(self._document, ("experts", expert, "skills", name))
        self._add_skill(expert, name, skill)

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
                    delete_table(self._document, tools_path)
            return
        for name in [name for name in old_tools if name not in new_tools]:
            expected = copy.deepcopy(self._data)
            del _dig(expected, tools_path)[name]
            with self._edit(expected, reparse=True):
                delete_table(self._document, (*tools_path, name))
        for name, tool in new_tools.items():
            if not isinstance(tool, Mapping):
                raise ConfigEditError(f'Tool "{name}" must be a table.')
            if name in old_tools:
                old_tool = old_tools[name] if isinstance(old_tools[name], dict) else {}
                for field in [field for field in old_tool if field not in tool]:
                    self._set_field((*tools_path, name), field, None, TOOL_ORDER)
                for field, value in tool.items():
                    if old_tool.get(field) != value:
                        self._set_field((*tools_path, name), field, value, TOOL_ORDER)
                continue
            expected = copy.deepcopy(self._data)
            parent = _dig(expected, skill_path)
            item = table_item(dict(tool), TOOL_ORDER)
            with self._edit(expected, reparse=True):
                if isinstance(parent.get("tools"), dict):
                    parent["tools"][name] = copy.deepcopy(dict(tool))
                    append_table(self._document, tools_path, name, item)
                else:
                    parent["tools"] = {name: copy.deepcopy(dict(tool))}
                    holder = tomlkit.table(is_super_table=True)
                    holder.value.body.append((new_key(name, bare_ok=False), item))
                    append_table(self._document, skill_path, "tools", holder, quote=False)


def _dig(data: dict[str, Any], path: KeyPath) -> dict[str, Any]:
    target = data
    for part in path:
        target = target[part]
    return target
