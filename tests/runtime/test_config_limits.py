"""Loading perstack.toml from hostile input: nesting, dotted-key, entry and size limits, and
messages that stay short and safe for a terminal whatever the file holds."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from runtime.config.limits import (
    MAX_CONFIG_BYTES,
    MAX_ENTRIES,
    MAX_KEY_PARTS,
    MAX_NESTING,
    check_limits,
)
from runtime.config.loader import load_config, parse_config
from runtime.config.problems import MAX_LISTED_PROBLEMS, ConfigFileError, ConfigLimitError
from runtime.errors import ConfigError
from tests.runtime.config_helpers import INVALID, VALID


def refusal(text: str) -> str:
    with pytest.raises(ConfigLimitError) as info:
        parse_config(text)
    return str(info.value)


@pytest.mark.parametrize("path", [*VALID, *INVALID], ids=lambda path: path.name)
def test_real_files_are_far_under_the_limits(path: Path) -> None:
    check_limits(path.read_text(encoding="utf-8"))


def test_nesting_up_to_the_limit_loads_and_one_more_level_is_refused() -> None:
    assert MAX_NESTING == 32
    parse_config("x = " + "[" * 32 + "]" * 32 + "\ny = " + "{a = " * 32 + "1" + " }" * 32 + "\n")
    assert refusal("x = " + "[" * 1000 + "]" * 1000) == (
        "perstack.toml:1 x: too deeply nested: over the limit of 32 levels of arrays and inline "
        "tables (at column 37)"
    )
    assert refusal('model = "m"\ny = ' + "{a = " * 33 + "1" + " }" * 33) == (
        "perstack.toml:2 y: too deeply nested: over the limit of 32 levels of arrays and inline "
        "tables (at column 165)"
    )
    assert refusal("x = [\n" + "[\n" * 40).startswith("perstack.toml:33 x: too deeply nested")


def test_dotted_keys_up_to_the_limit_load_and_longer_ones_are_refused() -> None:
    assert MAX_KEY_PARTS == 32
    parse_config(".".join(["a"] * 32) + " = 1\n[" + ".".join(["b"] * 32) + "]\n")
    key = ".".join(["a"] * 20_000)
    assert refusal(f"model = 'm'\n{key} = 1\n") == (
        f"perstack.toml:2 {key[:63]}: too many parts in one dotted key: over the limit of 32 "
        "(at column 64)"
    )
    assert refusal("[[" + key + "]]\n").startswith(
        f"perstack.toml:1 {key[:63]}: too many parts in one dotted key"
    )
    assert refusal("x = { " + key + " = 1 }").startswith("perstack.toml:1 a.a.a.a")


def test_too_many_entries_are_refused() -> None:
    assert MAX_ENTRIES == 10_000
    parse_config("".join(f"k{index} = {index}\n" for index in range(10_000)))
    assert refusal("".join(f"k{index} = {index}\n" for index in range(10_001))) == (
        "perstack.toml:10001: too many entries: over the limit of 10,000 keys, table headers and "
        "array elements (at column 8)"
    )
    assert refusal("x = [" + "1, " * 20_000 + "]").startswith("perstack.toml:1: too many entries")
    assert refusal('[experts."a"]\n' * 20_000).startswith("perstack.toml:10001: too many")


def test_size_up_to_1_mib_loads_and_more_is_refused(tmp_path: Path) -> None:
    at_limit = 'model = "' + "é" * ((MAX_CONFIG_BYTES - 11) // 2) + 'x"\n'
    assert len(at_limit.encode()) == MAX_CONFIG_BYTES
    assert parse_config(at_limit).config.model is not None
    message = (
        "perstack.toml: too large: 1,048,577 bytes, over the limit of 1,048,576 bytes (1 MiB); "
        "perstack.toml holds settings and instructions, keep data in files the experts read"
    )
    assert refusal(at_limit + "#") == message
    (tmp_path / "perstack.toml").write_bytes(b"#" * 3_000_000)
    with pytest.raises(ConfigLimitError, match=r"^perstack.toml: too large: 3,000,000 bytes"):
        load_config(cwd=tmp_path)


def test_brackets_dots_and_equals_in_strings_and_comments_do_not_count() -> None:
    noise = "[" * 100 + "{" * 100 + "." * 100 + "=" * 100 + "," * 100
    text = (
        f"# {noise}\n"
        f'model = "{noise}"  # {noise}\n'
        f"'{noise}' = 1\n"
        f'"{noise}\\"[" = 2\n'
        f'[experts."{noise}"]\n'
        f'instruction = """\n{noise}\n\\"""{noise}\n"""\n'
        f"description = '''{noise}\"\"\"{noise}'''''\n"
        f"tags = [\"{noise}\", '{noise}']\n"
    )
    check_limits(text)
    tomllib.loads(text)  # the text is valid TOML, so the scan saw it as tomllib does


