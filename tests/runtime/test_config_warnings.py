"""Loading perstack.toml: unknown keys, typos and suspicious settings become warnings with
lines and hints, and the file still loads."""

from __future__ import annotations

from runtime.config.loader import parse_config
from runtime.config.problems import ConfigWarning
from runtime.config.resolve import effective_settings
from tests.runtime.config_helpers import load_fixture


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
