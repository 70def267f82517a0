"""Loading perstack.toml: invalid files give one exact error listing every problem (schema
problems, TOML syntax with hints, encodings), with the problems and warnings kept as data."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.config import loader as config_loader
from runtime.config.loader import load_config, parse_config
from runtime.config.problems import ConfigFileError, ConfigProblem
from runtime.errors import ConfigError
from tests.runtime.config_helpers import INVALID, error_of

EXPECTED_ERRORS = {
    "missing_instruction.toml": 'perstack.toml:6 experts."writer".instruction: field required',
    "instruction_typo.toml": (
        'perstack.toml:1 experts."writer".instruction: field required '
        "(found 'instrucion' on line 3: did you mean instruction?)"
    ),
    "bad_expert_key.toml": (
        "perstack.toml has 2 problems:\n"
        "perstack.toml:1 experts.\"Writer.v2\": expert key 'Writer.v2' is invalid: use lowercase "
        "letters, digits, '-' and '_', optionally prefixed by @scope/ (no dots, no @version)\n"
        "perstack.toml:4 experts.\"editor@1.0.0\": expert key 'editor@1.0.0' is invalid: use "
        "lowercase letters, digits, '-' and '_', optionally prefixed by @scope/ "
        "(no dots, no @version)"
    ),
    "bad_version.toml": (
        "perstack.toml has 2 problems:\n"
        'perstack.toml:2 experts."writer".version: must be a semantic version like 1.0.0 '
        "(got '1.0')\n"
        "perstack.toml:4 experts.\"writer\".tags: 'Docs' is not a valid tag: use lowercase "
        "letters, digits, '-' and '_'"
    ),
    "unknown_skill_type.toml": (
        "perstack.toml has 2 problems:\n"
        'perstack.toml:10 experts."writer".skills."search".type: unknown skill type '
        "'mcpSSESkill': use one of 'mcpStdioSkill', 'mcpSseSkill', 'mcpStreamableHttpSkill' or "
        "'interactiveSkill' (did you mean 'mcpSseSkill'?)\n"
        'perstack.toml:13 experts."writer".skills."notes".type: field required (the skill type: '
        "one of 'mcpStdioSkill', 'mcpSseSkill', 'mcpStreamableHttpSkill' or 'interactiveSkill')"
    ),
    "http_base_url.toml": (
        "perstack.toml:6 provider.setting.baseUrl: URL must use HTTPS "
        "(got 'http://openai-proxy.example.com/v1'; plain http is allowed only for "
        "localhost / 127.0.0.1)"
    ),
    "syntax_error.toml": (
        "perstack.toml:5: invalid TOML: Invalid value at column 15 "
        '(strings must be quoted: description = "Writes things.")\n'
        "    5 | description = Writes things.\n"
        "      |               ^"
    ),
    "many_problems.toml": (
        "perstack.toml has 12 problems:\n"
        "perstack.toml:1 model: must be a string (got integer 4)\n"
        "perstack.toml:2 reasoningBudget: must be 'none', 'minimal', 'low', 'medium', 'high' or "
        "a non-negative token count (got 'maximum')\n"
        "perstack.toml:3 runtime: must be 'local', 'cursor', 'claude-code', 'gemini' or "
        "'docker' (got 'kubernetes')\n"
        "perstack.toml:4 maxSteps: must be at least 1 (got integer 0)\n"
        "perstack.toml:6 provider.providerName: field required\n"
        'perstack.toml:10 experts."writer".description: must not be empty\n'
        "perstack.toml:12 experts.\"writer\".delegates: 'Editor' is not a valid expert key: use "
        "lowercase letters, digits, '-', '_' and '.', optionally @scope/ before and @version "
        "after\n"
        'perstack.toml:15 experts."writer".skills."@perstack/base".lazyInit: must be true or '
        "false (got string 'yes')\n"
        'perstack.toml:19 experts."writer".skills."search".endpoint: SSE endpoint must be a '
        "public HTTPS URL, or a loopback URL for testing (got 'https://192.168.1.10/sse')\n"
        'perstack.toml:25 experts."writer".skills."ask".tools."confirm".inputJsonSchema: is not '
        "valid JSON: Expecting property name enclosed in double quotes at line 1\n"
        "perstack.toml:27 experts.\"Bad Key\": expert key 'Bad Key' is invalid: use lowercase "
        "letters, digits, '-' and '_', optionally prefixed by @scope/ (no dots, no @version)\n"
        'perstack.toml:27 experts."Bad Key".instruction: field required '
        "(found 'instrucion' on line 28: did you mean instruction?)"
    ),
}


def test_every_invalid_fixture_has_an_expected_message() -> None:
    assert sorted(EXPECTED_ERRORS) == [path.name for path in INVALID]


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
def test_invalid_files_give_one_error_listing_every_problem(name: str) -> None:
    error = error_of(f"invalid/{name}")
    assert isinstance(error, ConfigError)
    assert error.title == "Configuration error"
    assert str(error) == EXPECTED_ERRORS[name]


def test_problems_are_available_as_data() -> None:
    error = error_of("invalid/missing_instruction.toml")
    assert error.problems == (
        ConfigProblem(6, 'experts."writer".instruction', "field required", "perstack.toml"),
    )
    syntax = error_of("invalid/syntax_error.toml")
    assert [(p.line, p.key) for p in syntax.problems] == [(5, "")]


def test_warnings_survive_a_failed_load() -> None:
    error = error_of("invalid/instruction_typo.toml")
    assert [str(warning) for warning in error.warnings] == [
        'perstack.toml:3 experts."writer".instrucion: unknown key '
        "(ignored; did you mean instruction?)"
    ]


def test_syntax_error_at_end_of_document_points_at_the_last_line() -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_config('[experts."a"]\ninstruction = """never closed\n')
    assert str(info.value).splitlines()[0] == (
        "perstack.toml:2: invalid TOML: Unterminated string at the end of the file"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("sandbox = True", "Invalid value at column 11 (booleans are lowercase: sandbox = true)"),
        (
            "  model   =   gpt-4  # fast",
            'Invalid value at column 15 (strings must be quoted: model = "gpt-4")',
        ),
        ("provider = { providerName = openai }", "Invalid value at column 29"),
    ],
)
def test_syntax_hints(line: str, expected: str) -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_config(f"# header\n{line}\n")
    assert str(info.value).splitlines()[0] == f"perstack.toml:2: invalid TOML: {expected}"


