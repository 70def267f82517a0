"""A yes/no question in a modal."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from studio.keys import bindings
from studio.screens import settle_cursors


class ConfirmModal(ModalScreen[bool | None]):
    """Ask before doing something that loses work; dismisses with ``True`` to go ahead.

    The other button dismisses with ``False``; so does Escape, unless the question has two ways
    to go ahead (``escape_backs_out``): then Escape dismisses with ``None``, going neither way.
    """

    BINDINGS = bindings("form-cancel")

    DEFAULT_CSS = """
    ConfirmModal {
        align: center middle;
        & > #confirm-dialog {
            width: 64;
            height: auto;
            border: thick $border;
            background: $surface;
            padding: 1 2;
        }
        & #confirm-title { text-style: bold; margin-bottom: 1; }
        & #confirm-message { margin-bottom: 1; }
        & #confirm-buttons { height: auto; align-horizontal: right; }
        & Button { margin-left: 1; }
    }
    """

    def __init__(
        self,
        title: str,
        message: str,
        *,
        confirm_label: str = "OK",
        cancel_label: str = "Cancel",
        danger: bool = False,
        escape_backs_out: bool = False,
    ) -> None:
        super().__init__()
        self._escape_backs_out = escape_backs_out
        self._title = title
        self._message = message
        self._confirm_label = confirm_label
        self._cancel_label = cancel_label
        self._danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Static(self._title, id="confirm-title", markup=False)
            yield Static(self._message, id="confirm-message", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button(self._cancel_label, id="cancel")
                yield Button(
                    self._confirm_label,
                    id="confirm",
                    variant="error" if self._danger else "primary",
                )

    def on_mount(self) -> None:
        settle_cursors(self)
        self.query_one("#confirm", Button).focus()

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def _other(self) -> None:
        self.dismiss(False)

    def action_cancel(self) -> None:
        """Close without going ahead (Escape)."""
        self.dismiss(None if self._escape_backs_out else False)
