"""Helpers for driving the studio with Pilot: a fixed clock, message waits, the app factory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from textual.message import Message
from textual.pilot import Pilot

from studio.app import StudioApp, make_app

CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "configs"
FIXED_NOW = datetime(2025, 1, 2, 12, 34, 56, tzinfo=UTC)
SIZE = (120, 40)
TIMEOUT = 5.0


def fixed_now() -> datetime:
    return FIXED_NOW


class Messages:
    """Every message the app dispatches, with a way to wait for one (no sleeps)."""

    def __init__(self) -> None:
        self.seen: list[Message] = []
        self._arrived = asyncio.Event()

    def __call__(self, message: Message) -> None:
        self.seen.append(message)
        self._arrived.set()

    def of(self, kind: type[Message]) -> list[Message]:
        return [message for message in self.seen if isinstance(message, kind)]

    async def wait_for(
        self,
        kind: type[Message],
        predicate: Callable[[Message], bool] = lambda _message: True,
        *,
        after: int = 0,
    ) -> Message:
        """The first message of ``kind`` (from index ``after``) that satisfies ``predicate``."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                for message in self.seen[after:]:
                    if isinstance(message, kind) and predicate(message):
                        return message
                self._arrived.clear()
                await self._arrived.wait()


async def wait_until(pilot: Pilot[object], condition: Callable[[], bool]) -> None:
    """Let the app process messages until ``condition`` holds (bounded by a timeout)."""
    async with asyncio.timeout(TIMEOUT):
        while not condition():
            await pilot.pause()


def studio(cwd: Path, *, watch: bool = False, config: str | None = None) -> StudioApp:
    """The app as the CLI builds it, with a fixed clock."""
    return make_app(config, cwd=cwd, now=fixed_now, watch=watch, cursor_blink=False)
