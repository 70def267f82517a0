"""The studio app and :func:`make_app`, the one factory the CLI, the tests and the snapshots use."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import App, SystemCommand
from textual.binding import BindingType
from textual.screen import Screen
from textual.worker import Worker

from studio.host import Clock, local_now
from studio.keys import Keymap, bindings
from studio.messages import ConfigCreated, WorkerFailed, forward_worker_failure
from studio.session import display_path, locate_config
from studio.settings import Settings, confirms


class StudioApp(App[int]):
    """Perstack Studio: author a perstack.toml (and, next, run its experts).

    The first screen is the main screen when the file exists, else the empty state that offers
    to create it.
    """

    CSS_PATH = "studio.tcss"
    TITLE = "Perstack Studio"
    BINDINGS: ClassVar[list[BindingType]] = [*bindings("help", "quit")]

    def __init__(
        self,
        path: Path,
        *,
        cwd: Path,
        data: bytes | None,
        now: Clock = local_now,
        watch: bool = True,
        cursor_blink: bool = True,
        keymap: Keymap | None = None,
    ) -> None:
        """Build the app; :func:`make_app` is the way to call this.

        Args:
            path: The perstack.toml to edit (or to create when ``data`` is ``None``).
            cwd: The working directory (paths are shown relative to it).
            data: The file's bytes, or ``None`` when it does not exist.
            now: The clock, for the times the status line shows.
            watch: Reload the file when it changes on disk.
            cursor_blink: Let text cursors blink (snapshots turn it off).
            keymap: Keys moved by binding id (default: the registry's keys).
        """
        super().__init__()
        self.path = path
        self.cwd = cwd
        self.label = display_path(path, cwd)
        self._data = data
        self.now = now
        self.watch_file = watch
        self.settings = Settings()
        """The user's settings (``perstack start`` sets those it read; confirmations use them)."""
        """Reload the file when it changes on disk."""
        self.cursor_blink = cursor_blink
        self.keymap = keymap or Keymap()
        """The keys in effect (the help screen shows them)."""
        self.keymap.apply(self)

    def on_mount(self) -> None:
        # Pushed rather than returned by get_default_screen(): Textual loads a screen's
        # CSS_PATH when it is pushed, not for the default screen.
        self.push_screen(self._first_screen())

    def _first_screen(self) -> Screen[Any]:
        """The main screen on the file, or the empty state when there is none."""
        if self._data is None:
            from studio.screens.create_config import CreateConfigScreen

            return CreateConfigScreen(self.path, label=self.label)
        return self._main_screen(self._data)

    def _main_screen(self, data: bytes) -> Screen[Any]:
        from studio.screens.main import MainScreen

        return MainScreen(self.path, label=self.label, data=data)

    @on(ConfigCreated)
    def _created(self, message: ConfigCreated) -> None:
        self._data = message.path.read_bytes()
        self.switch_screen(self._main_screen(self._data))
        self.notify(f"Created {self.label}.", title="Created")

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's system commands, plus help."""
        yield from super().get_system_commands(screen)
        yield SystemCommand("view: help", "Keys and how the studio works", self.action_help)

    def action_help(self) -> None:
        """Show the help screen, or close it when it is showing."""
        from studio.screens.help import toggle_help

        toggle_help(self, self.keymap)

    async def action_quit(self) -> None:
        """Quit, asking first when the editor has unsaved edits."""
        from studio.screens.main import MainScreen

        main = next(
            (screen for screen in self.screen_stack if isinstance(screen, MainScreen)), None
        )
        if main is None or not main.dirty or not confirms(self, "quit_with_unsaved_edits"):
            self.exit(0)
            return
        from studio.screens.confirm import ConfirmModal

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.exit(0)

        await self.push_screen(
            ConfirmModal(
                "Quit without saving?",
                f"{main.label} has unsaved edits. Quit anyway and lose them, or cancel and "
                "save with Ctrl+S.",
                confirm_label="Quit without saving",
                danger=True,
            ),
            confirmed,
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        forward_worker_failure(self, event)

    @on(WorkerFailed)
    def _worker_failed(self, message: WorkerFailed) -> None:
        worker = message.worker
        if worker.error is None:
            return
        from studio.screens.error import ErrorModal

        self.push_screen(
            ErrorModal(
                "Something went wrong",
                f"The studio's {worker.name or 'background task'} failed. Your edits are safe "
                "in the editor.",
                worker.error,
            )
        )


def make_app(
    config: str | Path | None = None,
    *,
    cwd: Path | None = None,
    now: Clock | None = None,
    theme: str | None = None,
    watch: bool = True,
    cursor_blink: bool = True,
    keymap: Mapping[str, str] | None = None,
) -> StudioApp:
    """Build the studio for a perstack.toml, as ``perstack start`` does.

    Args:
        config: The ``--config`` path; ``None`` searches the working directory and its parents,
            and offers to create ``perstack.toml`` in the working directory when none is found.
        cwd: The working directory (default: the process's).
        now: The clock (tests and snapshots fix it).
        theme: A Textual theme name (default: Textual's).
        watch: Reload the file when it changes on disk.
        cursor_blink: Let text cursors blink.
        keymap: Keys to move, by binding id (``{"save-file": "ctrl+w"}``; ids in
            :data:`studio.keys.KEYS`).

    Raises:
        ConfigError: ``config`` is a URL, or the file exists but cannot be read as UTF-8 text.
        ValueError: ``keymap`` names an id no binding has.
    """
    from runtime import ConfigError
    from studio.session import decode_config, is_remote

    keys = Keymap(keymap)
    cwd = (cwd or Path.cwd()).absolute()
    if config is not None and is_remote(str(config)):
        raise ConfigError(
            f"The studio edits local files; {config} is a URL. Download it and open the local "
            "copy with --config."
        )
    path = locate_config(str(config) if config is not None else None, cwd)
    data: bytes | None
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = None
    except OSError as error:
        raise ConfigError(f"Cannot read {path}: {error.strerror or error}") from error
    if data is not None:
        try:
            decode_config(data)
        except UnicodeDecodeError as error:
            raise ConfigError(
                f"{path} is not UTF-8 text (byte {error.start}); save it as UTF-8 first."
            ) from error
    app = StudioApp(
        path,
        cwd=cwd,
        data=data,
        now=now or local_now,
        watch=watch,
        cursor_blink=cursor_blink,
        keymap=keys,
    )
    if theme is not None:
        app.theme = theme
    return app
