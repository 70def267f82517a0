"""A small app whose only screen is the "New team" wizard (tests, snapshots, a standalone entry)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App

from studio.keys import bindings

if TYPE_CHECKING:
    from runtime import LanguageModel
    from studio.screens.wizard_run import Outcome


class WizardApp(App[int]):
    """Runs the wizard on one perstack.toml; quits when the wizard ends."""

    TITLE = "Perstack Studio"
    BINDINGS = bindings("quit")

    def __init__(
        self,
        config_path: Path,
        *,
        language_model: LanguageModel | None,
        environ: Mapping[str, str] | None,
        now: Callable[[], datetime] | None,
        cursor_blink: bool,
        job_id: str | None,
        extra: dict[str, Any] | None,
        exit_on_end: bool,
        cwd: Path | None,
    ) -> None:
        super().__init__()
        self.config_path = config_path
        self.language_model = language_model
        self.environ = environ
        self.now = now
        self.cursor_blink = cursor_blink
        self.job_id = job_id
        self.extra = extra
        self.exit_on_end = exit_on_end
        self.cwd = cwd
        self.outcome: Outcome | None = None
        """How the wizard ended (``None``: cancelled, or not yet)."""
        self.ended = False
        """The wizard was closed (accepted, rolled back or cancelled)."""

    def on_mount(self) -> None:
        from studio.screens.wizard import WizardScreen

        # Pushed rather than returned by get_default_screen(): a screen's CSS_PATH loads on push.
        self.push_screen(
            WizardScreen(
                self.config_path,
                language_model=self.language_model,
                environ=self.environ,
                now=self.now,
                job_id=self.job_id,
                extra=self.extra,
                cwd=self.cwd,
            ),
            self._ended,
        )

    def _ended(self, outcome: Outcome | None) -> None:
        self.outcome = outcome
        self.ended = True
        if self.exit_on_end:
            self.exit(0)

    def action_quit(self) -> None:  # type: ignore[override]
        """Quit (a run in flight is cancelled; its last checkpoint is saved)."""
        self.exit(0)


def make_wizard_app(
    *,
    workspace: Path | None = None,
    config_path: Path | None = None,
    language_model: Any = None,
    environ: Mapping[str, str] | None = None,
    now: Callable[[], datetime] | None = None,
    theme: str | None = None,
    cursor_blink: bool = True,
    job_id: str | None = None,
    extra: dict[str, Any] | None = None,
    exit_on_end: bool = True,
    cwd: Path | None = None,
) -> WizardApp:
    """Build the wizard app.

    Args:
        workspace: The folder whose perstack.toml the team goes into (default: the working
            directory).
        config_path: The perstack.toml (default: ``workspace/perstack.toml``).
        language_model: A model to run create-expert on instead of the provider's (tests).
        environ: The environment for key detection (default ``os.environ``).
        now: The clock (snapshots fix it).
        theme: A Textual theme name.
        cursor_blink: Let text cursors blink (snapshots turn it off).
        job_id: The id of create-expert's job (snapshots fix it).
        extra: More ``RunSetting`` fields (max_steps, timeout, ...).
        exit_on_end: Quit when the wizard ends (tests keep the app to inspect it).
        cwd: The working directory, for showing paths (default: the process's).
    """
    workspace = (workspace or Path.cwd()).absolute()
    app = WizardApp(
        config_path or workspace / "perstack.toml",
        language_model=language_model,
        environ=environ,
        now=now,
        cursor_blink=cursor_blink,
        job_id=job_id,
        extra=extra,
        exit_on_end=exit_on_end,
        cwd=cwd,
    )
    if theme is not None:
        app.theme = theme
    return app
