"""What the studio's screens may ask of the app that shows them, without importing the app.

The app module pushes the screens, so it imports them; a screen that imported the app back would
close an import cycle. Screens see the app through :class:`StudioHost` instead, which
:class:`~studio.app.StudioApp` satisfies.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, cast

from textual.app import App

Clock = Callable[[], datetime]
"""The wall clock (tests and snapshots fix it)."""


def local_now() -> datetime:
    """The wall clock in the local time zone."""
    return datetime.now(UTC).astimezone()


class StudioHost(Protocol):
    """The studio app as its screens use it."""

    now: Clock
    """The clock, for the times the status line shows."""
    watch_file: bool
    """Reload perstack.toml when it changes on disk."""

    def action_help(self) -> None:
        """Show the help screen, or close it when it is showing."""


def host_of(app: App[object]) -> StudioHost:
    """``app`` as the studio app (screens that need it are only ever shown by it)."""
    return cast(StudioHost, app)
