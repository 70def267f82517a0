"""Unexpected failures, shown instead of crashing the app."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from studio.keys import bindings
from studio.screens import settle_cursors


class ErrorModal(ModalScreen[None]):
    """A titled error: what failed (``header``) and the error itself."""

    BINDINGS = bindings("form-cancel")

    DEFAULT_CSS = """
    ErrorModal {
        align: center middle;
        & > #error-dialog {
            width: 80;
            max-height: 80%;
            height: auto;
            border: thick $error;
            background: $surface;
            padding: 1 2;
        }
        & #error-title { text-style: bold; color: $text-error; }
        & #error-header { margin: 1 0; }
        & #error-body { height: auto; max-height: 16; color: $text-muted; }
        & Button { margin-top: 1; }
    }
    """

    def __init__(self, title: str, header: str, error: BaseException | str) -> None:
        super().__init__()
        self._title = title
        self._header = header
        self._error = error

    def compose(self) -> ComposeResult:
        error = self._error
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        with Vertical(id="error-dialog"):
            yield Static(self._title, id="error-title", markup=False)
            yield Static(self._header, id="error-header", markup=False)
            with VerticalScroll(id="error-body"):
                yield Static(text, markup=False)
            yield Button("Close", id="close", variant="primary")

    def on_mount(self) -> None:
        settle_cursors(self)
        self.query_one(Button).focus()

    def on_button_pressed(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        """Close the dialog."""
        self.dismiss(None)
