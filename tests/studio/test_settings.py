"""The user's settings file: read at start, validated with the file, line and key, applied."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.app import make_app
from studio.settings import Settings, SettingsError, load_settings, settings_path
from tests.fakellm import FakeLLM, reply_text
from tests.studio.helpers import SIZE, fixed_now, wait_until

GOOD = """\
theme = "nord"
provider = "openai"
model = "gpt-4.1"

[keymap]
save-file = "ctrl+w"

[confirm]
deleteExpert = false
"""


def test_a_missing_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "none.toml") == Settings()


def test_the_file_is_read_and_its_env_override_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(GOOD)
    monkeypatch.setenv("PERSTACK_SETTINGS", str(path))
    assert settings_path() == path
    settings = load_settings()
    assert (settings.theme, settings.provider, settings.model) == ("nord", "openai", "gpt-4.1")
    assert settings.keymap == {"save-file": "ctrl+w"}
    assert settings.confirm.delete_expert is False and settings.confirm.remove_skill is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('theme = "neon"\n', ":1 theme: unknown theme 'neon': use one of"),
        ('[keymap]\nsave = "ctrl+w"\n', ":1 keymap: No key binding has the id 'save'"),
        ('[confirm]\ndeleteExpert = "maybe"\n', ":2 confirm.deleteExpert: Input should be a valid"),
        ('colour = "red"\n', ":1 colour: unknown setting"),
        ("theme = \n", "is not valid TOML"),
    ],
)
def test_a_wrong_file_names_the_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    with pytest.raises(SettingsError) as error:
        load_settings(path)
    assert str(path) in error.value.message and message in error.value.message


def test_perstack_start_refuses_a_wrong_file_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('theme = "neon"\n')
    done = subprocess.run(
        [sys.executable, "-m", "studio", "start", "--no-tui", "solo", "q"],
        cwd=tmp_path,
        env={**os.environ, "PERSTACK_SETTINGS": str(path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"perstack: Settings error: {path}:1 theme: unknown theme")
    assert "Traceback" not in done.stderr


async def test_the_studio_applies_theme_keys_and_confirmations(tmp_path: Path) -> None:
    from studio.screens.confirm import ConfirmModal
    from studio.screens.main import MainScreen

    (tmp_path / "perstack.toml").write_text(
        '[experts."a"]\ninstruction = "x"\n\n[experts."b"]\ninstruction = "y"\n'
    )
    settings = Settings.model_validate(
        {"theme": "nord", "keymap": {"save-file": "ctrl+w"}, "confirm": {"deleteExpert": False}}
    )
    app = make_app(
        None,
        cwd=tmp_path,
        now=fixed_now,
        watch=False,
        cursor_blink=False,
        theme=settings.theme,
        keymap=settings.keymap,
    )
    app.settings = settings
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        screen = app.screen
        assert isinstance(screen, MainScreen)
        assert app.theme == "nord"
        screen.forms.delete_expert("b")  # no question asked: deleteExpert = false
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmModal)
        assert 'experts."b"' not in screen.editor.text
        await pilot.press("ctrl+w")  # save-file moved to Ctrl+W
        await wait_until(pilot, lambda: not screen.dirty)
        assert 'experts."b"' not in (tmp_path / "perstack.toml").read_text()


def test_the_settings_provider_and_model_apply_where_nothing_else_names_one(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('provider = "openai"\nmodel = "gpt-4.1-mini"\n')

    def model_asked_for(toml: str) -> str:
        (tmp_path / "perstack.toml").write_text(toml)
        fake_llm.script(reply_text("done"))
        done = subprocess.run(
            [sys.executable, "-m", "studio", "start", "--no-tui", "solo", "go"],
            cwd=tmp_path,
            env={**fake_llm.process_env(), "PERSTACK_SETTINGS": str(path)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return str(fake_llm.requests[-1]["model"])

    assert model_asked_for('[experts."solo"]\ninstruction = "x"\n') == "gpt-4.1-mini"
    # perstack.toml's model wins over the settings' default.
    toml = 'model = "gpt-4.1"\n[experts."solo"]\ninstruction = "x"\n'
    assert model_asked_for(toml) == "gpt-4.1"
