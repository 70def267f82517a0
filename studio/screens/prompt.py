"""A one-line question in a modal: rename an expert, set the model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Static

from studio.keys import bindings
from studio.screens import settle_cursors

Check = Callable[[str], str | None]
"""Returns why a value is refused, or ``None`` when it is fine."""


class PromptModal(ModalScreen[str | None]):
    """Ask for one value; dismisses with the stripped value, or ``None`` when cancelled."""

    BINDINGS = bindings("form-submit", "form-cancel")

    DEFAULT_CSS = """
    PromptModal {
        align: center middle;
        & > #prompt-dialog {
            width: 72;
            height: auto;
            border: thick $border;
            background: $surface;
            padding: 1 2;
        }
        & #prompt-title { text-style: bold; margin-bottom: 1; }
        & #prompt-help { color: $text-muted; margin-top: 1; }
        & #prompt-error { color: $text-error; height: auto; }
        & #prompt-buttons { height: auto; align-horizontal: right; margin-top: 1; }
        & Button { margin-left: 1; }
    }
    """

    def __init__(
        self,
        title: str,
        label: str,
        *,
        value: str = "",
        placeholder: str = "",
        help: str = "",
        suggestions: Sequence[str] = (),
        check: Check | None = None,
        submit_label: str = "Apply",
    ) -> None:
        super().__init__()
        self._title = title
        self._label = label
        self._value = value
        self._placeholder = placeholder
        self._help = help
        self._suggestions = list(suggestions)
        self._check = check
        self._submit_label = submit_label

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-dialog"):
            yield Static(self._title, id="prompt-title", markup=False)
            yield Label(self._label, markup=False)
            yield Input(
                self._value,
                placeholder=self._placeholder,
                id="prompt-input",
                suggester=SuggestFromList(self._suggestions, case_sensitive=False)
                if self._suggestions
                else None,
            )
            yield Static("", id="prompt-error", markup=False)
            if self._help:
                yield Static(self._help, id="prompt-help", markup=False)
            with Horizontal(id="prompt-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(self._submit_label, id="submit", variant="primary")

    def on_mount(self) -> None:
        settle_cursors(self)
        self.query_one(Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#submit")
    def action_submit(self) -> None:
        """Check the value and close with it."""
        value = self.query_one(Input).value.strip()
        problem = self._check(value) if self._check is not None else None
        if problem:
            self.query_one("#prompt-error", Static).update(problem)
            return
        self.dismiss(value)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without a value."""
        self.dismiss(None)
