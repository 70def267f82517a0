"""Loading perstack.toml: discovery, the fixture corpus, exact diagnostics, experts and settings."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.config import loader as config_loader
from runtime.config.limits import (
    MAX_CONFIG_BYTES,
    MAX_ENTRIES,
    MAX_KEY_PARTS,
    MAX_NESTING,
    check_limits,
)
from runtime.config.loader import LoadedConfig, find_config, load_config, parse_config
from runtime.config.problems import (
    MAX_LISTED_PROBLEMS,
    ConfigFileError,
    ConfigLimitError,
    ConfigProblem,
    ConfigWarning,
)
from runtime.config.resolve import (
    EffectiveSettings,
    all_expert_keys,
    effective_settings,
    parse_reasoning_budget,
    resolve_expert,
)
from runtime.config.schema import (
    BASE_SKILL_NAME,
    InteractiveSkill,
    McpSseSkill,
    McpStdioSkill,
    McpStreamableHttpSkill,
    PerstackConfig,
    ProviderSetting,
    default_base_skill,
)
from runtime.errors import ConfigError, UsageError

CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "configs"
VALID = sorted(CONFIGS.glob("*.toml"))
INVALID = sorted((CONFIGS / "invalid").glob("*.toml"))


def load_fixture(name: str) -> LoadedConfig:
    path = CONFIGS / name
    return parse_config(path.read_text(encoding="utf-8"), path=path)


def error_of(name: str) -> ConfigFileError:
    with pytest.raises(ConfigFileError) as info:
        load_fixture(name)
    return info.value


# The corpus ----------------------------------------------------------------------------------


def test_corpus_is_big_enough() -> None:
    assert len(VALID) >= 6
    assert len(INVALID) >= 8


@pytest.mark.parametrize(
    "name",
    [
        "minimal.toml",
        "team.toml",
        "all_skill_types.toml",
        "odd_formatting.toml",
        "every_top_level_field.toml",
    ],
)
def test_clean_files_load_without_warnings(name: str) -> None:
    loaded = load_fixture(name)
    assert loaded.warnings == []
    assert loaded.label == "perstack.toml"
    assert loaded.path == CONFIGS / name
    assert loaded.base_dir == CONFIGS


def test_team_file() -> None:
    loaded = load_fixture("team.toml")
    config = loaded.config
    assert all_expert_keys(loaded) == ["game-director", "@ai-gaming/level-designer", "story-writer"]
    director = config.experts["game-director"]
    assert director.version == "1.2.0"
    assert director.instruction.startswith("You direct a small game studio.\n")
    assert director.delegates == [
        "@ai-gaming/level-designer",
        "story-writer",
        "@ai-gaming/sound-designer@1.0.0",
    ]
    assert config.provider is not None
    assert config.provider.setting.headers == {"X-Team": "games"}
    assert config.env_path == [".env", ".env.production"]
    assert loaded.sha256 == hashlib.sha256(loaded.text.encode()).hexdigest()


def test_every_skill_type_with_all_fields() -> None:
    skills = load_fixture("all_skill_types.toml").config.experts["toolbox"].skills
    assert skills is not None
    assert list(skills) == [BASE_SKILL_NAME, "github", "time", "search", "docs", "ask"]
    github = skills["github"]
    assert isinstance(github, McpStdioSkill)
    assert github.args == ["-y", "@modelcontextprotocol/server-github"]
    assert github.required_env == ["GITHUB_PERSONAL_ACCESS_TOKEN"]
    assert github.allowed_domains == ["api.github.com", "*.githubusercontent.com"]
    assert github.lazy_init is True
    assert github.rule == "Never push to main."
    time = skills["time"]
    assert isinstance(time, McpStdioSkill)
    assert (time.command, time.package_name, time.args) == ("uvx", "mcp-server-time", [])
    search = skills["search"]
    assert isinstance(search, McpSseSkill)
    assert (search.endpoint, search.pick, search.omit) == (
        "https://search.example.com/sse",
        ["search"],
        ["admin"],
    )
    docs = skills["docs"]
    assert isinstance(docs, McpStreamableHttpSkill)
    assert docs.headers == {"Authorization": "Bearer ${DOCS_TOKEN}"}
    ask = skills["ask"]
    assert isinstance(ask, InteractiveSkill)
    assert list(ask.tools) == ["chooseOption", "confirm"]
    assert '"required": ["question", "options"]' in ask.tools["chooseOption"].input_json_schema
    assert ask.tools["confirm"].description is None


def test_odd_formatting_parses_as_written() -> None:
    config = load_fixture("odd_formatting.toml").config
    assert config.model == "gpt-4.1"
    assert config.reasoning_budget == 2048
    assert config.provider is not None
    assert config.provider.setting.project == "proj-2"
    planner = config.experts["planner"]
    assert "[not.a.header]" in planner.instruction
    assert planner.delegates == ["coder", "reviewer"]
    assert planner.skills is not None
    assert list(planner.skills) == [BASE_SKILL_NAME, "shell"]
    reviewer = config.experts["reviewer"].skills
    assert reviewer is not None
    base = reviewer[BASE_SKILL_NAME]
    assert isinstance(base, McpStdioSkill)
    assert base.pick == ["readTextFile", "attemptCompletion"]


# Warnings ------------------------------------------------------------------------------------


def test_envpath_after_provider_is_ignored_with_a_warning() -> None:
    """Perstack's e2e quirk: the file still loads; the key is reported where it really is."""
    loaded = load_fixture("envpath_after_provider.toml")
    assert loaded.config.env_path is None
    assert effective_settings(loaded).env_path == (".env", ".env.local")
    assert [str(warning) for warning in loaded.warnings] == [
        "perstack.toml:6 provider.envPath: unknown key (ignored; did you mean the top-level "
        "envPath? Top-level keys must come before the first table header, [provider] on line 4)"
    ]
    assert loaded.warnings[0] == ConfigWarning(
        6, "provider.envPath", loaded.warnings[0].message, "perstack.toml"
    )


