"""The user's settings: theme, key overrides, a default provider and model, confirmations.

One TOML file in the platform's config folder (``~/.config/perstack/settings.toml`` on Linux,
``~/Library/Application Support/perstack/settings.toml`` on macOS, ``%APPDATA%`` on Windows;
``$PERSTACK_SETTINGS`` names another), read when ``perstack start`` starts. A missing file means
the defaults; a wrong one is an error that names the file, the line and the key, and the studio
does not start until it is fixed::

    theme = "nord"
    provider = "openai"          # when neither --provider nor perstack.toml names one
    model = "gpt-4.1"            # when neither --model nor perstack.toml names one

    [keymap]                     # binding id (see F1) = keys
    save-file = "ctrl+w"

    [confirm]                    # ask before... (all true by default)
    quitWithUnsavedEdits = true
    deleteExpert = false
    removeSkill = true
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from pydantic.alias_generators import to_camel

SETTINGS_ENV = "PERSTACK_SETTINGS"
FILE_NAME = "settings.toml"


class SettingsError(Exception):
    """The settings file cannot be used; ``message`` says where and how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Confirmations(BaseModel):
    """``[confirm]``: which actions ask first."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    quit_with_unsaved_edits: bool = True
    delete_expert: bool = True
    remove_skill: bool = True


class Settings(BaseModel):
    """The whole file (every key optional)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    theme: str | None = None
    keymap: dict[str, str] = {}
    provider: str | None = None
    model: str | None = None
    confirm: Confirmations = Confirmations()

    @field_validator("theme")
    @classmethod
    def _known_theme(cls, value: str | None) -> str | None:
        from textual.theme import BUILTIN_THEMES

        if value is not None and value not in BUILTIN_THEMES:
            raise ValueError(
                f"unknown theme {value!r}: use one of {', '.join(sorted(BUILTIN_THEMES))}"
            )
        return value

    @field_validator("keymap")
    @classmethod
    def _known_bindings(cls, value: dict[str, str]) -> dict[str, str]:
        from studio.keys import Keymap

        Keymap(value)  # raises ValueError naming the unknown ids
        return value


def settings_path() -> Path:
    """Where the settings are read from (the file need not exist)."""
    override = os.environ.get(SETTINGS_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("perstack", appauthor=False)) / FILE_NAME


def load_settings(path: Path | None = None) -> Settings:
    """The user's settings, or the defaults when there is no file.

    Raises:
        SettingsError: The file is unreadable, not TOML, or holds an unknown key or a wrong
            value; the message names the file, line and key.
    """
    path = path or settings_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"Cannot read the settings file {path}: {error}") from error
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path} is not valid TOML: {error}") from error
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise SettingsError(_problems(path, text, error)) from None


def _problems(path: Path, text: str, error: ValidationError) -> str:
    from runtime.config import TomlLocator

    locator = TomlLocator(text)
    lines = []
    for problem in error.errors():
        keys = tuple(str(part) for part in problem["loc"])
        line = locator.line_of(keys) if keys else None
        where = f"{path}:{line}" if line else str(path)
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown setting (see perstack start --help for the file's keys)"
        lines.append(f"{where} {'.'.join(keys) or '(file)'}: {message}")
    return "\n".join(lines)


def confirms(app: Any, action: str) -> bool:
    """Whether ``action`` (a field of :class:`Confirmations`) asks first in ``app``'s settings."""
    settings = getattr(app, "settings", None)
    return True if settings is None else bool(getattr(settings.confirm, action))


def ask_first(app: Any, action: str, question: Any, then: Any) -> None:
    """Push the ``question`` dialog, or answer yes at once where the settings say not to ask.

    Args:
        app: The app (its ``settings``, when it has them, decide).
        action: A field of :class:`Confirmations`.
        question: The dialog (a screen that dismisses with a bool).
        then: Called with the answer.
    """
    if confirms(app, action):
        app.push_screen(question, then)
    else:
        then(True)
