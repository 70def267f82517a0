"""The reload-conflict dialog: perstack.toml changed on disk while the editor has unsaved edits."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from studio.keys import bindings
from studio.screens import settle_cursors
from studio.widgets.editor_pane import Choice


def diff_content(diff: str) -> Content:
    """A unified diff with removed, added and hunk lines in the theme's colours."""
    if not diff.strip():
        return Content.styled("The two versions are identical.", "$text-muted")
    parts: list[str | tuple[str, str]] = []
    for line in diff.splitlines():
        if line.startswith(("---", "+++")):
            parts.append((line, "bold"))
        elif line.startswith("@@"):
            parts.append((line, "$text-accent"))
        elif line.startswith("-"):
            parts.append((line, "$text-error"))
        elif line.startswith("+"):
            parts.append((line, "$text-success"))
        else:
            parts.append((line, "$text-muted"))
        parts.append("\n")
    return Content.assemble(*parts[:-1])


class ReloadConflictScreen(ModalScreen[Choice]):
    """Ask which version to keep, with the diff between them; dismisses with the choice.

    Neither choice loses anything: keeping yours leaves the file on disk as it is until you
    save, and taking the disk version keeps yours in the editor's undo history. Escape keeps
    yours.
    """

    CSS_PATH = "conflict.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        *bindings("conflict-keep-mine", "conflict-take-disk", "form-cancel")
    ]

    def __init__(self, label: str, *, mine: str, disk: str) -> None:
        """Build the dialog.

        Args:
            label: The file as shown to the user.
            mine: The editor's text (unsaved edits).
            disk: The file's new text on disk.
        """
        super().__init__()
        self._label = label
        self._mine = mine
        self._disk = disk

    def compose(self) -> ComposeResult:
        with Vertical(id="conflict-dialog"):
            yield Static(f"{self._label} changed on disk", id="conflict-title", markup=False)
            yield Static(
                "You have unsaved edits. Which version do you want to keep? Nothing is lost "
                "either way: keeping yours leaves the file on disk alone until you save; taking "
                "the disk version keeps your edits in the editor's undo (Ctrl+Z).",
                id="conflict-explanation",
                markup=False,
            )
            with VerticalScroll(id="conflict-diff") as scroll:
                scroll.border_title = "− on disk   + your edits"
                yield Static(self._diff(), id="conflict-diff-text")
            with Horizontal(id="conflict-buttons"):
                yield Button("Keep my edits (m)", id="keep-mine", variant="primary")
                yield Button("Take the disk version (t)", id="take-disk", variant="warning")

    def on_mount(self) -> None:
        settle_cursors(self)
        self.query_one("#keep-mine", Button).focus()

    def _diff(self) -> Content:
        from runtime.config import unified_diff

        return diff_content(unified_diff(self._disk, self._mine, label=self._label))

    def update_versions(self, *, mine: str, disk: str) -> None:
        """Show a newer pair of versions (the file changed again while the dialog was open)."""
        self._mine, self._disk = mine, disk
        self.query_one("#conflict-diff-text", Static).update(self._diff())

    @on(Button.Pressed, "#keep-mine")
    def action_keep_mine(self) -> None:
        """Keep the editor's text."""
        self.dismiss("mine")

    @on(Button.Pressed, "#take-disk")
    def action_take_disk(self) -> None:
        """Load the file on disk into the editor."""
        self.dismiss("disk")

    def action_cancel(self) -> None:
        """Escape keeps the edits: the safe choice, nothing on disk changes."""
        self.dismiss("mine")
