"""The empty state: there is no perstack.toml yet, so offer to create one."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Center, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Header, Input, Label, Static

from studio.messages import ConfigCreated
from studio.screens import settle_cursors
from studio.widgets.footer import StudioFooter

DEFAULT_EXPERT = "my-expert"


class CreateConfigScreen(Screen[None]):
    """No perstack.toml: explain, ask for a first expert's key, and write a minimal valid file."""

    CSS_PATH = "create_config.tcss"

    def __init__(self, path: Path, *, label: str) -> None:
        """Build the screen.

        Args:
            path: Where the file will be created.
            label: The path as shown to the user.
        """
        super().__init__()
        self._path = path
        self._label = label

    def compose(self) -> ComposeResult:
        yield Header()
        with Center(id="empty-state"), Vertical(id="empty-card"):
            yield Static("No perstack.toml here yet", id="empty-title", markup=False)
            yield Static(
                "A perstack.toml defines a team of experts: each has an instruction, and may "
                "delegate to other experts and use skills (MCP servers). Create one with a first "
                "expert, then shape the team in the studio.",
                id="empty-explanation",
                markup=False,
            )
            where = (
                f"{self._label} in the current directory"
                if self._label == self._path.name
                else self._label
            )
            yield Static(f"It will be created as {where}.", id="empty-path", markup=False)
            yield Label("Key of the first expert")
            yield Input(DEFAULT_EXPERT, id="empty-key", placeholder=DEFAULT_EXPERT)
            yield Static("", id="empty-error", markup=False)
            with Horizontal(id="empty-buttons"):
                yield Button("Quit", id="empty-quit")
                yield Button("Create perstack.toml", id="empty-create", variant="primary")
        yield StudioFooter()

    def on_mount(self) -> None:
        self.sub_title = self._label
        settle_cursors(self)
        # The key field first, its text selected: typing replaces the suggestion and Enter
        # creates the file (it used to take a Tab before typing did anything).
        key = self.query_one("#empty-key", Input)
        key.focus()
        key.select_all()

    @on(Input.Submitted, "#empty-key")
    @on(Button.Pressed, "#empty-create")
    def create(self) -> None:
        """Write a minimal perstack.toml with the expert key given."""
        from runtime.config import EXPERT_NAME_RE, minimal_config, save_config

        key = self.query_one("#empty-key", Input).value.strip() or DEFAULT_EXPERT
        if not EXPERT_NAME_RE.match(key):
            self.query_one("#empty-error", Static).update(
                f"{key!r} is not a valid expert key: use lowercase letters, digits, '-' and '_'."
            )
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            save_config(self._path, minimal_config(key))
        except OSError as error:
            from studio.screens.error import ErrorModal

            self.app.push_screen(
                ErrorModal("Could not create perstack.toml", str(self._path), error)
            )
            return
        self.post_message(ConfigCreated(self._path))

    @on(Button.Pressed, "#empty-quit")
    def _quit(self) -> None:
        self.app.exit(0)
