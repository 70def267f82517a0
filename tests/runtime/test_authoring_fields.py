"""ConfigDocument: setting expert fields and top-level keys changes only the lines asked for,
keeps comments and string styles, writes any string as valid TOML and checks field types."""

from __future__ import annotations

import tomllib

import pytest

from runtime.config.authoring import ConfigDocument, ConfigEditError
from tests.runtime.authoring_helpers import COMMENTED, FIXTURES, changes, edited, read


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
