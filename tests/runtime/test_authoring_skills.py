"""ConfigDocument: adding, removing and editing skills and interactive tools, with the base
skill kept first and invalid skills refused without changing the document."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from runtime.config.authoring import ConfigDocument, ConfigEditError
from tests.runtime.authoring_helpers import COMMENTED, FIXTURES, assert_valid, changes, edited, read


def test_add_skill_to_expert_without_skills_adds_base_first() -> None:
    new = edited(
        COMMENTED,
        lambda d: d.add_skill(
            "writer",
            "github",
            {
                "type": "mcpStdioSkill",
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-github"],
                "requiredEnv": ["GITHUB_TOKEN"],
            },
        ),
    )
    block = (
        "\n"
        '[experts."writer".skills."@perstack/base"]\n'
        'type = "mcpStdioSkill"\n'
        'command = "npx"\n'
        'packageName = "@perstack/base"\n'
        "\n"
        '[experts."writer".skills."github"]\n'
        'type = "mcpStdioSkill"\n'
        'command = "npx"\n'
        'args = ["-y", "@modelcontextprotocol/server-github"]\n'
        'requiredEnv = ["GITHUB_TOKEN"]\n'
    )
    anchor = 'instruction = "Write." # short\n'
    assert new == COMMENTED.replace(anchor, anchor + block)
    # Inserted right after the writer, above the reviewer's comment.
    assert 'requiredEnv = ["GITHUB_TOKEN"]\n\n# The reviewer, last.' in new
    assert_valid(new)


def test_add_interactive_skill_with_tools_after_existing_skills() -> None:
    schema = '{\n  "type": "object",\n  "properties": {"ok": {"type": "boolean"}}\n}\n'
    new = edited(
        COMMENTED,
        lambda d: d.add_skill(
            "lead",
            "ask",
            {
                "type": "interactiveSkill",
                "description": "Questions.",
                "tools": {"confirm": {"description": "Yes or no.", "inputJsonSchema": schema}},
            },
        ),
    )
    block = (
        "\n"
        '[experts."lead".skills."ask"]\n'
        'type = "interactiveSkill"\n'
        'description = "Questions."\n'
        "\n"
        '[experts."lead".skills."ask".tools."confirm"]\n'
        'description = "Yes or no."\n'
        "inputJsonSchema = '''\n"
        f"{schema}"
        "'''\n"
    )
    anchor = 'packageName = "@perstack/base"\n'
    assert new == COMMENTED.replace(anchor, anchor + block)
    assert (
        tomllib.loads(new)["experts"]["lead"]["skills"]["ask"]["tools"]["confirm"][
            "inputJsonSchema"
        ]
        == schema
    )
    assert_valid(new)


@pytest.mark.parametrize(
    ("skill", "match"),
    [
        ({"command": "npx"}, "needs a type"),
        ({"type": "mcpSSESkill", "endpoint": "https://x.example.com"}, "mcpSSESkill"),
        ({"type": "mcpSseSkill", "endpoint": "http://example.com/sse"}, "public HTTPS"),
        ({"type": "mcpStdioSkill"}, "command"),
        ({"type": "interactiveSkill", "tools": {"t": {"inputJsonSchema": "{x"}}}, "JSON"),
    ],
)
def test_add_invalid_skill_is_refused(skill: dict[str, Any], match: str) -> None:
    document = ConfigDocument.parse(COMMENTED)
    with pytest.raises(ConfigEditError, match=match):
        document.add_skill("writer", "bad", skill)
    assert document.dumps() == COMMENTED


def test_add_skill_errors() -> None:
    document = ConfigDocument.parse(COMMENTED)
    with pytest.raises(ConfigEditError, match="already has"):
        document.add_skill("lead", "@perstack/base", {"type": "mcpStdioSkill", "command": "npx"})
    with pytest.raises(ConfigEditError, match="No expert"):
        document.add_skill("ghost", "x", {"type": "mcpStdioSkill", "command": "npx"})


def test_add_skill_to_inline_and_dotted_layouts() -> None:
    text = read(FIXTURES / "roundtrip" / "inline_and_dotted.toml")
    skill = {"type": "mcpSseSkill", "endpoint": "https://search.example.com/sse"}
    new = edited(text, lambda d: d.add_skill("dotted-one", "search", skill))
    assert changes(text, new)[0] == []
    assert '[experts.dotted-one.skills."search"]' in new
    assert_valid(new)
    new = edited(text, lambda d: d.add_skill("inline-one", "search", skill))
    assert tomllib.loads(new)["experts"]["inline-one"]["skills"]["search"] == skill
    assert_valid(new)


def test_remove_skill_refuses_base_while_others_remain() -> None:
    document = ConfigDocument.parse(COMMENTED)
    document.add_skill("lead", "time", {"type": "mcpStdioSkill", "command": "uvx", "args": ["x"]})
    with pytest.raises(ConfigEditError, match="Remove the other skills first"):
        document.remove_skill("lead", "@perstack/base")
    document.remove_skill("lead", "time")
    assert document.dumps() == COMMENTED


def test_removing_the_last_skill_removes_the_table_and_its_comment() -> None:
    new = edited(COMMENTED, lambda d: d.remove_skill("lead", "@perstack/base"))
    assert changes(COMMENTED, new) == (
        [
            "# skills of the lead",
            '[experts."lead".skills."@perstack/base"]',
            'type = "mcpStdioSkill"',
            'command = "npx"',
            'packageName = "@perstack/base"',
            "",
        ],
        [],
    )
    assert "skills" not in tomllib.loads(new)["experts"]["lead"]


def test_remove_unknown_skill() -> None:
    with pytest.raises(ConfigEditError, match='has no skill "x"'):
        ConfigDocument.parse(COMMENTED).remove_skill("lead", "x")


def test_set_skill_fields() -> None:
    document = ConfigDocument.parse(COMMENTED)
    document.set_skill_field("lead", "@perstack/base", "pick", ["readTextFile"])
    document.set_skill_field("lead", "@perstack/base", "omit", ["exec"])
    document.set_skill_field("lead", "@perstack/base", "rule", "Be careful.")
    document.set_skill_field("lead", "@perstack/base", "command", "bunx")
    new = document.dumps()
    assert changes(COMMENTED, new) == (
        ['command = "npx"'],
        [
            'rule = "Be careful."',
            'command = "bunx"',
            'pick = ["readTextFile"]',
            'omit = ["exec"]',
        ],
    )
    document.set_skill_field("lead", "@perstack/base", "pick", None)
    document.set_skill_field("lead", "@perstack/base", "omit", None)
    document.set_skill_field("lead", "@perstack/base", "rule", None)
    document.set_skill_field("lead", "@perstack/base", "command", "npx")
    assert document.dumps() == COMMENTED


def test_set_skill_field_validates_that_field() -> None:
    document = ConfigDocument.parse(COMMENTED)
    with pytest.raises(ConfigEditError, match="lazyInit"):
        document.set_skill_field("lead", "@perstack/base", "lazyInit", "yes")
    with pytest.raises(ConfigEditError, match="cannot be changed in place"):
        document.set_skill_field("lead", "@perstack/base", "type", "mcpSseSkill")
    assert document.dumps() == COMMENTED


def test_set_tools_adds_changes_and_removes_tools() -> None:
    document = ConfigDocument.parse(COMMENTED)
    document.add_skill(
        "lead",
        "ask",
        {
            "type": "interactiveSkill",
            "tools": {
                "a": {"inputJsonSchema": '{"type": "object"}'},
                "b": {"inputJsonSchema": '{"type": "object"}'},
            },
        },
    )
    document.set_skill_field(
        "lead",
        "ask",
        "tools",
        {
            "a": {"description": "A.", "inputJsonSchema": '{"type": "object"}'},
            "c": {"inputJsonSchema": '{"type": "object"}'},
        },
    )
    tools = tomllib.loads(document.dumps())["experts"]["lead"]["skills"]["ask"]["tools"]
    assert tools == {
        "a": {"description": "A.", "inputJsonSchema": '{"type": "object"}'},
        "c": {"inputJsonSchema": '{"type": "object"}'},
    }
    assert_valid(document.dumps())
