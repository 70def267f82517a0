"""Env loading (§2.7) and the filtered environment of skill processes (§5.10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.config.env import PROTECTED_ENV_NAMES, SAFE_ENV_NAMES, load_env, skill_env
from runtime.errors import ConfigError


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".env").write_text("A=from-env\nB=from-env\nSHARED=from-env\n")
    (tmp_path / ".env.local").write_text("B=from-local\nC=from-local\nSHARED=from-local\n")
    return tmp_path


def test_default_files_first_listed_wins(project: Path) -> None:
    env = load_env(None, project, environ={})
    assert env == {"A": "from-env", "B": "from-env", "C": "from-local", "SHARED": "from-env"}


def test_process_environment_wins_over_files(project: Path) -> None:
    env = load_env(None, project, environ={"SHARED": "from-process", "OTHER": "1"})
    assert env["SHARED"] == "from-process"
    assert env["OTHER"] == "1"


def test_empty_process_values_do_not_count(project: Path) -> None:
    env = load_env(None, project, environ={"SHARED": "", "EMPTY": ""})
    assert env["SHARED"] == "from-env"
    assert "EMPTY" not in env


def test_explicit_order_is_respected(project: Path) -> None:
    env = load_env([".env.local", ".env"], project, environ={})
    assert env["SHARED"] == "from-local"
    assert env["A"] == "from-env"


def test_missing_files_are_ignored(project: Path) -> None:
    env = load_env(["nope.env", ".env", "also/missing.env"], project, environ={})
    assert env == {"A": "from-env", "B": "from-env", "SHARED": "from-env"}
    assert load_env(["nope.env"], project / "missing-dir", environ={"X": "1"}) == {"X": "1"}


def test_a_directory_named_like_an_env_file_is_skipped(tmp_path: Path) -> None:
    (tmp_path / ".env").mkdir()  # a virtualenv
    assert load_env(None, tmp_path, environ={}) == {}
    assert load_env([".env"], tmp_path, environ={}) == {}


def test_a_directory_named_in_env_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    with pytest.raises(ConfigError) as info:
        load_env(["secrets"], tmp_path, environ={})
    assert str(info.value) == (
        "envPath / --env-path entry 'secrets' is a directory; name an env file (KEY=value lines) "
        "instead"
    )


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("e" * 300, "cannot be used as a path: File name too long"),
        ("a\x00b", "contains a NUL character, which no path can hold"),
        ("~nosuchuser-perstack/.env", "starts with ~ but names no user of this system"),
    ],
    ids=["long", "nul", "unknown-user"],
)
def test_an_env_path_that_cannot_be_a_path_is_a_config_error(
    tmp_path: Path, entry: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_env([entry], tmp_path, environ={})
    assert str(info.value).startswith("envPath / --env-path entry '")
    assert str(info.value).endswith(f" {reason}")
    assert len(str(info.value)) < 200


def test_paths_are_relative_to_the_config_directory(
    project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    assert load_env([".env"], project, environ={})["A"] == "from-env"


def test_absolute_paths(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    other = tmp_path_factory.mktemp("other") / "secrets.env"
    other.write_text("SECRET=s3cr3t\n")
    assert load_env([str(other)], project, environ={}) == {"SECRET": "s3cr3t"}


def test_values_are_literal_and_empty_assignments_count_as_unset(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text(
        "# comment\n"
        "export TOKEN='quoted value'\n"
        "REF=${HOME}/x\n"
        "BLANK=\n"
        "NO_VALUE\n"
        'MULTI="line1\\nline2"\n'
    )
    (tmp_path / "b.env").write_text("BLANK=filled\nNO_VALUE=later\n")
    env = load_env(["a.env", "b.env"], tmp_path, environ={"HOME": "/home/u"})
    assert env["TOKEN"] == "quoted value"
    assert env["REF"] == "${HOME}/x"
    assert env["BLANK"] == "filled"
    assert env["NO_VALUE"] == "later"
    assert env["MULTI"] == "line1\nline2"


def test_defaults_to_the_process_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHARED", "from-process")
    env = load_env(None, project)
    assert env["SHARED"] == "from-process"
    assert env["A"] == "from-env"


def test_an_unreadable_env_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"KEY=caf\xe9\n")
    with pytest.raises(ConfigError, match=r"^Cannot read env file '.*\.env': "):
        load_env(None, tmp_path, environ={})


# skill_env -----------------------------------------------------------------------------------


ENV = {
    "PATH": "/usr/bin",
    "HOME": "/home/u",
    "TERM": "xterm",
    "HTTPS_PROXY": "http://proxy:3128",
    "no_proxy": "localhost",
    "ANTHROPIC_API_KEY": "sk-secret",
    "GITHUB_TOKEN": "ghp_x",
    "LD_PRELOAD": "/tmp/evil.so",
    "NODE_OPTIONS": "--require /tmp/evil.js",
    "EMPTY": "",
}


def test_skill_env_passes_only_safe_variables_and_required_ones() -> None:
    assert skill_env(["GITHUB_TOKEN"], ENV, "github") == {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "TERM": "xterm",
        "HTTPS_PROXY": "http://proxy:3128",
        "no_proxy": "localhost",
        "GITHUB_TOKEN": "ghp_x",
    }


def test_secrets_are_not_passed_unless_required() -> None:
    assert "ANTHROPIC_API_KEY" not in skill_env([], ENV, "time")


def test_required_env_cannot_set_protected_variables() -> None:
    env = skill_env(["LD_PRELOAD", "NODE_OPTIONS", "PATH", "PYTHONPATH"], ENV, "sneaky")
    assert "LD_PRELOAD" not in env
    assert "NODE_OPTIONS" not in env
    assert env["PATH"] == "/usr/bin"  # still there, through the safe list


def test_missing_required_variable() -> None:
    with pytest.raises(ConfigError) as info:
        skill_env(["GITHUB_TOKEN", "SLACK_TOKEN"], ENV, "slack")
    assert str(info.value) == (
        'Skill "slack" requires environment variable SLACK_TOKEN, which is not set. '
        "Set it in the environment or in .env."
    )


def test_several_missing_and_empty_required_variables() -> None:
    with pytest.raises(ConfigError) as info:
        skill_env(["EMPTY", "SLACK_TOKEN", "SLACK_TOKEN"], ENV, "slack")
    assert str(info.value) == (
        'Skill "slack" requires environment variables EMPTY, SLACK_TOKEN, which are not set. '
        "Set them in the environment or in .env."
    )


def test_the_lists_match_the_reference() -> None:
    assert set(SAFE_ENV_NAMES) == {
        "PATH",
        "HOME",
        "SHELL",
        "TERM",
        "NODE_PATH",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "NO_PROXY",
        "no_proxy",
        "PERSTACK_PROXY_URL",
        "NPM_CONFIG_PROXY",
        "NPM_CONFIG_HTTPS_PROXY",
    }
    assert "LD_PRELOAD" in PROTECTED_ENV_NAMES
    assert "TERM" not in PROTECTED_ENV_NAMES
