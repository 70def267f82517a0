"""The streaming pane: the end of the text the model is streaming, kept scrolled to the bottom."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from studio.run_view import stream_text

if TYPE_CHECKING:
    from studio.view_model import RunNode


class StreamPane(VerticalScroll):
    """What the run that streamed last is streaming: its reasoning, then its result.

    The screen says which run to follow (:meth:`follow`) and when to redraw (:meth:`show`);
    the pane redraws its text only when it changed.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.following: str | None = None
        """The run node whose text is shown (the one that streamed last)."""
        self._seen = ""
        self.border_title = "Streaming"

    def compose(self) -> ComposeResult:
        yield Static("", markup=False)

    def on_mount(self) -> None:
        self.anchor()

    def follow(self, node_id: str | None) -> None:
        """Show the text of ``node_id`` from the next :meth:`show` on."""
        self.following = node_id
        if node_id is None:
            self._seen = ""

    def show(self, node: RunNode | None) -> None:
        """Show what ``node`` (the run followed) has streamed so far."""
        if node is None:
            text = ""
            title = "Streaming"
        else:
            text = stream_text(node)
            title = f"Streaming · {node.expert_key}"
        if text != self._seen:
            self._seen = text
            self.query_one(Static).update(text)
        self.border_title = title
