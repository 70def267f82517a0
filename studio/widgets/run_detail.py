"""The detail pane: everything about the node selected in the step tree."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

if TYPE_CHECKING:
    from rich.console import RenderableType


class RunDetail(VerticalScroll):
    """The job, run, step or tool call under the tree's cursor, scrollable.

    The screen renders the node (:meth:`studio.run_view.RunView.detail`) and calls :meth:`show`.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Detail"

    def compose(self) -> ComposeResult:
        yield Static("", markup=False)

    def show(self, detail: RenderableType) -> None:
        """Show ``detail``."""
        self.query_one(Static).update(detail)
