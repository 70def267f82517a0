"""A status line: one row of facts separated by " · ", under a screen's panes."""

from __future__ import annotations

from textual.widgets import Static


class StatusLine(Static):
    """What the screen is about right now (the file and its state, or the run and its tokens).

    The screen's stylesheet places and colours it; the owner calls :meth:`show` with the facts.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.parts: tuple[str, ...] = ()
        """The facts shown, in order."""

    def show(self, *parts: str) -> None:
        """Show ``parts``, joined by " · "."""
        if parts == self.parts:
            return
        self.parts = parts
        self.update(" · ".join(parts))
