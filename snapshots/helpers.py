"""Waits shared by the snapshot suites."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot

SIZE = (120, 40)


async def wait_until(pilot: Pilot[object], condition: Callable[[], bool]) -> None:
    """Let the app work until ``condition`` holds (no fixed sleeps)."""
    async with asyncio.timeout(5):
        while not condition():
            await pilot.pause()


async def analysed(pilot: Pilot[object]) -> None:
    """Wait for the main screen's first diagnostics."""
    await wait_until(pilot, lambda: getattr(pilot.app.screen, "analysis", None) is not None)
    await pilot.pause()
