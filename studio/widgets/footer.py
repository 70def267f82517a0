"""The studio's footer: Textual's, with the essentials kept in view on a narrow terminal.

At 80 columns a screen's keys do not all fit, and Textual's footer cuts the last ones, which are
the app's own: Ctrl+Q and F1. Below :data:`NARROW` columns this footer leaves out the keys the
registry marks ``wide_only`` (each has a shorter way or is in the palette and on the help
screen), and below :data:`COMPACT` it drops the padding between keys.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from studio.keys import wide_only_actions

NARROW = 100
"""Below this width, keys marked wide-only are left out."""
COMPACT = 140
"""Below this width, keys are drawn without padding."""


class StudioFooter(Footer):
    """Key bindings of the focused widget, the screen and the app, fitted to the width."""

    def __init__(self) -> None:
        super().__init__()
        self._narrow: bool | None = None

    def compose(self) -> ComposeResult:
        width = self.app.size.width
        self._narrow = width < NARROW
        self.compact = width < COMPACT
        hidden = wide_only_actions() if self._narrow else frozenset()
        for widget in super().compose():
            if isinstance(widget, FooterKey) and widget.action in hidden:
                continue
            yield widget

    def on_resize(self, _event: events.Resize) -> None:
        narrow = self.app.size.width < NARROW
        if self._narrow is not None and narrow != self._narrow:
            self.call_after_refresh(self.recompose)
