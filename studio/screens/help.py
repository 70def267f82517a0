"""The help screen: how the studio works, and every key, written from the key registry."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown, Static

from studio.keys import GROUPS, KEYS, Keymap, bindings
from studio.screens import settle_cursors

ABOUT = """\
The studio edits the team in **perstack.toml**: the tree on the left shows each expert with its
delegates (→) and skills (⚙); the editor shows the file itself; the problems list checks it as
you type. Choose a problem to jump to its line.

**Forms** (keys in the tree, or the command palette) add, rename and delete experts, edit their
description, instruction and delegates, the model, and skills with their pick / omit lists. They
change only what you edit: comments, order and formatting elsewhere stay as they are. Edits land
in the editor; **Ctrl+S** writes the file (atomically, even when it has problems).

**Hot reload**: when perstack.toml changes on disk (another editor, git, an agent) the studio
reloads it within a second. If you have unsaved edits it shows the difference and asks which
version to keep; neither is lost.

**Ctrl+P** opens the command palette: every action, searchable.
"""


def keys_markdown(app_key_display: dict[str, str]) -> str:
    """The key table, one section per group, with the keys shown as ``app_key_display`` says."""
    sections: list[str] = []
    for group in GROUPS:
        specs = [spec for spec in KEYS if spec.group == group]
        if not specs:
            continue
        rows = [f"### {group}", "", "| Key | Action | |", "| --- | --- | --- |"]
        for spec in specs:
            rows.append(f"| `{app_key_display[spec.id]}` | {spec.description} | {spec.tooltip} |")
        sections.append("\n".join(rows))
    sections.append(
        "### Anywhere\n\n| Key | Action | |\n| --- | --- | --- |\n"
        "| `^p` | Command palette | Search every action. |\n"
        "| `tab` | Next | Move the focus to the next area (in the editor Tab indents). |"
    )
    return "\n\n".join(sections)


class HelpScreen(ModalScreen[None]):
    """Every key, grouped, and a short guide; Escape or F1 (the app's help key) closes it."""

    CSS_PATH = "help.tcss"
    BINDINGS: ClassVar[list[BindingType]] = bindings("form-cancel")

    def __init__(self, keymap: Keymap | None = None) -> None:
        """Build the help.

        Args:
            keymap: The keys the app binds (default: the registry's), so that a key the user
                moved is shown where it is now.
        """
        super().__init__()
        self.keymap = keymap or Keymap()

    def compose(self) -> ComposeResult:
        display = {spec.id: self.keymap.display(spec.id, self.app) for spec in KEYS}
        with Vertical(id="help-dialog"):
            yield Static("Perstack Studio: help", id="help-title", markup=False)
            with VerticalScroll(id="help-body"):
                yield Markdown(ABOUT, id="help-about")
                yield Markdown(keys_markdown(display), id="help-keys")
            yield Static("Esc closes", id="help-footer", markup=False)

    def on_mount(self) -> None:
        settle_cursors(self)
        self.query_one("#help-body").focus()

    def action_cancel(self) -> None:
        """Close the help."""
        self.dismiss(None)


def toggle_help(app: App[Any], keymap: Keymap) -> None:
    """Show the help screen on ``app``, or close it when it is showing (F1 either way)."""
    if isinstance(app.screen, HelpScreen):
        app.screen.dismiss(None)
    else:
        app.push_screen(HelpScreen(keymap))
