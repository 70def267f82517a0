"""The question of an interactive tool: the run paused, the user answers, the run resumes.

The dialog is built from the tool's JSON schema: one input per string or number property (the
model's arguments shown beside each), or a free text area when the schema names no properties.
It returns the answer text (a JSON object when there are several fields), or ``None``.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea

from studio.keys import bindings
from studio.screens import settle_cursors


def answer_fields(schema: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(name, type, description)`` of the schema's string and number properties."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return []
    fields = []
    for name, spec in properties.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind in ("string", "number", "integer"):
            fields.append((name, kind, str(spec.get("description", ""))))
    return fields


class InteractiveToolModal(ModalScreen[str | None]):
    """Asks the user for the answer to a pending interactive tool call."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("interactive-answer", "interactive-later")

    DEFAULT_CSS = """
    InteractiveToolModal {
        align: center middle;
        & > #ask-dialog {
            width: 84;
            max-height: 90%;
            height: auto;
            border: thick $accent;
            background: $surface;
            padding: 1 2;
        }
        & #ask-title { text-style: bold; color: $accent; }
        & #ask-args { height: auto; max-height: 12; margin: 1 0; color: $text-muted; }
        & .ask-label { margin-top: 1; }
        & TextArea { height: 6; }
        & #ask-buttons { height: auto; margin-top: 1; align-horizontal: right; }
        & #ask-buttons Button { margin-left: 2; }
    }
    """

    def __init__(self, tool_name: str, args: dict[str, Any], schema: dict[str, Any]) -> None:
        super().__init__()
        self.tool_name = tool_name
        self.args = args
        self.schema = schema
        self.fields = answer_fields(schema)

    def compose(self) -> ComposeResult:
        with Vertical(id="ask-dialog"):
            yield Static(
                Text.assemble(("? ", "bold"), (self.tool_name, "bold"), " needs your answer"),
                id="ask-title",
            )
            with VerticalScroll(id="ask-args"):
                yield Static(_args_text(self.args), markup=False)
            if self.fields:
                for name, kind, description in self.fields:
                    label = f"{name} ({kind})" + (f": {description}" if description else "")
                    yield Label(label, classes="ask-label", markup=False)
                    yield Input(
                        placeholder=_placeholder(self.args.get(name)),
                        type="number" if kind in ("number", "integer") else "text",
                        id=f"ask-field-{name}",
                    )
            else:
                yield Label("Your answer", classes="ask-label")
                yield TextArea(id="ask-text")
            with Horizontal(id="ask-buttons"):
                yield Button("Later", id="ask-later")
                yield Button("Answer", id="ask-submit", variant="primary")

    def on_mount(self) -> None:
        settle_cursors(self)
        self.query("Input, TextArea").first().focus()

    def answer(self) -> str:
        """The answer text: the only field's value, or a JSON object of all fields."""
        if not self.fields:
            return self.query_one("#ask-text", TextArea).text.strip()
        values = {
            name: self.query_one(f"#ask-field-{name}", Input).value.strip()
            for name, _, _ in self.fields
        }
        if len(values) == 1:
            return next(iter(values.values()))
        return json.dumps(values, ensure_ascii=False)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        index = inputs.index(event.input)
        if index + 1 < len(inputs):
            inputs[index + 1].focus()
        else:
            self.action_submit()

    @on(Button.Pressed, "#ask-submit")
    def action_submit(self) -> None:
        """Send the answer (an empty answer is not sent)."""
        text = self.answer()
        if not text:
            self.notify("Type an answer first, or press Esc to answer later.", severity="warning")
            return
        self.dismiss(text)

    @on(Button.Pressed, "#ask-later")
    def action_cancel(self) -> None:
        """Close without answering."""
        self.dismiss(None)


def _placeholder(value: Any) -> str:
    if value is None:
        return "your answer"
    return str(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _args_text(args: dict[str, Any]) -> str:
    if not args:
        return "(no arguments)"
    return "\n".join(
        f"{key}: {value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
        for key, value in args.items()
    )
