"""The wizard's "key set" marks agree with the runtime's own table of provider key variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import OptionList

from runtime import PROVIDER_DEFAULT_MODELS, provider_key_names, provider_key_status
from runtime.config.schema import DEFAULT_MODEL, DEFAULT_PROVIDER
from runtime.errors import MissingApiKeyError
from runtime.llm.providers import resolve_provider
from studio.screens.wizard import PROVIDERS, FoundKey, WizardScreen, detect_keys
from studio.wizard_app import make_wizard_app

SIZE = (120, 40)


@pytest.mark.parametrize(
    ("variable", "provider"),
    [
        ("GEMINI_API_KEY", "google"),
        ("GOOGLE_API_KEY", "google"),
        ("FIREWORKS_AI_API_KEY", "fireworks"),
    ],
)
def test_alternative_key_variables_count_as_present(
    tmp_path: Path, variable: str, provider: str
) -> None:
    environ = {"PATH": "/usr/bin", variable: "k"}
    assert detect_keys(tmp_path, environ) == {provider: FoundKey(variable, "environment")}
    (tmp_path / ".env").write_text(f"{variable}=k\n")
    assert detect_keys(tmp_path, {}) == {provider: FoundKey(variable, ".env")}


@pytest.mark.parametrize(
    ("variable", "provider"), [("GEMINI_API_KEY", "google"), ("FIREWORKS_AI_API_KEY", "fireworks")]
)
async def test_wizard_marks_the_key_present_and_picks_that_provider(
    tmp_path: Path, variable: str, provider: str
) -> None:
    app = make_wizard_app(
        workspace=tmp_path,
        environ={"PATH": "/usr/bin", variable: "k"},
        cursor_blink=False,
        exit_on_end=False,
    )
    async with app.run_test(size=SIZE) as pilot:
        screen: Any = None
        while not isinstance(screen, WizardScreen):
            await pilot.pause()
            screen = pilot.app.screen
        assert screen.provider.name == provider
        options = screen.query_one("#wizard-providers", OptionList)
        label = str(options.get_option(provider).prompt)
        assert label.startswith("✓") and variable in label and "set in environment" in label


def test_every_offered_provider_is_the_runtimes_with_its_key_names() -> None:
    assert [p.name for p in PROVIDERS] == list(PROVIDER_DEFAULT_MODELS)
    for choice in PROVIDERS:
        assert choice.key_envs == provider_key_names(choice.name)
        assert choice.default_model == PROVIDER_DEFAULT_MODELS[choice.name]
        # A run accepts every variable the wizard names, and fails without any of them.
        for variable in choice.key_envs:
            res = resolve_provider(choice.name, choice.default_model, None, {variable: "k"})
            assert res.api_key_env == variable
        with pytest.raises(MissingApiKeyError):
            resolve_provider(choice.name, choice.default_model, None, {})


def test_runtime_default_model_is_the_config_default() -> None:
    assert PROVIDER_DEFAULT_MODELS[DEFAULT_PROVIDER] == DEFAULT_MODEL


def test_key_status_reports_the_variable_found_and_the_names_accepted() -> None:
    status = provider_key_status(
        "google", {"GOOGLE_GENERATIVE_AI_API_KEY": "", "GEMINI_API_KEY": "g"}
    )
    assert status.found == "GEMINI_API_KEY" and status.ready
    assert status.names == ("GOOGLE_GENERATIVE_AI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")
    missing = provider_key_status("deepseek", {})
    assert (missing.found, missing.required, missing.ready) == (None, True, False)
    assert provider_key_status("ollama", {}).ready
    assert provider_key_status("google-vertex", {}).names == ()
    assert provider_key_status("groq", {"GROQ_API_KEY": "k"}).found == "GROQ_API_KEY"
