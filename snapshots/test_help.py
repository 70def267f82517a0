"""Snapshots of the help screen (F1): how the studio works and every key, from the registry."""

from __future__ import annotations

from snapshots.helpers import SIZE, analysed, wait_until
from studio.screens.help import HelpScreen


async def help_open(pilot) -> None:
    await analysed(pilot)
    await pilot.press("f1")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))
    await pilot.pause()


class TestHelp:
    def test_help_over_the_main_screen(self, snap_compare, studio_app) -> None:
        """You should see the help dialog, "Perstack Studio: help", over the dimmed main screen.

        First the guide: the tree, the editor and the problems list; Forms (keys in the tree or
        the command palette) with Ctrl+S writing the file; Hot reload; Ctrl+P for the palette.
        Below it the "File" keys table (Key, Action and a tooltip column: ^s Save, ^r Reload)
        and the start of the "Team" table; a scrollbar on the right. The last line of the
        dialog says "Esc closes".
        """
        assert snap_compare(studio_app("minimal.toml"), terminal_size=SIZE, run_before=help_open)
