"""The studio's pure helpers: finding the file, where keys are, the team outline, edits."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.edits import (
    ExpertFields,
    SkillFields,
    apply_expert,
    apply_skill,
    edit_text,
    format_headers,
    join_args,
    parse_headers,
    split_args,
    split_list,
)
from studio.session import changed_lines, key_parts, locate_config, outline_of
from tests.studio.helpers import CONFIGS

CORPUS = sorted(CONFIGS.glob("*.toml"))


def test_locate_config(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text("")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert locate_config(None, deep) == tmp_path / "perstack.toml"
    assert locate_config("other.toml", deep) == deep / "other.toml"
    assert locate_config("a", tmp_path) == tmp_path / "a" / "perstack.toml"


def test_locate_config_offers_the_working_directory(tmp_path: Path) -> None:
    assert locate_config(None, tmp_path) == tmp_path / "perstack.toml"


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ('experts."writer".instruction', ("experts", "writer", "instruction")),
        ("experts . 'a.b' . c", ("experts", "a.b", "c")),
        ('"\\u0041x".y', ("Ax", "y")),
        ('experts."w".delegates[0]', ("experts", "w", "delegates")),
    ],
)
def test_dotted_keys(text: str, parts: tuple[str, ...]) -> None:
    assert key_parts(text) == parts


def test_key_parts_of_garbage_is_the_text() -> None:
    assert key_parts("= 1") == ("= 1",)
    assert key_parts('"open') == ('"open',)


def test_outline_lines_on_odd_formatting() -> None:
    outline = outline_of((CONFIGS / "odd_formatting.toml").read_text())
    assert outline is not None
    assert outline.model_line == 3
    # The fake header inside the multi-line string is not a table.
    assert outline.expert_keys == ("planner", "coder", "reviewer")
    planner, coder, reviewer = outline.experts
    assert planner.line == 10
    assert [(skill.name, skill.line) for skill in planner.skills] == [
        ("@perstack/base", 28),
        ("shell", 29),
    ]
    assert coder.line == 33
    assert reviewer.line == 39
    assert [(skill.name, skill.line) for skill in reviewer.skills] == [("@perstack/base", 41)]


def test_outline_of_the_team() -> None:
    outline = outline_of((CONFIGS / "team.toml").read_text())
    assert outline is not None
    assert outline.model == "claude-sonnet-4-5"
    assert outline.model_line == 2
    level = outline.expert("@ai-gaming/level-designer")
    assert level is not None
    assert level.line == 28
    assert level.version == "0.3.1"
    (base,) = level.skills
    assert (base.name, base.type, len(base.pick), base.line) == (
        "@perstack/base",
        "mcpStdioSkill",
        3,
        33,
    )


def test_outline_of_invalid_toml_is_none() -> None:
    assert outline_of((CONFIGS / "invalid" / "syntax_error.toml").read_text()) is None


def test_outline_tolerates_schema_errors() -> None:
    outline = outline_of((CONFIGS / "invalid" / "many_problems.toml").read_text())
    assert outline is not None
    assert outline.model is None  # model = 4 is not a string
    assert outline.expert_keys == ("writer", "Bad Key")


def test_changed_lines() -> None:
    assert changed_lines("a\nb\nc\n", "a\nB\nc\n") == (1, 2, 2)
    assert changed_lines("a\n", "a\nb\n") == (1, 1, 2)
    assert changed_lines("a\nb", "a\nb\n") == (1, 2, 2)
    assert changed_lines("x\n", "x\n") == (1, 1, 1)


def test_form_value_helpers() -> None:
    assert split_list(" a, b  c,,") == ["a", "b", "c"]
    assert split_args(join_args(["-y", "pkg name"])) == ["-y", "pkg name"]
    headers = {"Authorization": "Bearer ${T}", "X-Team": "games"}
    assert parse_headers(format_headers(headers)) == headers
    with pytest.raises(ValueError, match="Name: value"):
        parse_headers("no colon here")


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: path.name)
def test_unchanged_forms_leave_the_file_byte_identical(path: Path) -> None:
    text = path.read_text()

    def resubmit_every_form(document) -> None:  # type: ignore[no-untyped-def]
        for key in document.expert_keys():
            table = document.expert(key)
            fields = ExpertFields.from_table(key, table)
            apply_expert(document, fields, fields)
            for name, skill in (table.get("skills") or {}).items():
                skill_fields = SkillFields.from_table(name, skill)
                apply_skill(document, key, skill_fields, skill_fields)

    assert edit_text(text, resubmit_every_form)[0] == text


def test_one_field_changes_one_line() -> None:
    text = (CONFIGS / "team.toml").read_text()

    def change(document) -> None:  # type: ignore[no-untyped-def]
        original = ExpertFields.from_table("story-writer", document.expert("story-writer"))
        apply_expert(
            document,
            ExpertFields(**{**original.__dict__, "description": "Writes the lore."}),
            original,
        )

    new = edit_text(text, change)[0]
    old_lines, new_lines = text.splitlines(), new.splitlines()
    assert len(old_lines) == len(new_lines)
    assert [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b] == [
        ('description = "Writes the story and dialogue."', 'description = "Writes the lore."')
    ]
