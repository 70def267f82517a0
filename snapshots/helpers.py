"""Waits and variants shared by the snapshot suites."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from textual.pilot import Pilot

SIZE = (120, 40)
SMALL = (80, 24)
LARGE = (160, 48)
DARK = "textual-dark"
LIGHT = "textual-light"

VARIANTS = pytest.mark.parametrize(
    ("size", "theme"),
    [
        pytest.param(SMALL, DARK, id="80x24-dark"),
        pytest.param(SMALL, LIGHT, id="80x24-light"),
        pytest.param(LARGE, DARK, id="160x48-dark"),
        pytest.param(LARGE, LIGHT, id="160x48-light"),
    ],
)
"""The terminal sizes and themes a screen is checked in: small and large, dark and light."""

SMALL_LIGHT_LARGE_DARK = pytest.mark.parametrize(
    ("size", "theme"),
    [pytest.param(SMALL, LIGHT, id="80x24-light"), pytest.param(LARGE, DARK, id="160x48-dark")],
)
"""Two of :data:`VARIANTS`, for screens that take longer to bring up."""


async def wait_until(pilot: Pilot[object], condition: Callable[[], bool]) -> None:
    """Let the app work until ``condition`` holds (no fixed sleeps)."""
    async with asyncio.timeout(5):
        while not condition():
            await pilot.pause()


async def analysed(pilot: Pilot[object]) -> None:
    """Wait for the main screen's first diagnostics."""
    await wait_until(pilot, lambda: getattr(pilot.app.screen, "analysis", None) is not None)
    await pilot.pause()


async def on_tree_row(pilot: Pilot[object], row: int) -> None:
    """Put the Team tree's cursor on ``row`` (0: the model), as arrow keys would, but without
    the editor scrolling after it (its animation only slows the pictures down)."""
    pilot.app.screen.team_tree.cursor_line = row  # type: ignore[attr-defined]
    await pilot.pause()