def test_typos_and_stray_keys_become_warnings_with_lines() -> None:
    loaded = load_fixture("typos.toml")
    assert [str(warning) for warning in loaded.warnings] == [
        "perstack.toml:1 modle: unknown key (ignored; did you mean model?)",
        "perstack.toml:2 max_steps: unknown key (ignored; did you mean maxSteps?)",
        "perstack.toml:3 reasoningbudget: unknown key (ignored; did you mean reasoningBudget?)",
        "perstack.toml:9 provider.setting.baseURL: unknown key (ignored; did you mean baseUrl?)",
        "perstack.toml:10 provider.setting.organisation: unknown key "
        "(ignored; did you mean organization?)",
        'perstack.toml:14 experts."writer".instrucions: unknown key '
        "(ignored; did you mean instruction?)",
        'perstack.toml:15 experts."writer".model: unknown key (ignored; did you mean the '
        "top-level model? Top-level keys must come before the first table header, [provider] "
        "on line 5)",
        'perstack.toml:16 experts."writer".name: unknown key (ignored; the name is the table key)',
        'perstack.toml:17 experts."writer".delegates[0]: delegate "editor" of expert "writer" '
        "is not defined in perstack.toml (it will be looked up in the registry)",
        'perstack.toml:17 experts."writer".delegates[1]: delegate "reviewr" of expert "writer" '
        'is not defined in perstack.toml (did you mean "reviewer"?)',
        'perstack.toml:19 experts."writer".skils: unknown key (ignored; did you mean skills?)',
        'perstack.toml:27 experts."writer".skills."@perstack/base".requiredEnv[0]: LD_PRELOAD '
        "is protected and is never passed to skills (ignored)",
        'perstack.toml:28 experts."writer".skills."@perstack/base".endpoint: unknown key '
        "(ignored; endpoint applies to mcpSseSkill skills only)",
        'perstack.toml:34 experts."writer".skills."ask".tools."confirm".name: unknown key '
        "(ignored; the name is the table key)",
        'perstack.toml:36 experts."writer".skills."ask".tools."confirm".inputSchema: unknown key '
        "(ignored; did you mean inputJsonSchema?)",
        'perstack.toml:41 experts."reviewer".skills."@perstack/base": has neither packageName '
        "nor args, so it cannot start: set packageName "
        '(e.g. packageName = "@modelcontextprotocol/server-github") or args',
    ]
    # Snake-case spellings are not silently accepted: Perstack would drop them too.
    assert loaded.config.max_steps is None


