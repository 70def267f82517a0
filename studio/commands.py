"""Command-palette providers.

:class:`StudioCommands` offers the main screen's commands that make sense right now, with
namespaced titles (``file: save``, ``expert: edit writer``, ``skill: add to writer``); structured
edits are offered only while the file parses. The screen builds the list of
:class:`PaletteCommand` (``MainScreen.palette_commands``); this module only matches and presents
it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True)
class PaletteCommand:
    """One command-palette entry valid on a screen right now."""

    title: str
    help: str
    run: Callable[[], object]


def _commands_of(screen: object) -> Sequence[PaletteCommand]:
    commands = getattr(screen, "palette_commands", None)
    return commands() if callable(commands) else ()


class StudioCommands(Provider):
    """The commands of the screen the palette was opened on."""

    async def discover(self) -> Hits:
        """Every command, for the palette's empty query."""
        for command in _commands_of(self.screen):
            yield DiscoveryHit(command.title, command.run, help=command.help)

    async def search(self, query: str) -> Hits:
        """The commands whose title matches ``query`` (fuzzy)."""
        matcher = self.matcher(query)
        for command in _commands_of(self.screen):
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), command.run, help=command.help)
