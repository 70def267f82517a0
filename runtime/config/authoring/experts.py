"""Edits of ``[experts."<key>"]`` tables: add, rename, delete, set a field, merge a whole table."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pydantic import ValidationError

from runtime.config.authoring.checks import (
    ConfigEditError,
    check_expert_key,
    pydantic_problems,
    without_none,
)
from runtime.config.authoring.core import plain_experts
from runtime.config.authoring.delegates import rewrite_delegates
from runtime.config.authoring.layout import KeyPath
from runtime.config.authoring.skills import SkillEdits
from runtime.config.authoring.structure import append_table, delete_table, rename_key
from runtime.config.authoring.tables import EXPERT_ORDER, table_item
from runtime.config.schema import BASE_SKILL_NAME, ExpertConfig

EXPERT_FIELDS: Final = ("version", "description", "instruction", "delegates", "tags")
"""The expert fields :meth:`ConfigDocument.set_expert_field` edits, in the order new ones go."""


class ExpertEdits(SkillEdits):
    """The edits of expert tables; merging a whole expert edits its skills too."""

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
        check_expert_key(new)
        if new == old:
            return
        if new in plain_experts(self._data):
            raise ConfigEditError(f'An expert "{new}" is already defined.')
        expected = copy.deepcopy(self._data)
        expected["experts"] = {
            (new if name == old else name): table for name, table in expected["experts"].items()
        }
        with self._edit(expected, reparse=True):
            rename_key(self._document, ("experts",), old, new)
            rewrite_delegates(self._document, plain_experts(self._data), old, new, expected)

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
            delete_table(self._document, ("experts", key))
            return rewrite_delegates(self._document, plain_experts(self._data), key, None, expected)

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
        self._set_field(("experts", key), field, value, EXPERT_ORDER)

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
        check_expert_key(key)
        plain = without_none(table)
        try:
            ExpertConfig.model_validate(plain, by_alias=True, by_name=False)
        except ValidationError as error:
            raise ConfigEditError(pydantic_problems(error, f'Expert "{key}"')) from None
        if key not in plain_experts(self._data):
            self._add_expert(key, plain)
            return
        if not replace:
            raise ConfigEditError(f'An expert "{key}" is already defined.')
        with self._transaction():
            self._merge_existing(key, plain)

    # Implementation --------------------------------------------------------------------------

    def _add_expert(self, key: str, table: dict[str, Any]) -> None:
        check_expert_key(key)
        if key in plain_experts(self._data):
            raise ConfigEditError(f'An expert "{key}" is already defined.')
        expected = copy.deepcopy(self._data)
        experts = expected.setdefault("experts", {})
        if not isinstance(experts, dict):
            raise ConfigEditError("experts is not a table in this file; fix it in the text.")
        experts[key] = copy.deepcopy(table)
        with self._edit(expected, reparse=True):
            append_table(self._document, ("experts",), key, table_item(table, EXPERT_ORDER))

    def _merge_existing(self, key: str, table: dict[str, Any]) -> None:
        path: KeyPath = ("experts", key)
        old = self.expert(key)
        for field in [field for field in old if field not in table and field != "skills"]:
            self._set_field(path, field, None, EXPERT_ORDER)
        for field, value in table.items():
            if field != "skills" and old.get(field) != value:
                if isinstance(value, Mapping) or (
                    isinstance(value, list) and any(isinstance(v, Mapping) for v in value)
                ):
                    # Nested tables (providerToolOptions, providerSkills): written whole.
                    self._set_field(path, field, None, EXPERT_ORDER)
                self._set_field(path, field, value, EXPERT_ORDER)
        old_skills = old.get("skills")
        new_skills = table.get("skills")
        if not isinstance(new_skills, dict):
            if isinstance(old_skills, dict):
                expected = copy.deepcopy(self._data)
                del expected["experts"][key]["skills"]
                with self._edit(expected, reparse=True):
                    delete_table(self._document, (*path, "skills"))
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
