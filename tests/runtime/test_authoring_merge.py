"""ConfigDocument: merging a whole expert table field by field, and refused edits, compound
ones included, leaving the document unchanged."""

from __future__ import annotations

import tomllib

import pytest

from runtime.config.authoring import ConfigDocument, ConfigEditError
from tests.runtime.authoring_helpers import COMMENTED, assert_valid, changes, edited


def test_merge_adds_a_new_expert_with_skills() -> None:
    table = {
        "description": "Designs levels.",
        "instruction": "Design levels.\n",
        "skills": {
            "@perstack/base": {
                "type": "mcpStdioSkill",
                "command": "npx",
                "packageName": "@perstack/base",
            },
            "search": {"type": "mcpSseSkill", "endpoint": "https://s.example.com/sse"},
        },
    }
    new = edited(COMMENTED, lambda d: d.merge_expert("@game/level-designer", table))
    assert new.startswith(COMMENTED)
    assert tomllib.loads(new)["experts"]["@game/level-designer"] == table
    assert_valid(new)


def test_merge_replaces_an_expert_field_by_field() -> None:
    document = ConfigDocument.parse(COMMENTED)
    table = document.expert("lead")
    table["description"] = "Plans and delegates."
    table["skills"]["@perstack/base"]["pick"] = ["readTextFile"]
    del table["delegates"]
    document.merge_expert("lead", table)
    new = document.dumps()
    assert changes(COMMENTED, new) == (
        [
            'description = "Plans the work." # shown to nobody',
            'delegates = ["writer", "reviewer@1.0.0"] # both local',
        ],
        ['description = "Plans and delegates." # shown to nobody', 'pick = ["readTextFile"]'],
    )
    assert document.expert("lead") == table


def test_merge_drops_none_values_and_validates() -> None:
    document = ConfigDocument.parse(COMMENTED)
    document.merge_expert("new", {"description": None, "instruction": "New."})
    assert document.expert("new") == {"instruction": "New."}
    with pytest.raises(ConfigEditError, match="instruction"):
        document.merge_expert("bad", {"description": "No instruction."})
    # Without @perstack/base the expert is valid, as in Perstack: it only refuses to run, and
    # the file's diagnostics warn (tests/runtime/test_missing_base_skill.py).
    document.merge_expert(
        "nobase", {"instruction": "x", "skills": {"t": {"type": "mcpStdioSkill", "command": "x"}}}
    )
    assert list(document.expert("nobase")["skills"]) == ["t"]
    with pytest.raises(ConfigEditError, match="already defined"):
        document.merge_expert("writer", {"instruction": "x"}, replace=False)


def test_merge_removes_skills_and_changes_skill_type() -> None:
    document = ConfigDocument.parse(COMMENTED)
    table = document.expert("lead")
    del table["skills"]
    document.merge_expert("lead", table)
    assert "skills" not in document.expert("lead")
    table["skills"] = {
        "@perstack/base": {"type": "mcpSseSkill", "endpoint": "https://base.example.com/sse"}
    }
    document.merge_expert("lead", table)
    assert document.expert("lead") == table
    assert_valid(document.dumps())


def test_failed_compound_edit_is_rolled_back() -> None:
    document = ConfigDocument.parse(COMMENTED)
    table = document.expert("lead")
    table["description"] = "Changed first."
    table["skills"]["@perstack/base"]["lazyInit"] = "not a bool"
    with pytest.raises(ConfigEditError):
        document.merge_expert("lead", table)
    assert document.dumps() == COMMENTED
    document.set_expert_field("writer", "description", "Still editable.")
    assert_valid(document.dumps())


def test_value_tomlkit_cannot_write_is_refused() -> None:
    document = ConfigDocument.parse(COMMENTED)
    with pytest.raises(ConfigEditError):
        document.set_skill_field("lead", "@perstack/base", "args", [object()])
    assert document.dumps() == COMMENTED
