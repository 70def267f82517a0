"""The problems list: each diagnostic of perstack.toml on a row; choosing a row jumps to it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.table import Table
from rich.text import Text
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

if TYPE_CHECKING:
    from runtime.config import Diagnostic


class DiagnosticsPanel(OptionList):
    """The diagnostics of the editor's text, sorted by line.

    Choosing a row (Enter or a click) posts :class:`DiagnosticsPanel.JumpRequested`; the screen
    moves the editor there.

    | Key | Action |
    | :- | :- |
    | enter | Jump to the highlighted problem's line. |
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "diagnostics-panel--line",
        "diagnostics-panel--error",
        "diagnostics-panel--warning",
        "diagnostics-panel--key",
    }

    DEFAULT_CSS = """
    DiagnosticsPanel {
        border: round $border-blurred;
        border-title-color: $text-muted;
        &:focus { border: round $border; border-title-color: $text; }
        &.-errors { border-title-color: $text-error; }
        & > .diagnostics-panel--line { color: $text-muted; }
        & > .diagnostics-panel--error { color: $text-error; text-style: bold; }
        & > .diagnostics-panel--warning { color: $text-warning; text-style: bold; }
        & > .diagnostics-panel--key { color: $text-accent; }
    }
    """

    @dataclass
    class JumpRequested(Message):
        """The user chose a problem: move the editor to its line."""

        panel: DiagnosticsPanel
        line: int
        column: int | None

        @property
        def control(self) -> DiagnosticsPanel:
            """The panel that sent the message."""
            return self.panel

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)
        self._diagnostics: tuple[Diagnostic, ...] = ()
        self._shown = False
        self.border_title = "Problems"

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """What the panel shows."""
        return self._diagnostics

    def show(self, diagnostics: Sequence[Diagnostic]) -> None:
        """Replace the rows with ``diagnostics`` (sorted by line)."""
        diagnostics = tuple(diagnostics)
        if self._shown and diagnostics == self._diagnostics:
            return
        self._diagnostics, self._shown = diagnostics, True
        highlighted = self.highlighted
        errors = sum(1 for item in diagnostics if item.severity == "error")
        warnings = len(diagnostics) - errors
        self.set_class(errors > 0, "-errors")
        counts = [f"{errors} error{'s' * (errors != 1)}"] if errors else []
        if warnings:
            counts.append(f"{warnings} warning{'s' * (warnings != 1)}")
        self.border_title = "Problems" + (" · " + " · ".join(counts) if counts else "")
        if not diagnostics:
            self.set_options(
                [Option(Content.styled("✓ No problems found.", "$text-success"), disabled=True)]
            )
            return
        self.set_options(
            Option(self._row(item), id=str(index)) for index, item in enumerate(diagnostics)
        )
        if highlighted is not None:
            self.highlighted = min(highlighted, len(diagnostics) - 1)

    def _row(self, item: Diagnostic) -> Table:
        # A grid, so a long message wraps under itself rather than under the line number.
        style = self.get_component_rich_style
        row = Table.grid(padding=(0, 2))
        row.add_column(width=4, justify="right")
        row.add_column(width=9)
        row.add_column(ratio=1)
        where = str(item.line) if item.line is not None else "-"
        severity = "✗ error" if item.severity == "error" else "! warning"
        message = Text()
        if item.key:
            message.append(item.key, style("diagnostics-panel--key"))
            message.append(": ")
        message.append(item.message)
        row.add_row(
            Text(where, style("diagnostics-panel--line")),
            Text(severity, style(f"diagnostics-panel--{item.severity}")),
            message,
        )
        return row

    def _on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_id is None:
            return
        item = self._diagnostics[int(event.option_id)]
        if item.line is not None:
            self.post_message(self.JumpRequested(self, item.line, item.column))
