"""ConfigDocument: every file of the corpus round-trips byte for byte, whatever its line
endings and whitespace, and reading a document neither changes it nor needs it valid."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from runtime.config.authoring import ConfigDocument
from runtime.config.problems import ConfigFileError
from runtime.errors import ConfigError
from tests.runtime.authoring_helpers import COMMENTED, FIXTURES, PARSEABLE, assert_valid, read


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
