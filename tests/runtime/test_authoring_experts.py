"""ConfigDocument: adding, renaming and deleting experts, with delegates kept in step and
comments staying with the tables they describe."""

from __future__ import annotations

import tomllib

import pytest

from runtime.config.authoring import ConfigDocument, ConfigEditError
from runtime.errors import ConfigError
from tests.runtime.authoring_helpers import (
    COMMENTED,
    FIXTURES,
    PARSEABLE,
    assert_valid,
    changes,
    edited,
    read,
)


def test_add_expert_appends_after_a_blank_line() -> None:
    new = edited(
        COMMENTED,
        lambda d: d.add_expert(
            "@docs/editor",
            instruction="Edit the text.\nKeep the meaning.\n",
            description="Edits.",
            delegates=["writer"],
        ),
    )
    assert new.startswith(COMMENTED)
    assert new[len(COMMENTED) :] == (
        "\n"
        '[experts."@docs/editor"]\n'
        'description = "Edits."\n'
        'instruction = """\n'
        "Edit the text.\n"
        "Keep the meaning.\n"
        '"""\n'
        'delegates = ["writer"]\n'
    )
    assert_valid(new)


def test_add_expert_before_tables_that_follow_the_experts() -> None:
    text = (
        '[experts."a"]\ninstruction = "A."\n\n'
        '# Provider comes last.\n[provider]\nproviderName = "openai"\n'
    )
    new = edited(text, lambda d: d.add_expert("b", instruction="B."))
    assert new == (
        '[experts."a"]\ninstruction = "A."\n\n[experts."b"]\ninstruction = "B."\n\n'
        '# Provider comes last.\n[provider]\nproviderName = "openai"\n'
    )


def test_add_expert_to_an_empty_file_and_without_final_newline() -> None:
    assert edited("", lambda d: d.add_expert("a", instruction="A.")) == (
        '[experts."a"]\ninstruction = "A."\n'
    )
    text = 'model = "x"'
    assert edited(text, lambda d: d.add_expert("a", instruction="A.")) == (
        'model = "x"\n\n[experts."a"]\ninstruction = "A."\n'
    )


@pytest.mark.parametrize("key", ["Writer", "writer.v2", "writer@1.0.0", "", "a b", "@/x"])
def test_invalid_expert_keys_are_refused_with_the_rule(key: str) -> None:
    document = ConfigDocument.parse(COMMENTED)
    with pytest.raises(ConfigEditError, match="lowercase letters") as caught:
        document.add_expert(key, instruction="x")
    assert isinstance(caught.value, ConfigError)
    assert isinstance(caught.value, ValueError)
    assert document.dumps() == COMMENTED


def test_duplicate_expert_is_refused() -> None:
    with pytest.raises(ConfigEditError, match="already defined"):
        ConfigDocument.parse(COMMENTED).add_expert("writer", instruction="x")


def test_rename_keeps_comments_subtables_and_updates_delegates() -> None:
    document = ConfigDocument.parse(COMMENTED)
    document.rename_expert("reviewer", "@docs/reviewer")
    document.rename_expert("lead", "coordinator")
    new = document.dumps()
    assert changes(COMMENTED, new) == (
        [
            '[experts."lead"]',
            'delegates = ["writer", "reviewer@1.0.0"] # both local',
            '[experts."lead".skills."@perstack/base"]',
            '[experts."reviewer"]',
        ],
        [
            '[experts."coordinator"]',
            'delegates = ["writer", "@docs/reviewer@1.0.0"] # both local',
            '[experts."coordinator".skills."@perstack/base"]',
            '[experts."@docs/reviewer"]',
        ],
    )
    assert document.expert_keys() == ["coordinator", "writer", "@docs/reviewer"]
    assert_valid(new)


def test_rename_updates_multiline_delegates_and_bare_keys() -> None:
    text = read(FIXTURES / "configs" / "odd_formatting.toml")
    new = edited(text, lambda d: d.rename_expert("coder", "dev"))
    assert changes(text, new) == (
        ['    "coder",   # trailing comment', '[ experts . "coder" ]'],
        ['    "dev",   # trailing comment', '[ experts . "dev" ]'],
    )
    new = edited(text, lambda d: d.rename_expert("planner", "@team/planner"))
    assert changes(text, new) == (
        ["  [experts.planner]   # indented header, bare key"],
        ['  [experts."@team/planner"]   # indented header, bare key'],
    )
    assert_valid(new)


def test_rename_errors() -> None:
    document = ConfigDocument.parse(COMMENTED)
    with pytest.raises(ConfigEditError, match="already defined"):
        document.rename_expert("lead", "writer")
    with pytest.raises(ConfigEditError, match="No expert"):
        document.rename_expert("nobody", "x")
    with pytest.raises(ConfigEditError, match="lowercase"):
        document.rename_expert("lead", "Lead")
    document.rename_expert("lead", "lead")
    assert document.dumps() == COMMENTED


def test_delete_removes_table_subtables_comment_and_references() -> None:
    document = ConfigDocument.parse(COMMENTED)
    assert document.delete_expert("writer") == ["lead", "reviewer"]
    new = document.dumps()
    removed, added = changes(COMMENTED, new)
    assert removed == [
        'delegates = ["writer", "reviewer@1.0.0"] # both local',
        "# The writer.",
        '[experts."writer"]',
        'instruction = "Write." # short',
        "",
        '  "writer", # asks the writer to fix things',
    ]
    assert added == ['delegates = ["reviewer@1.0.0"] # both local']
    # The comment of the next table stays with it.
    assert '\n\n# The reviewer, last.\n[experts."reviewer"]' in new
    assert_valid(new)


def test_delete_expert_with_skills_keeps_the_next_comment() -> None:
    new = edited(COMMENTED, lambda d: d.delete_expert("lead"))
    assert new == (
        "# Team file.\n"
        'model = "claude-sonnet-4-5" # default model\n\n'
        '# Provider settings.\n[provider]\nproviderName = "anthropic"\n\n'
        '# The writer.\n[experts."writer"]\ninstruction = "Write." # short\n\n'
        "# The reviewer, last.\n[experts.\"reviewer\"]\ninstruction = '''\nReview.\n'''\n"
        'delegates = [\n  "writer", # asks the writer to fix things\n]\n'
        "# trailing comment of the file\n"
    )


def test_delete_last_expert_leaves_no_trailing_blank_lines() -> None:
    new = edited(COMMENTED, lambda d: d.delete_expert("reviewer"))
    assert new.endswith('[experts."writer"]\ninstruction = "Write." # short\n')
    assert 'delegates = ["writer"] # both local' in new


def test_delete_every_expert_of_the_corpus_leaves_the_rest() -> None:
    for path in PARSEABLE:
        text = read(path)
        document = ConfigDocument.parse(text)
        if not document.expert_keys():
            continue
        for key in document.expert_keys():
            document.delete_expert(key)
        data = tomllib.loads(document.dumps())
        original = tomllib.loads(text)
        original.pop("experts")
        data.pop("experts", None)
        assert data == original, path.name


def test_delete_unknown_expert() -> None:
    with pytest.raises(ConfigEditError, match='No expert "ghost"'):
        ConfigDocument.parse(COMMENTED).delete_expert("ghost")