def test_a_huge_string_is_cut_in_messages(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_config('[experts."a"]\ninstruction = "x"\nversion = "' + "9" * 900_000 + '"\n')
    assert str(info.value) == (
        'perstack.toml:3 experts."a".version: must be a semantic version like 1.0.0 (got '
        f"'{'9' * 80}…' (900,000 characters))"
    )
    with pytest.raises(ConfigFileError) as info:
        parse_config('[experts."' + "K" * 500 + '"]\ninstruction = "x"\n')
    assert str(info.value).startswith(
        f'perstack.toml:1 experts."{"K" * 80}…(500 characters)": expert key '
        f"'{'K' * 80}…' (500 characters) is invalid"
    )


def test_control_characters_never_reach_the_terminal() -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_config('[experts."a\\u001b[31m"]\ninstruction = "x"\n')
    assert str(info.value).startswith(r'perstack.toml:1 experts."a\u001b[31m": expert key')
    with pytest.raises(ConfigFileError) as info:
        parse_config('model = "a\x1b[2J"\n')
    assert "\x1b" not in str(info.value)
    assert str(info.value).splitlines()[1:] == [
        '    1 | model = "a\ufffd[2J"',
        "      |           ^",
    ]


def test_a_value_left_out_is_a_syntax_error_not_a_crash() -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_config("model = #oops\n")
    assert str(info.value) == (
        "perstack.toml:1: invalid TOML: Invalid value at column 9\n"
        "    1 | model = #oops\n"
        "      |         ^"
    )


def test_a_long_line_is_shown_around_the_error() -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_config('model = "' + "a" * 500 + '" oops\n')
    message, excerpt, caret = str(info.value).splitlines()
    assert message == (
        "perstack.toml:1: invalid TOML: Expected newline or end of document after a statement "
        "at column 512"
    )
    assert excerpt == "    1 | …" + "a" * 94 + '" oops'
    assert caret.index("^") - caret.index("|") == excerpt.index("o") - excerpt.index("|")


def test_long_problem_lists_are_cut_but_kept_as_data() -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_config("".join(f'[experts."e{index}"]\n' for index in range(60)))
    lines = str(info.value).splitlines()
    assert lines[0] == "perstack.toml has 60 problems:"
    assert len(lines) == 1 + MAX_LISTED_PROBLEMS + 1
    assert lines[-1] == "... and 10 more"
    assert len(info.value.problems) == 60


def test_lone_surrogates_in_text_are_refused() -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_config('model = "x"\nname = "a\udcffb"\n')
    assert str(info.value) == "perstack.toml:2: not valid Unicode text (a lone surrogate)"


def test_a_deeply_nested_json_schema_is_a_config_error() -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_config(
            '[experts."a"]\ninstruction = "x"\n'
            '[experts."a".skills."ask"]\ntype = "interactiveSkill"\n'
            '[experts."a".skills."ask".tools."q"]\ninputJsonSchema = \'' + "[" * 5000 + "'\n"
        )
    assert str(info.value).endswith(
        'experts."a".skills."ask".tools."q".inputJsonSchema: is nested too deeply to be a JSON '
        "Schema"
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "a" * 300,
            f"has a file or directory name of 300 bytes, at most 255 (got '{'a' * 80}…' "
            "(300 characters))",
        ),
        ("a\\u0000b", r"contains a NUL character, which no path can hold (got 'a\x00b')"),
        (
            "d/" * 2100,
            f"is too long for a path: 4,200 bytes, at most 4,096 (got '{'d/' * 40}…' "
            "(4,200 characters))",
        ),
    ],
    ids=["long-name", "nul", "long-path"],
)
def test_env_path_entries_that_cannot_be_paths(entry: str, message: str) -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_config(f'model = "m"\nenvPath = [".env", "{entry}"]\n')
    assert str(info.value) == f"perstack.toml:2 envPath[1]: {message}"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "a" * 300,
            f"Given config path '{'a' * 200}…' (300 characters) cannot be used: File name too long",
        ),
        ("a\x00b", r"Given config path 'a\x00b' contains a NUL character"),
        (
            "~nosuchuser-perstack/perstack.toml",
            'Given config path "~nosuchuser-perstack/perstack.toml" starts with ~ but names no '
            "user of this system",
        ),
        (
            "https://[::1/perstack.toml",
            'Config URL "https://[::1/perstack.toml" is not allowed: only '
            "https://raw.githubusercontent.com/... URLs can be loaded. Download the file and pass "
            "its local path to --config instead.",
        ),
    ],
    ids=["long", "nul", "unknown-user", "bad-url"],
)
def test_config_paths_that_cannot_be_paths(config: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(config, cwd=tmp_path)
    assert str(info.value) == message
