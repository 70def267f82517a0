"""Snapshots of the authoring dialogs: the expert form and the reload-conflict dialog."""

from __future__ import annotations

from snapshots.helpers import SIZE, analysed, wait_until
from studio.messages import ConfigFileChanged
from studio.screens.conflict import ReloadConflictScreen
from studio.screens.expert_form import ExpertFormScreen


class TestExpertForm:
    def test_edit_expert_form(self, snap_compare, studio_app) -> None:
        """You should see the "Edit expert game-director" form over the main screen.

        Fields: Key "game-director", Version "1.2.0", the Description, a multi-line Instruction
        ("You direct a small game studio." and a second line), "Delegates in this file" with
        @ai-gaming/level-designer and story-writer both ticked, "Other delegates" holding
        "@ai-gaming/sound-designer@1.0.0", and Tags "games, coordinator". Buttons Cancel and
        Apply at the bottom, with the hint "Ctrl+S applies · Esc cancels".
        """

        async def open_form(pilot) -> None:
            await analysed(pilot)
            await pilot.press("down", "e")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, ExpertFormScreen))
            await pilot.pause()

        assert snap_compare(studio_app("team.toml"), terminal_size=SIZE, run_before=open_form)


class TestReloadConflict:
    def test_reload_conflict_dialog(self, snap_compare, studio_app) -> None:
        """You should see the dialog "perstack.toml changed on disk" over the main screen.

        It explains that neither version is lost, then shows a diff titled
        "− on disk   + your edits": red lines for the critic expert that only the disk has, and a
        green "# my unsaved note" line from the editor. Buttons: "Keep my edits (m)" (focused) and
        "Take the disk version (t)".
        """

        async def conflict(pilot) -> None:
            await analysed(pilot)
            screen = pilot.app.screen
            screen.editor.insert("# my unsaved note\n", (0, 0))
            await pilot.pause()
            disk = screen.path.read_text() + '\n[experts."critic"]\ninstruction = "Criticise."\n'
            screen.post_message(ConfigFileChanged(screen.path, disk.encode()))
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, ReloadConflictScreen))
            await pilot.pause()

        assert snap_compare(studio_app("minimal.toml"), terminal_size=SIZE, run_before=conflict)
