"""ConfigDocument: edits through tomlkit that change only what was asked; the file helpers."""

from __future__ import annotations

import difflib
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest

from runtime.config.authoring import (
    MINIMAL_CONFIG,
    ConfigDocument,
    ConfigEditError,
    backup_config,
    minimal_config,
    save_config,
    unified_diff,
)
from runtime.config.diagnostics import diagnose
from runtime.config.loader import parse_config
from runtime.config.problems import ConfigFileError
from runtime.config.schema import EXPERT_NAME_RE
from runtime.errors import ConfigError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CORPUS = sorted(
    [
        *(FIXTURES / "configs").glob("*.toml"),
        *(FIXTURES / "configs" / "invalid").glob("*.toml"),
        *(FIXTURES / "roundtrip").glob("*.toml"),
    ]
)
PARSEABLE = [path for path in CORPUS if path.name != "syntax_error.toml"]


def read(path: Path) -> str:
    # newline="": keep CRLF as it is on disk.
    with path.open(encoding="utf-8", newline="") as handle:
        return handle.read()


def changes(old: str, new: str) -> tuple[list[str], list[str]]:
    """(lines removed, lines added), as a line diff sees them."""
    removed, added = [], []
    for line in difflib.ndiff(old.splitlines(), new.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def edited(text: str, change: Any) -> str:
    document = ConfigDocument.parse(text)
    change(document)
    return document.dumps()


def assert_valid(text: str) -> None:
    """The result loads with the runtime's loader, without errors."""
    parse_config(text)
    assert [d for d in diagnose(text) if d.severity == "error"] == []


COMMENTED = """\
# Team file.
model = "claude-sonnet-4-5" # default model

# Provider settings.
[provider]
providerName = "anthropic"

# The lead: plans and delegates.
# Second comment line.
[experts."lead"]
description = "Plans the work." # shown to nobody
instruction = \"\"\"
Plan the work.
Delegate it.
\"\"\"
delegates = ["writer", "reviewer@1.0.0"] # both local

# skills of the lead
[experts."lead".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"

# The writer.
[experts."writer"]
instruction = "Write." # short

# The reviewer, last.
[experts."reviewer"]
instruction = '''
Review.
'''
delegates = [
  "writer", # asks the writer to fix things
]
# trailing comment of the file
"""


# Round trip ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PARSEABLE, ids=lambda path: path.name)
def test_corpus_round_trips_byte_for_byte(path: Path) -> None:
    text = read(path)
    document = ConfigDocument.parse(text)
    assert document.dumps() == text
    # The tomlkit tree the edits use renders the same bytes too.
    assert document._document.as_string() == text


@pytest.mark.parametrize("path", PARSEABLE, ids=lambda path: path.name)
def test_corpus_edit_then_undo_is_identity(path: Path) -> None:
    text = read(path)
    document = ConfigDocument.parse(text)
    for key in document.expert_keys():
        absent = [f for f in ("description", "version", "tags") if f not in document.expert(key)]
        if not absent:
            continue
        value: Any = ["x"] if absent[0] == "tags" else "2.0.0"
        document.set_expert_field(key, absent[0], value)
        assert document.expert(key)[absent[0]] == value
        document.set_expert_field(key, absent[0], None)
    assert document.dumps() == text


@pytest.mark.parametrize(
    "variant",
    ["crlf", "no-final-newline", "trailing-whitespace", "tabs"],
)
def test_line_ending_and_whitespace_variants_round_trip_and_edit(variant: str) -> None:
    text = COMMENTED
    if variant == "crlf":
        text = text.replace("\n", "\r\n")
    elif variant == "no-final-newline":
        text = text.rstrip("\n")
    elif variant == "trailing-whitespace":
        text = text.replace("\n", "  \n")
    else:
        text = text.replace(" = ", "\t=\t")
    document = ConfigDocument.parse(text)
    assert document.dumps() == text
    document.set_expert_field("writer", "description", "Writes.")
    document.add_expert("editor", instruction="Edit.\nCarefully.\n")
    result = document.dumps()
    assert_valid(result)
    if variant == "crlf":
        assert "\n" not in result.replace("\r\n", "")
    assert tomllib.loads(result)["experts"]["editor"]["instruction"] == "Edit.\nCarefully.\n"


# Reading -------------------------------------------------------------------------------------


def test_expert_keys_and_snapshot() -> None:
    document = ConfigDocument.parse(COMMENTED)
    assert document.expert_keys() == ["lead", "writer", "reviewer"]
    lead = document.expert("lead")
    assert lead["delegates"] == ["writer", "reviewer@1.0.0"]
    lead["delegates"].append("x")  # a copy: the document does not change
    assert document.expert("lead")["delegates"] == ["writer", "reviewer@1.0.0"]
    with pytest.raises(KeyError):
        document.expert("nobody")


def test_parse_error_names_the_line() -> None:
    with pytest.raises(ConfigFileError) as caught:
        ConfigDocument.parse(read(FIXTURES / "configs" / "invalid" / "syntax_error.toml"))
    assert caught.value.problems[0].line == 5
    assert isinstance(caught.value, ConfigError)


def test_parse_accepts_schema_errors() -> None:
    text = read(FIXTURES / "configs" / "invalid" / "missing_instruction.toml")
    document = ConfigDocument.parse(text)
    document.set_expert_field("writer", "instruction", "Write the report.")
    assert_valid(document.dumps())


# Minimal diffs -------------------------------------------------------------------------------


def test_set_single_line_field_keeps_its_comment() -> None:
    new = edited(COMMENTED, lambda d: d.set_expert_field("writer", "instruction", "Write well."))
    assert changes(COMMENTED, new) == (
        ['instruction = "Write." # short'],
        ['instruction = "Write well." # short'],
    )


def test_set_multiline_instruction_keeps_triple_quotes() -> None:
    new = edited(
        COMMENTED,
        lambda d: d.set_expert_field(
            "lead", "instruction", "Plan the work.\nDelegate all of it.\n"
        ),
    )
    assert changes(COMMENTED, new) == (["Delegate it."], ["Delegate all of it."])
    assert tomllib.loads(new)["experts"]["lead"]["instruction"] == (
        "Plan the work.\nDelegate all of it.\n"
    )


def test_set_literal_multiline_keeps_literal_style() -> None:
    new = edited(COMMENTED, lambda d: d.set_expert_field("reviewer", "instruction", "Check.\n"))
    assert changes(COMMENTED, new) == (["Review."], ["Check."])


def test_literal_multiline_falls_back_to_basic_when_it_cannot_hold_the_text() -> None:
    value = "Say '''no'''.\n"
    new = edited(COMMENTED, lambda d: d.set_expert_field("reviewer", "instruction", value))
    assert tomllib.loads(new)["experts"]["reviewer"]["instruction"] == value
    assert "instruction = \"\"\"\nSay '''no'''.\n\"\"\"" in new


def test_one_line_value_becomes_multiline_string_when_it_gains_lines() -> None:
    new = edited(
        COMMENTED, lambda d: d.set_expert_field("writer", "instruction", "Write.\nThen stop.\n")
    )
    assert changes(COMMENTED, new) == (
        ['instruction = "Write." # short'],
        ['instruction = """', "Write.", "Then stop.", '""" # short'],
    )


def test_add_field_goes_before_instruction_and_below_nothing_else() -> None:
    new = edited(COMMENTED, lambda d: d.set_expert_field("writer", "description", "Writes."))
    removed, added = changes(COMMENTED, new)
    assert (removed, added) == ([], ['description = "Writes."'])
    assert '[experts."writer"]\ndescription = "Writes."\ninstruction = "Write." # short' in new


def test_add_field_after_last_key_not_under_next_headers_comment() -> None:
    new = edited(COMMENTED, lambda d: d.set_expert_field("lead", "tags", ["planning"]))
    assert changes(COMMENTED, new) == ([], ['tags = ["planning"]'])
    assert 'delegates = ["writer", "reviewer@1.0.0"] # both local\ntags = ["planning"]\n' in new


def test_remove_field() -> None:
    new = edited(COMMENTED, lambda d: d.set_expert_field("lead", "description", None))
    assert changes(COMMENTED, new) == (['description = "Plans the work." # shown to nobody'], [])


def test_set_delegates_changes_only_that_line() -> None:
    new = edited(
        COMMENTED, lambda d: d.set_expert_field("lead", "delegates", ["writer", "reviewer"])
    )
    assert changes(COMMENTED, new) == (
        ['delegates = ["writer", "reviewer@1.0.0"] # both local'],
        ['delegates = ["writer", "reviewer"] # both local'],
    )


def test_multiline_array_edits_touch_only_changed_elements() -> None:
    new = edited(
        COMMENTED, lambda d: d.set_expert_field("reviewer", "delegates", ["writer", "lead"])
    )
    assert changes(COMMENTED, new) == ([], ['  "lead",'])


def test_set_top_level_replaces_in_place() -> None:
    new = edited(COMMENTED, lambda d: d.set_top_level("model", "gpt-4.1"))
    assert changes(COMMENTED, new) == (
        ['model = "claude-sonnet-4-5" # default model'],
        ['model = "gpt-4.1" # default model'],
    )


def test_new_top_level_key_goes_before_the_first_table() -> None:
    new = edited(COMMENTED, lambda d: d.set_top_level("maxSteps", 30))
    assert changes(COMMENTED, new) == ([], ["maxSteps = 30"])
    assert new.startswith(
        '# Team file.\nmodel = "claude-sonnet-4-5" # default model\nmaxSteps = 30\n'
    )


def test_env_path_is_top_level_even_when_provider_comes_first() -> None:
    text = read(FIXTURES / "configs" / "envpath_after_provider.toml")
    new = edited(text, lambda d: d.set_top_level("envPath", [".env.test"]))
    assert changes(text, new) == ([], ['envPath = [".env.test"]'])
    assert tomllib.loads(new)["envPath"] == [".env.test"]


def test_top_level_key_in_a_file_without_top_level_keys() -> None:
    text = '# A file.\n\n# The expert.\n[experts."a"]\ninstruction = "A."\n'
    new = edited(text, lambda d: d.set_top_level("model", "gpt-4.1"))
    assert new == (
        '# A file.\n\nmodel = "gpt-4.1"\n\n# The expert.\n[experts."a"]\ninstruction = "A."\n'
    )


def test_remove_top_level_key_and_unknown_field() -> None:
    new = edited(COMMENTED, lambda d: d.set_top_level("model", None))
    assert changes(COMMENTED, new) == (['model = "claude-sonnet-4-5" # default model'], [])
    with pytest.raises(ConfigEditError, match="not a top-level setting"):
        ConfigDocument.parse(COMMENTED).set_top_level("experts", "x")


# Experts -------------------------------------------------------------------------------------


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


# Strings -------------------------------------------------------------------------------------


TRICKY = [
    'He said "hi".\n',
    'Three quotes: """ in the middle.\n',
    'Ends with a quote"',
    'Ends with two""',
    'Ends with three"""',
    "Backslashes: C:\\path\\to\\file and \\n literally\n",
    "Tabs\tand unicode é 日本 🚀\n",
    "\nStarts with a blank line\n",
    "No trailing newline\nsecond line",
    "A control char \x01 and DEL \x7f\n",
    "Carriage\rreturn\n",
    "Windows\r\nline\r\n",
    "''' literal delimiters '''\n",
    '""""""\n',
    "\\",
    "",
]


@pytest.mark.parametrize("value", TRICKY)
def test_multiline_values_make_valid_toml(value: str) -> None:
    new = edited(COMMENTED, lambda d: d.set_expert_field("lead", "instruction", value))
    assert tomllib.loads(new)["experts"]["lead"]["instruction"] == value
    if "\n" in value and "\r" not in value:
        assert 'instruction = """\n' in new


@pytest.mark.parametrize("value", TRICKY)
def test_tricky_values_everywhere(value: str) -> None:
    document = ConfigDocument.parse(COMMENTED)
    document.set_expert_field("writer", "instruction", value)
    document.set_expert_field("reviewer", "instruction", value)
    document.add_expert("new", instruction=value, description=value.replace("\n", " "))
    data = tomllib.loads(document.dumps())["experts"]
    assert data["writer"]["instruction"] == value
    assert data["reviewer"]["instruction"] == value
    assert data["new"]["instruction"] == value


def test_single_line_value_in_literal_string_stays_literal() -> None:
    text = "[experts.\"a\"]\ninstruction = 'Use C:\\temp'\n"
    new = edited(text, lambda d: d.set_expert_field("a", "instruction", "Use D:\\temp"))
    assert new == "[experts.\"a\"]\ninstruction = 'Use D:\\temp'\n"


def test_field_type_is_checked() -> None:
    document = ConfigDocument.parse(COMMENTED)
    with pytest.raises(ConfigEditError, match="must be a list of strings"):
        document.set_expert_field("lead", "delegates", "writer")  # type: ignore[arg-type]
    with pytest.raises(ConfigEditError, match="must be a string"):
        document.set_expert_field("lead", "instruction", ["x"])
    with pytest.raises(ConfigEditError, match="use one of"):
        document.set_expert_field("lead", "skills", "x")
    assert document.dumps() == COMMENTED


# Skills --------------------------------------------------------------------------------------


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


# Merge ---------------------------------------------------------------------------------------


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
    with pytest.raises(ConfigEditError, match="@perstack/base"):
        document.merge_expert(
            "bad", {"instruction": "x", "skills": {"t": {"type": "mcpStdioSkill", "command": "x"}}}
        )
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


# Refused edits leave the document unchanged ---------------------------------------------------


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


# Files ---------------------------------------------------------------------------------------


def test_save_config_is_atomic_and_keeps_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "perstack.toml"
    path.write_text("old\n")
    path.chmod(0o640)
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(source: str, target: Path) -> None:
        replaced.append((str(source), str(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    save_config(path, "new\r\n")
    assert path.read_bytes() == b"new\r\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    [(source, target)] = replaced
    assert Path(source).parent == tmp_path  # the temp file is in the same directory
    assert target == str(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["perstack.toml"]


def test_save_config_skips_unchanged_content(tmp_path: Path) -> None:
    path = tmp_path / "perstack.toml"
    path.write_text(COMMENTED)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    save_config(path, ConfigDocument.parse(COMMENTED).dumps())
    assert path.stat().st_mtime_ns == 1_000_000_000


def test_save_config_new_file_and_symlink(tmp_path: Path) -> None:
    path = tmp_path / "perstack.toml"
    save_config(path, "a\n")
    assert path.read_text() == "a\n"
    link = tmp_path / "link.toml"
    link.symlink_to(path)
    save_config(link, "b\n")
    assert link.is_symlink()
    assert path.read_text() == "b\n"


def test_save_config_failure_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot write"):
        save_config(tmp_path / "missing" / "perstack.toml", "x")


def test_backup_config_picks_a_free_name(tmp_path: Path) -> None:
    path = tmp_path / "perstack.toml"
    path.write_text("one\n")
    first = backup_config(path)
    path.write_text("two\n")
    second = backup_config(path)
    assert (first.name, second.name) == ("perstack.toml.bak", "perstack.toml.bak.1")
    assert (first.read_text(), second.read_text()) == ("one\n", "two\n")
    with pytest.raises(ConfigError):
        backup_config(tmp_path / "nothing.toml")


def test_minimal_config_is_valid_and_editable() -> None:
    assert diagnose(MINIMAL_CONFIG) == []
    assert ConfigDocument.parse(MINIMAL_CONFIG).expert_keys() == ["my-expert"]
    scoped = minimal_config("@team/helper")
    assert diagnose(scoped) == []
    assert ConfigDocument.parse(scoped).expert_keys() == ["@team/helper"]
    new = edited(MINIMAL_CONFIG, lambda d: d.set_top_level("model", "gpt-4.1"))
    assert_valid(new)
    with pytest.raises(ConfigEditError):
        minimal_config("Not Valid")


def test_unified_diff() -> None:
    assert unified_diff("a\n", "a\n") == ""
    diff = unified_diff("a\nb\n", "a\nc", label="perstack.toml")
    assert diff.splitlines() == [
        "--- a/perstack.toml",
        "+++ b/perstack.toml",
        "@@ -1,2 +1,2 @@",
        " a",
        "-b",
        "+c",
        "\\ No newline at end of file",
    ]


# Unusual layouts ------------------------------------------------------------------------------

OUT_OF_ORDER = """\
# The lead.
[experts."a"]
instruction = "A."
delegates = ["b"]

# provider in between
[provider]
providerName = "openai"

# a's skills, later
[experts."a".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"

[experts."b"]
instruction = "B."
"""

DOTTED = """\
model = "x"
experts.a.instruction = "A."
experts.a.delegates = ["b"]
experts.b = { instruction = "B." }

[provider]
providerName = "x"
"""


def test_rename_expert_split_across_the_file() -> None:
    new = edited(OUT_OF_ORDER, lambda d: d.rename_expert("a", "x"))
    assert changes(OUT_OF_ORDER, new) == (
        ['[experts."a"]', '[experts."a".skills."@perstack/base"]'],
        ['[experts."x"]', '[experts."x".skills."@perstack/base"]'],
    )


def test_delete_expert_split_across_the_file() -> None:
    new = edited(OUT_OF_ORDER, lambda d: d.delete_expert("a"))
    assert new == (
        '# provider in between\n[provider]\nproviderName = "openai"\n\n'
        '[experts."b"]\ninstruction = "B."\n'
    )


def test_add_skill_to_expert_split_across_the_file() -> None:
    skill = {"type": "mcpSseSkill", "endpoint": "https://s.example.com/sse"}
    new = edited(OUT_OF_ORDER, lambda d: d.add_skill("a", "s", skill))
    anchor = 'command = "npx"\n'
    block = (
        '\n[experts."a".skills."s"]\ntype = "mcpSseSkill"\nendpoint = "https://s.example.com/sse"\n'
    )
    assert new == OUT_OF_ORDER.replace(anchor, anchor + block)


def test_experts_written_with_dotted_keys_and_inline_tables() -> None:
    assert changes(DOTTED, edited(DOTTED, lambda d: d.rename_expert("a", "x"))) == (
        ['experts.a.instruction = "A."', 'experts.a.delegates = ["b"]'],
        ['experts.x.instruction = "A."', 'experts.x.delegates = ["b"]'],
    )
    assert changes(DOTTED, edited(DOTTED, lambda d: d.delete_expert("b"))) == (
        ['experts.a.delegates = ["b"]', 'experts.b = { instruction = "B." }'],
        ["experts.a.delegates = []"],
    )
    assert changes(
        DOTTED, edited(DOTTED, lambda d: d.set_expert_field("b", "description", "B!"))
    ) == (
        ['experts.b = { instruction = "B." }'],
        ['experts.b = { instruction = "B.", description = "B!" }'],
    )
    assert changes(
        DOTTED, edited(DOTTED, lambda d: d.set_expert_field("a", "description", "A!"))
    ) == ([], ['experts.a.description = "A!"'])


def test_every_operation_on_every_corpus_expert_keeps_the_rest() -> None:
    """A smoke test over the corpus: each edit is verified by the document itself."""
    skill = {"type": "mcpSseSkill", "endpoint": "https://s.example.com/sse"}
    for path in PARSEABLE:
        text = read(path)
        for key in ConfigDocument.parse(text).expert_keys():
            document = ConfigDocument.parse(text)
            document.set_expert_field(key, "instruction", "New\ntext\n")
            document.add_skill(key, "zz-search", skill)
            document.remove_skill(key, "zz-search")
            if EXPERT_NAME_RE.match(key):
                document.rename_expert(key, "zz-renamed")
                document.rename_expert("zz-renamed", key)
            result = document.dumps()
            data = tomllib.loads(result)
            assert data["experts"][key]["instruction"] == "New\ntext\n", path.name
            if "\r\n" in text:  # a CRLF file stays CRLF, new lines included
                assert "\n" not in result.replace("\r\n", ""), path.name


def test_rename_an_expert_that_delegates_to_itself() -> None:
    text = '[experts.a]\ninstruction = "A."\ndelegates = ["a", "b"]\n'
    assert edited(text, lambda d: d.rename_expert("a", "c")) == (
        '[experts.c]\ninstruction = "A."\ndelegates = ["c", "b"]\n'
    )


@pytest.mark.parametrize(
    "text",
    ["x = " + "[" * 1000 + "]" * 1000 + "\n", ".".join(["a"] * 20000) + " = 1\n"],
    ids=["deep-arrays", "deep-dotted-key"],
)
def test_a_document_over_the_limits_is_a_config_error_not_a_crash(text: str) -> None:
    # The studio reparses on every save: this must be as safe as loading the file to run it.
    with pytest.raises(ConfigError, match="perstack.toml:1"):
        ConfigDocument.parse(text)
