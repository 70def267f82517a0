"""Snapshots of the user's settings at work: the theme and moved keys of a settings.toml.

The settings file is ``fixtures/settings/nord_moved_keys.toml``: theme "nord", Save moved to
Ctrl+W and New expert to Ctrl+E, and no question before deleting an expert.
"""

from __future__ import annotations

from snapshots.helpers import SIZE, analysed, on_tree_row, wait_until
from studio.screens.help import HelpScreen

SETTINGS = "nord_moved_keys.toml"


class TestSettings:
    def test_theme_and_keys_from_the_settings_file(self, snap_compare, studio_app) -> None:
        """You should see the main screen on team.toml in the Nord theme (blue-grey).

        The footer shows the moved keys where they are now: "^w Save" and "^e New expert"
        (no ^s or ^n), after "^o Model" and "^t New team"; the other keys are as usual (e Edit,
        a Add expert, s Add skill, r Rename, d Delete, ^q Quit, f1 Help, ^p palette).
        """
        app = studio_app("team.toml", settings=SETTINGS)
        assert snap_compare(app, terminal_size=SIZE, run_before=analysed)

    def test_help_lists_the_moved_keys(self, snap_compare, studio_app) -> None:
        """You should see the help's key tables with the user's keys, in the Nord theme.

        The help was scrolled down to the File and Team tables: Save reads "^w" and New expert
        "^e" (from settings.toml), while Reload keeps "^r", Model "^o", Next problem "^g", Run
        "f5" and New team "^t". The footer behind the dialog shows ^w Save and ^e New expert.
        """

        async def help_keys(pilot) -> None:
            await analysed(pilot)
            await pilot.press("f1")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))
            await pilot.pause()
            pilot.app.screen.query_one("#help-keys").scroll_visible(animate=False, top=True)
            await pilot.pause()

        app = studio_app("minimal.toml", settings=SETTINGS)
        assert snap_compare(app, terminal_size=SIZE, run_before=help_keys)

    def test_delete_without_asking(self, snap_compare, studio_app) -> None:
        """You should see team.toml right after "d" on game-director, with no question asked.

        The settings say deleteExpert = false, so the expert is gone at once: the Team tree
        lists the model, @ai-gaming/level-designer and story-writer (no delegates left), the
        header says "● modified" and the status line "perstack.toml · 2 experts · unsaved
        edits · opened". Two notifications, top right: "Edited: Deleted expert
        game-director." and "Delegates updated: Also removed it from the delegates of
        story-writer.". Problems: "✓ No problems found."
        """

        async def delete(pilot) -> None:
            await analysed(pilot)
            screen = pilot.app.screen
            await on_tree_row(pilot, 1)
            await pilot.press("d")
            await wait_until(
                pilot,
                lambda: (
                    screen.analysis is not None
                    and screen.analysis.outline is not None
                    and "game-director" not in screen.analysis.outline.expert_keys
                ),
            )
            await pilot.pause()

        app = studio_app("team.toml", settings=SETTINGS)
        assert snap_compare(app, terminal_size=SIZE, run_before=delete)
