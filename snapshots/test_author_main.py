"""Snapshots of the main screen: the team tree, the editor and the problems list."""

from __future__ import annotations

from snapshots.helpers import SIZE, analysed


class TestMainScreen:
    def test_multi_expert_team(self, snap_compare, studio_app) -> None:
        """You should see the Author tab of a three-expert team.

        Left, the Team tree: "model claude-sonnet-4-5" first, then game-director (v1.2.0) with
        three delegates (→ @ai-gaming/level-designer, → story-writer, → the registry expert
        @ai-gaming/sound-designer@1.0.0 marked "registry"), @ai-gaming/level-designer (v0.3.1)
        with its ⚙ @perstack/base skill ("stdio · pick 3"), and story-writer delegating back to
        game-director. Right, perstack.toml with TOML colours and line numbers, "saved" on its
        bottom border; below it "Problems · 2 warnings", both on line 25: the delegation cycle
        game-director → story-writer → game-director, and the registry delegate. The status line
        says "perstack.toml · 3 experts · no unsaved edits · opened" and the footer lists the
        tree's keys (e Edit, a Add expert, s Add skill, r Rename, d Delete) and ^s Save.
        """
        assert snap_compare(studio_app("team.toml"), terminal_size=SIZE, run_before=analysed)

    def test_diagnostics_on_a_broken_file(self, snap_compare, studio_app) -> None:
        """You should see a file with many problems, with the problems list focused.

        The Problems border title counts the errors and warnings. Each row has a line number,
        a red "✗ error" or yellow "! warning", the dotted key and the message (model must be a
        string, reasoningBudget not a level, runtime unknown, maxSteps at least 1, ...). The tree
        still shows "writer ✗" with its delegate "Editor not defined" and three skills, and the
        expert "Bad Key ✗".
        """

        async def focus_problems(pilot) -> None:
            await analysed(pilot)
            await pilot.press("f4")

        assert snap_compare(
            studio_app("invalid/many_problems.toml"), terminal_size=SIZE, run_before=focus_problems
        )
