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


FORM_BODY_MAX = 30
"""Rows a form's scrolling body takes at most on a tall terminal."""
FORM_CHROME = 12
"""Rows around a form's body: its border, title, error line and buttons."""


def fit_form_body(screen: Screen[Any]) -> None:
    """Let a form's ``#form-body`` scroll within the terminal, so its buttons stay on screen.

    A fixed maximum (30 rows) pushed the buttons below the dialog's edge at 80×24.
    """
    body = screen.query_one("#form-body")
    body.styles.max_height = max(4, min(FORM_BODY_MAX, screen.app.size.height - FORM_CHROME))