def test_unknown_key_hints() -> None:
    loaded = parse_config(
        'instruction = "x"\n'
        '[expert."w"]\n'
        'instruction = "y"\n'
        "[provider]\n"
        'providerName = "openai"\n'
        'name = "x"\n'
        '[experts."a"]\n'
        'instruction = "x"\n'
        '[experts."a".skills."@perstack/base"]\n'
        'type = "mcpStdioSkill"\n'
        'command = "npx"\n'
        'args = ["@perstack/base"]\n'
        'name = "b"\n'
        'env = ["X"]\n'
        "e = 1\n"
    )
    assert [str(warning) for warning in loaded.warnings] == [
        "perstack.toml:1 instruction: unknown key "
        '(ignored; instruction belongs in an [experts."<key>"] table)',
        "perstack.toml:2 expert: unknown key (ignored; did you mean experts?)",
        "perstack.toml:6 provider.name: unknown key (ignored; did you mean providerName?)",
        'perstack.toml:13 experts."a".skills."@perstack/base".name: unknown key '
        "(ignored; the name is the table key)",
        'perstack.toml:14 experts."a".skills."@perstack/base".env: unknown key '
        "(ignored; did you mean requiredEnv?)",
        'perstack.toml:15 experts."a".skills."@perstack/base".e: unknown key (ignored)',
    ]


def test_suspicious_but_valid_settings_are_warned_about() -> None:
    loaded = parse_config(
        '[experts."a"]\n'
        'instruction = "x"\n'
        'delegates = ["a", "b", "b", "@org/remote", "b@1.0.0"]\n'
        '[experts."a".skills."@perstack/base"]\n'
        'type = "mcpStdioSkill"\n'
        'command = "npx"\n'
        'packageName = "@perstack/base"\n'
        'args = ["@perstack/base"]\n'
        "lazyInit = true\n"
        '[experts."b"]\n'
        'instruction = "y"\n'
    )
    assert [str(warning) for warning in loaded.warnings] == [
        'perstack.toml:3 experts."a".delegates[0]: expert "a" lists itself as a delegate',
        'perstack.toml:3 experts."a".delegates[2]: delegate "b" is listed twice',
        'perstack.toml:4 experts."a".skills."@perstack/base": has both packageName and args, '
        "so it cannot start: keep only one of them",
        'perstack.toml:9 experts."a".skills."@perstack/base".lazyInit: ignored for '
        "@perstack/base (always started)",
    ]


