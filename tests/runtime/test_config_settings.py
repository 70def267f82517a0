"""Effective settings: built-in defaults, then perstack.toml, then the command line, and the
messages for bad command-line values."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.config.resolve import EffectiveSettings, effective_settings, parse_reasoning_budget
from runtime.config.schema import PerstackConfig, ProviderSetting
from runtime.errors import UsageError
from tests.runtime.config_helpers import load_fixture


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
