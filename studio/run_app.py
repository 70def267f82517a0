"""A small app whose first screen runs an expert: ``perstack start EXPERT QUERY`` and ``--demo``."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from textual.app import App

from studio.keys import Keymap, bindings
from studio.run_controller import RunOptions


class RunApp(App[int]):
    """Runs one expert with the live step tree; F1 shows the keys, Ctrl+Q quits."""

    TITLE = "Perstack Studio"
    BINDINGS = bindings("help", "quit")

    def __init__(
        self,
        options: RunOptions,
        *,
        query: str | None,
        demo: bool,
        now: Callable[[], datetime] | None,
        cursor_blink: bool,
        model_label: str | None = None,
    ) -> None:
        super().__init__()
        self.options = options
        self.initial_query = query
        self.demo = demo
        self.now = now
        self.cursor_blink = cursor_blink
        self.model_label = model_label
        self.keymap = Keymap()
        """The keys in effect (``perstack start`` applies the user's keymap and sets it)."""

    def on_mount(self) -> None:
        from studio.screens.run import RunScreen

        # Pushed rather than returned by get_default_screen(): a screen's CSS_PATH loads on push.
        self.push_screen(
            RunScreen(
                self.options,
                query=self.initial_query,
                demo=self.demo,
                now=self.now,
                model_label=self.model_label,
            )
        )

    def action_help(self) -> None:
        """Show the help screen, or close it when it is showing."""
        from studio.screens.help import toggle_help

        toggle_help(self, self.keymap)

    def action_quit(self) -> None:  # type: ignore[override]
        """Quit (a run in flight is cancelled; its last checkpoint is saved)."""
        self.exit(0)


def make_run_app(
    *,
    workspace: Path | None = None,
    expert_key: str | None = None,
    query: str | None = None,
    config_path: str | None = None,
    provider: str | None = None,
    model: str | None = None,
    demo: bool = False,
    now: Callable[[], datetime] | None = None,
    theme: str | None = None,
    cursor_blink: bool = True,
    language_model: Any = None,
    job_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> RunApp:
    """Build the run app, as ``perstack start EXPERT QUERY`` on a terminal does.

    Args:
        workspace: Where the expert works and jobs are stored (default: the working directory;
            with ``demo``, a fresh temporary folder holding the demo's perstack.toml).
        expert_key: The expert to run (the demo's coordinator with ``demo``).
        query: Run this at once (the demo's query with ``demo``); ``None`` waits for one.
        config_path: ``--config``.
        provider: ``--provider``.
        model: ``--model``.
        demo: Run the bundled team on the scripted demo model (no API key, no network).
        now: The clock (snapshots fix it).
        theme: A Textual theme name.
        cursor_blink: Let text cursors blink (snapshots turn it off).
        language_model: A model object to use instead of the provider's (tests).
        job_id: The id of the first job (snapshots fix it).
        extra: More ``RunSetting`` fields (max_steps, timeout, ...).
    """
    model_label = None
    if demo:
        from studio.demo import DEMO_CONFIG, DEMO_EXPERT, DEMO_QUERY, demo_model, demo_pace

        if workspace is None:
            workspace = Path(tempfile.mkdtemp(prefix="perstack-demo-"))
        if not (workspace / "perstack.toml").exists():
            shutil.copy(DEMO_CONFIG, workspace / "perstack.toml")
        expert_key = expert_key or DEMO_EXPERT
        query = query or DEMO_QUERY
        language_model = language_model or demo_model(pace=demo_pace())
        config_path = None
        model_label = language_model.model_name
    if not expert_key:
        from runtime import UsageError

        raise UsageError("perstack start needs an EXPERT to run (or --demo)")
    options = RunOptions(
        workspace=(workspace or Path.cwd()).absolute(),
        expert_key=expert_key,
        config_path=config_path,
        provider=provider,
        model=model,
        language_model=language_model,
        job_id=job_id,
        extra=dict(extra or {}),
    )
    app = RunApp(
        options,
        query=query,
        demo=demo,
        now=now,
        cursor_blink=cursor_blink,
        model_label=model_label,
    )
    if theme is not None:
        app.theme = theme
    return app