# Errors --------------------------------------------------------------------------------------


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
    "skills_without_base.toml": (
        'perstack.toml:4 experts."writer".skills: must include "@perstack/base" when a skills '
        'table is given: add a skills."@perstack/base" table with type = "mcpStdioSkill", '
        'command = "npx", packageName = "@perstack/base"'
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


# Discovery -----------------------------------------------------------------------------------


def _no_config_above(path: Path) -> bool:
    return not any((parent / "perstack.toml").exists() for parent in path.parents)


def test_discovery_from_a_nested_subdirectory(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text('[experts."a"]\ninstruction = "x"\n')
    nested = tmp_path / "src" / "deep"
    nested.mkdir(parents=True)
    loaded = load_config(cwd=nested)
    assert loaded.path == tmp_path / "perstack.toml"
    assert loaded.label == "../../perstack.toml"
    assert loaded.base_dir == tmp_path
    assert find_config(None, nested) == tmp_path / "perstack.toml"


def test_the_nearest_file_wins(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text('model = "outer"\n')
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "perstack.toml").write_text('model = "inner"\n')
    assert load_config(cwd=tmp_path / "inner").config.model == "inner"


def test_labels_name_the_file_in_error_messages(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text('[experts."a"]\n')
    (tmp_path / "sub").mkdir()
    with pytest.raises(ConfigFileError) as info:
        load_config(cwd=tmp_path / "sub")
    assert str(info.value) == '../perstack.toml:1 experts."a".instruction: field required'


def test_config_option_relative_to_cwd(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "team.toml").write_text('model = "m"\nmodle = "typo"\n')
    loaded = load_config("configs/team.toml", cwd=tmp_path)
    assert loaded.path == tmp_path / "configs" / "team.toml"
    assert loaded.label == "configs/team.toml"
    assert [str(w) for w in loaded.warnings] == [
        "configs/team.toml:2 modle: unknown key (ignored; did you mean model?)"
    ]


def test_config_option_absolute_path(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text("")
    assert load_config(str(path), cwd=Path("/")).path == path


def test_missing_config_option_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("nope.toml", cwd=tmp_path)
    assert str(info.value) == 'Given config path "nope.toml" is not found'


def test_config_option_pointing_at_a_directory(tmp_path: Path) -> None:
    """--config DIR means DIR/perstack.toml, for perstack run as for perstack start."""
    (tmp_path / "proj").mkdir()
    with pytest.raises(ConfigError) as info:
        load_config("proj", cwd=tmp_path)
    assert str(info.value) == (
        'Given config path "proj" is a directory without a perstack.toml; create one there or '
        "pass the toml file's path"
    )
    (tmp_path / "proj" / "perstack.toml").write_text('[experts."a"]\ninstruction = "x"\n')
    assert load_config("proj", cwd=tmp_path).path == tmp_path / "proj" / "perstack.toml"


def test_run_and_start_agree_on_config_directories(tmp_path: Path) -> None:
    from runtime.config import find_config
    from studio.session import locate_config

    project = tmp_path / "proj"
    project.mkdir()
    (project / "perstack.toml").write_text('[experts."a"]\ninstruction = "x"\n')
    for given in ("proj", "proj/", "proj/perstack.toml", str(project)):
        assert find_config(given, tmp_path) == locate_config(given, tmp_path)
        assert find_config(given, tmp_path) == project / "perstack.toml"
    # Without a file, start offers to create it where run says it is missing.
    (project / "perstack.toml").unlink()
    assert locate_config("proj", tmp_path) == project / "perstack.toml"
    with pytest.raises(ConfigError, match="directory without a perstack.toml"):
        find_config("proj", tmp_path)


def test_no_config_anywhere(tmp_path: Path) -> None:
    if not _no_config_above(tmp_path):
        pytest.skip("a perstack.toml exists above the temporary directory")
    with pytest.raises(ConfigError) as info:
        load_config(cwd=tmp_path)
    assert str(info.value) == (
        f"perstack.toml not found in {tmp_path} or any parent directory. "
        "Create one or specify --config <path>."
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://raw.githubusercontent.com/org/repo/main/perstack.toml",
        "https://example.com/perstack.toml",
        "https://gist.githubusercontent.com/org/abc/raw/perstack.toml",
    ],
)
def test_only_https_raw_githubusercontent_urls_are_allowed(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(url, cwd=tmp_path)
    assert str(info.value) == (
        f'Config URL "{url}" is not allowed: only https://raw.githubusercontent.com/... URLs '
        "can be loaded. Download the file and pass its local path to --config instead."
    )


RAW_URL = "https://raw.githubusercontent.com/org/repo/main/perstack.toml"


@pytest.fixture
def remote(monkeypatch: pytest.MonkeyPatch) -> dict[str, httpx.Response]:
    """Responses by URL, served instead of the network."""
    responses: dict[str, httpx.Response] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        return responses.get(str(request.url), httpx.Response(404))

    monkeypatch.setattr(config_loader, "_remote_transport", httpx.MockTransport(handler))
    return responses


def test_remote_config_is_fetched(remote: dict[str, httpx.Response], tmp_path: Path) -> None:
    remote[RAW_URL] = httpx.Response(
        200, content=b'modle = "m"\n[experts."a"]\ninstruction = "x"\n'
    )
    loaded = load_config(RAW_URL, cwd=tmp_path)
    assert loaded.path is None
    assert loaded.label == RAW_URL
    assert loaded.base_dir == tmp_path
    assert loaded.config.experts["a"].instruction == "x"
    assert [str(w) for w in loaded.warnings] == [
        f"{RAW_URL}:1 modle: unknown key (ignored; did you mean model?)"
    ]


def test_remote_redirects_are_not_followed(
    remote: dict[str, httpx.Response], tmp_path: Path
) -> None:
    remote[RAW_URL] = httpx.Response(302, headers={"location": "https://evil.example.com/x"})
    with pytest.raises(ConfigError) as info:
        load_config(RAW_URL, cwd=tmp_path)
    assert str(info.value) == (
        f'Config URL "{RAW_URL}" redirects to "https://evil.example.com/x"; redirects are not '
        "followed. Use the final raw.githubusercontent.com URL."
    )


def test_remote_http_errors(remote: dict[str, httpx.Response], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(RAW_URL, cwd=tmp_path)
    assert str(info.value) == f'Could not fetch config "{RAW_URL}": HTTP 404 Not Found'


def test_remote_network_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    monkeypatch.setattr(config_loader, "_remote_transport", httpx.MockTransport(refuse))
    with pytest.raises(ConfigError) as info:
        load_config(RAW_URL, cwd=tmp_path)
    assert str(info.value) == f'Could not fetch config "{RAW_URL}": connection refused'


# Limits and hostile input --------------------------------------------------------------------


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


def test_a_remote_config_over_the_limit_is_not_read_to_the_end(
    remote: dict[str, httpx.Response], tmp_path: Path
) -> None:
    remote[RAW_URL] = httpx.Response(200, content=b"#" * 3_000_000)
    with pytest.raises(ConfigLimitError) as info:
        load_config(RAW_URL, cwd=tmp_path)
    assert str(info.value).startswith(
        f"{RAW_URL}: too large: over the limit of 1,048,576 bytes (1 MiB)"
    )


# Experts -------------------------------------------------------------------------------------


def test_resolve_expert_injects_the_base_skill_when_there_is_no_skills_table() -> None:
    expert = resolve_expert(load_fixture("minimal.toml"), "hello")
    assert expert.key == expert.name == "hello"
    assert expert.version == "1.0.0"
    assert expert.instruction == "Greet the user."
    assert expert.description is None
    assert expert.skills == {BASE_SKILL_NAME: default_base_skill()}
    assert expert.base_skill_injected is True
    assert expert.delegates == ()


def test_resolve_expert_keeps_an_explicit_skills_table() -> None:
    loaded = load_fixture("team.toml")
    expert = resolve_expert(loaded, "@ai-gaming/level-designer")
    assert expert.name == "@ai-gaming/level-designer"
    assert expert.version == "0.3.1"
    assert list(expert.skills) == [BASE_SKILL_NAME]
    base = expert.skills[BASE_SKILL_NAME]
    assert isinstance(base, McpStdioSkill)
    assert base.package_name == BASE_SKILL_NAME
    assert expert.base_skill_injected is False
    director = resolve_expert(loaded.config, "game-director")
    assert director.delegates[0] == "@ai-gaming/level-designer"
    assert director.tags == ("games", "coordinator")


@pytest.mark.parametrize(
    "key", ["story-writer@1.0.0", "story-writer@latest", "@ai-gaming/level-designer@0.3.1"]
)
def test_resolve_expert_strips_a_matching_version_or_a_tag(key: str) -> None:
    assert resolve_expert(load_fixture("team.toml"), key).key == key.rsplit("@", 1)[0]


def test_resolve_expert_refuses_another_version() -> None:
    with pytest.raises(UsageError) as info:
        resolve_expert(load_fixture("team.toml"), "story-writer@2.0.0")
    assert str(info.value) == (
        'Expert "story-writer@2.0.0" not found in perstack.toml: it defines "story-writer" at '
        "version 1.0.0. Use story-writer or story-writer@1.0.0."
    )


def test_unknown_expert_lists_the_defined_ones_and_suggests() -> None:
    loaded = load_fixture("team.toml")
    with pytest.raises(UsageError) as info:
        resolve_expert(loaded, "story-writter")
    assert str(info.value) == (
        'Expert "story-writter" not found in perstack.toml. Defined experts: game-director, '
        '@ai-gaming/level-designer, story-writer. Did you mean "story-writer"?'
    )
    with pytest.raises(UsageError) as info:
        resolve_expert(loaded, "composer")
    assert str(info.value) == (
        'Expert "composer" not found in perstack.toml. Defined experts: game-director, '
        "@ai-gaming/level-designer, story-writer."
    )


def test_unknown_expert_in_an_empty_file() -> None:
    with pytest.raises(UsageError) as info:
        resolve_expert(PerstackConfig(), "writer")
    assert str(info.value) == (
        'Expert "writer" not found in perstack.toml. No experts are defined: add an '
        '[experts."writer"] table with an instruction.'
    )


# Settings ------------------------------------------------------------------------------------


def test_defaults_apply_when_neither_cli_nor_toml_say_anything() -> None:
    assert effective_settings(PerstackConfig()) == EffectiveSettings(
        provider="anthropic",
        model="claude-sonnet-4-5",
        reasoning_budget="low",
        max_steps=100,
        max_retries=5,
        timeout=300_000,
        provider_setting=ProviderSetting(),
        env_path=(".env", ".env.local"),
    )


def test_toml_values_apply() -> None:
    settings = effective_settings(load_fixture("team.toml"))
    assert (settings.provider, settings.model, settings.reasoning_budget) == (
        "anthropic",
        "claude-sonnet-4-5",
        "medium",
    )
    assert (settings.max_steps, settings.max_retries, settings.timeout) == (60, 3, 120_000)
    assert settings.provider_setting.base_url == "https://anthropic-proxy.example.com/v1"
    assert settings.env_path == (".env", ".env.production")
    zero = effective_settings(load_fixture("every_top_level_field.toml"))
    assert (zero.max_retries, zero.reasoning_budget, zero.max_steps) == (0, "none", 1)


def test_cli_overrides_toml() -> None:
    settings = effective_settings(
        load_fixture("team.toml"),
        provider="openai",
        model="gpt-4.1",
        reasoning_budget="4096",
        max_steps="7",
        max_retries=0,
        timeout=1000,
        env_path=["secrets.env"],
    )
    assert settings == EffectiveSettings(
        provider="openai",
        model="gpt-4.1",
        reasoning_budget=4096,
        max_steps=7,
        max_retries=0,
        timeout=1000,
        # The toml's [provider.setting] belongs to anthropic, not to the provider chosen here.
        provider_setting=ProviderSetting(),
        env_path=("secrets.env",),
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"reasoning_budget": "huge"},
            "--reasoning-budget must be none, minimal, low, medium, high or a non-negative "
            "token count (got 'huge')",
        ),
        ({"max_steps": "0"}, "--max-steps must be a whole number of at least 1 (got '0')"),
        ({"max_steps": "ten"}, "--max-steps must be a whole number of at least 1 (got 'ten')"),
        ({"max_retries": -1}, "--max-retries must be a whole number of at least 0 (got -1)"),
        ({"timeout": "1.5"}, "--timeout must be a whole number of at least 1 (got '1.5')"),
        (
            {"provider": "Anthropic"},
            "--provider must be a lowercase provider name such as anthropic, openai, google or "
            "ollama (got 'Anthropic')",
        ),
        ({"model": " "}, "--model must not be empty"),
    ],
)
def test_bad_cli_values_name_the_option(options: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as info:
        effective_settings(PerstackConfig(), **options)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("given", "expected"),
    [("none", "none"), ("HIGH", "high"), (" minimal ", "minimal"), ("0", 0), (2048, 2048)],
)
def test_parse_reasoning_budget(given: str | int, expected: str | int) -> None:
    assert parse_reasoning_budget(given) == expected


@pytest.mark.parametrize("given", ["-1", "lots", "", True, -5])
def test_parse_reasoning_budget_refuses_garbage(given: str | int) -> None:
    with pytest.raises(UsageError, match="^--reasoning-budget must be"):
        parse_reasoning_budget(given)
