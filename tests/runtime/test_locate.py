"""The TOML locator: key path → line and column, for every construct of TOML."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.config import locate
from runtime.config.loader import parse_config
from runtime.config.locate import Position, TomlLocator, read_key

CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "configs"
VALID = sorted(CONFIGS.glob("*.toml"))


def _paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if path:
        yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_every_key_of_the_corpus_is_found_on_its_own_line(path: Path) -> None:
    """Each key (and array element) maps to where it starts, on a line that mentions it."""
    text = path.read_text(encoding="utf-8")
    locator = TomlLocator(text)
    source = text.splitlines()
    for key_path in _paths(tomllib.loads(text)):
        where = locator.find(key_path)
        assert where is not None, key_path
        line = source[where.line - 1]
        assert line[where.column - 1] not in " \t,=]}", (key_path, where)  # where it starts
        last = key_path[-1]
        if isinstance(last, str):
            assert last in line[where.column - 1 :], (key_path, where)


def test_windows_line_endings_change_nothing() -> None:
    text = (CONFIGS / "odd_formatting.toml").read_text(encoding="utf-8")
    assert TomlLocator(text.replace("\n", "\r\n")).positions() == TomlLocator(text).positions()


def test_the_rarer_toml_constructs() -> None:
    text = (
        "when = 1979-05-27 07:32:00Z\n"
        '"a \\"quoted\\" key" = 1\n'
        "raw = '''x'''''\n"
        'esc = """a\\"""b"""\n'
        "[[arr]]\n"
        "x = 1\n"
        "[[arr]]\n"
        "[arr.sub]\n"
        "y = [[1, 2], [3]]\n"
    )
    lines = {path: where.line for path, where in TomlLocator(text).positions().items()}
    assert lines[("when",)] == 1
    assert lines[('a "quoted" key',)] == 2
    assert lines[("esc",)] == 4
    assert lines[("arr",)] == 5
    assert lines[("arr", 0, "x")] == 6
    assert lines[("arr", 1)] == 7
    assert lines[("arr", 1, "sub")] == 8
    assert lines[("arr", 1, "sub", "y", 1, 0)] == 9


def test_columns_of_inline_tables_array_items_and_dotted_keys() -> None:
    text = (
        'provider = { providerName = "x", setting = { "é" = 1, b = 2 } }\n'
        "[experts.w]\n"
        "  skills.'s'.type = \"mcpStdioSkill\"\n"
        'delegates = ["a", "b"]\n'
    )
    locator = TomlLocator(text)
    assert locator.find(("provider",)) == Position(1, 1)
    assert locator.find(("provider", "providerName")) == Position(1, 14)
    assert locator.find(("provider", "setting", "é")) == Position(1, 46)
    assert locator.find(("provider", "setting", "b")) == Position(1, 55)  # in characters
    assert locator.find(("experts", "w", "skills")) == Position(3, 3)
    assert locator.find(("experts", "w", "skills", "s", "type")) == Position(3, 3)
    assert locator.find(("experts", "w", "delegates", 1)) == Position(4, 19)


def test_an_explicit_header_wins_over_an_earlier_mention() -> None:
    text = '[experts."a".skills."b"]\ntype = "x"\n\n[experts."a"]\ninstruction = "A"\n'
    locator = TomlLocator(text)
    assert locator.line_of(("experts",)) == 1
    assert locator.line_of(("experts", "a")) == 4
    assert locator.line_of(("experts", "a", "skills")) == 1


def test_missing_keys_fall_back_to_their_table() -> None:
    locator = TomlLocator('model = "m"\n\n  [experts."a"]\ninstruction = "A"\n')
    assert locator.find(("experts", "a", "description")) is None
    assert locator.locate(("experts", "a", "description")) == Position(3, 3)
    assert locator.line_of(("experts", "a", "delegates", 0)) == 3
    assert locator.locate(("provider", "setting")) is None


def test_first_header() -> None:
    assert TomlLocator('model = "m"\n').first_header is None
    found = TomlLocator('model = "m"\n[ provider ]  # c\n[experts.a]\n').first_header
    assert found == ("[ provider ]", Position(2, 1))
    found = TomlLocator("[[x.y]]\n").first_header
    assert found == ("[[x.y]]", Position(1, 1))


@pytest.mark.parametrize(
    "text",
    ["", "[[[", "\x00\x01", 'a = "unterminated', "x = " + "[" * 10_000, "a = 1\n= 2\nb = 3\n"],
)
def test_text_that_does_not_parse_never_raises(text: str) -> None:
    locator = TomlLocator(text)
    assert locator.locate(("a", "b")) in (None, Position(1, 1))
    assert isinstance(locator.positions(), dict)


def test_the_scan_stops_at_an_error_and_keeps_what_came_before() -> None:
    locator = TomlLocator("a = 1\n[t]\nb = 2\nc = = 3\n[u]\nd = 4\n")
    assert locator.find(("a",)) == Position(1, 1)
    assert locator.find(("t", "b")) == Position(3, 1)
    assert locator.find(("u", "d")) is None  # after the error: never a guess


def test_nothing_is_parsed_until_a_line_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[bytes] = []
    real = locate._parse

    def counting(data: bytes) -> Any:
        parsed.append(data)
        return real(data)

    monkeypatch.setattr(locate, "_parse", counting)
    parse_config('model = "clean"\n[experts.a]\ninstruction = "A"\n')
    assert parsed == []
    loaded = parse_config('model = "typo"\nmaxStep = 3\n')
    assert loaded.warnings[0].line == 2
    assert len(parsed) == 1


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ('experts."writer".instruction', ("experts", "writer", "instruction")),
        ("experts . 'a.b' . c", ("experts", "a.b", "c")),
        ('"\\u0041x".y', ("Ax", "y")),
        ('experts."w".delegates[0]', ("experts", "w", "delegates")),
        ("''.x", ("", "x")),
    ],
)
def test_read_key(text: str, parts: tuple[str, ...]) -> None:
    found = read_key(text)
    assert found is not None
    assert found[0] == parts


@pytest.mark.parametrize("text", ["= 1", '"open', '"bad \\escape"', "a.", ""])
def test_read_key_rejects_garbage(text: str) -> None:
    assert read_key(text) is None