def test_duplicate_tables_are_named_as_toml_keys() -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_config('[experts."a"]\ninstruction = "x"\n[experts."a"]\n')
    assert str(info.value).splitlines()[0] == (
        'perstack.toml:3: invalid TOML: Cannot declare experts."a" twice at column 13'
    )


def test_a_missing_key_in_an_inline_table_points_at_its_line() -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_config(
            'model = "x"\n'
            '[experts."a"]\n'
            'instruction = "y"\n'
            'skills = { "@perstack/base" = { type = "mcpStdioSkill" } }\n',
            path_label="team/perstack.toml",
        )
    assert str(info.value) == (
        'team/perstack.toml:4 experts."a".skills."@perstack/base".command: field required'
    )


def test_boolean_and_string_numbers_are_refused() -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_config('maxSteps = true\ntimeout = "300000"\nreasoningBudget = true\n')
    assert str(info.value) == (
        "perstack.toml has 3 problems:\n"
        "perstack.toml:1 maxSteps: must be an integer (got boolean true)\n"
        "perstack.toml:2 timeout: must be an integer (got string '300000')\n"
        "perstack.toml:3 reasoningBudget: must be 'none', 'minimal', 'low', 'medium', 'high' or "
        "a non-negative token count (got True)"
    )


def test_ollama_may_use_plain_http_and_loopback_is_allowed_for_others() -> None:
    ollama = parse_config(
        '[provider]\nproviderName = "ollama"\n[provider.setting]\nbaseUrl = "http://gpu-box:11434"\n'
    )
    assert ollama.config.provider is not None
    loopback = parse_config(
        '[provider]\nproviderName = "openai"\nsetting = { baseUrl = "http://127.0.0.1:8080/v1" }\n'
    )
    assert loopback.config.provider is not None


def test_non_utf8_file_names_the_line() -> None:
    with pytest.raises(ConfigFileError) as info:
        config_loader._decode(b'model = "x"\nname = "caf\xe9"\n', "perstack.toml")
    assert str(info.value) == "perstack.toml:2: not valid UTF-8 text (save the file as UTF-8)"


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_bytes(b'\xef\xbb\xbfmodel = "x"\n')
    assert load_config(cwd=tmp_path).config.model == "x"
