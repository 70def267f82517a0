"""The studio's screens: the main screen, the empty state, forms and dialogs."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen


def settle_cursors(screen: Screen[Any]) -> None:
    """Stop cursor blinking on ``screen`` when the app asks for it (snapshot tests do)."""
    if getattr(screen.app, "cursor_blink", True):
        return
    for widget in screen.query("Input, TextArea"):
        widget.cursor_blink = False  # type: ignore[attr-defined]
