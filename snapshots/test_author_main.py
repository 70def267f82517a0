"""Snapshots of the main screen: the team tree, the editor, the problems list, the palette."""

from __future__ import annotations

from textual.command import CommandList, CommandPalette

from snapshots.helpers import SIZE, VARIANTS, analysed, wait_until


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
        tree's keys (e Edit, a Add expert, s Add skill, r Rename, d Delete), ^s Save, ^n New
        expert, ^o Model, ^t New team, ^q Quit, f1 Help and ^p palette, without padding.
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


class TestMainScreenVariants:
    @VARIANTS
    def test_team_in_each_size_and_theme(self, snap_compare, studio_app, size, theme) -> None:
        """You should see the Author tab of the three-expert team of team.toml.

        The same screen as TestMainScreen.test_multi_expert_team, in a small (80×24) or a large
        (160×48) terminal, with Textual's dark or light theme: the Team tree on the left
        (model claude-sonnet-4-5, game-director with its three delegates, the level designer
        with its ⚙ @perstack/base skill, story-writer), perstack.toml with line numbers on the
        right, "Problems · 2 warnings" below it, the status line and the footer keys. Nothing
        overlaps and the borders are whole. At 80×24 the panes are narrow: tree rows and editor
        lines are cut at the pane's edge, the problem messages wrap inside their column, and the
        footer keeps e, a, s, ^s Save, ^t New team, ^q Quit and f1 Help (the wide-only keys are
        left out). At 160×48 the whole first expert table, both warnings and every key fit.
        """
        app = studio_app("team.toml", theme=theme)
        assert snap_compare(app, terminal_size=size, run_before=analysed)


class TestProblems:
    def test_syntax_error(self, snap_compare, studio_app) -> None:
        """You should see a file that does not parse, as it is opened.

        The Problems border title reads "Problems · 1 error" in red; its row says line 5, a red
        "✗ error" and "invalid TOML: Invalid value at column 15 (strings must be quoted:
        description = "Writes things.")". The editor shows the six lines of the file. The Team
        tree is empty (no text has parsed yet) and the status line names no expert count.
        """
        assert snap_compare(
            studio_app("invalid/syntax_error.toml"), terminal_size=SIZE, run_before=analysed
        )

    def test_tree_keeps_the_last_valid_version(self, snap_compare, studio_app) -> None:
        """You should see team.toml after a typing slip broke its syntax, not yet saved.

        Line 2 of the editor now reads 'model = "claude-sonnet-4-5' (the closing quote deleted).
        The Team tree still shows the team as it last parsed, with "last valid version" in
        yellow on its bottom border; Problems counts one red "✗ error" on line 2 ("invalid TOML:
        Illegal character '\\n' at column 27"), and the header says "perstack.toml ● modified".
        """

        async def break_a_string(pilot) -> None:
            await analysed(pilot)
            screen = pilot.app.screen
            screen.editor.delete((1, 26), (1, 27))
            await wait_until(
                pilot,
                lambda: screen.analysis is not None and screen.analysis.outline is None,
            )
            await pilot.pause()

        assert snap_compare(studio_app("team.toml"), terminal_size=SIZE, run_before=break_a_string)

    def test_unknown_keys_with_suggestions(self, snap_compare, studio_app) -> None:
        """You should see the problems of a file full of typos, the problems list focused.

        Its border title reads "Problems · 2 errors · 15 warnings"; the first rows are yellow
        "! warning"s on lines 1, 2, 3, 9 and 10: unknown keys with a "did you mean" (modle →
        model, max_steps → maxSteps, reasoningbudget → reasoningBudget, baseURL → baseUrl, ...).
        The Team tree shows "model (default)", writer marked ✗ with its delegates (editor and
        reviewr "not defined", @acme/fact-checker "registry") and skills (@perstack/base
        stdio, ask interactive · 1 tool), and reviewer with @perstack/base.
        """

        async def focus_problems(pilot) -> None:
            await analysed(pilot)
            await pilot.press("f4")
            await pilot.pause()

        assert snap_compare(studio_app("typos.toml"), terminal_size=SIZE, run_before=focus_problems)

    def test_enter_on_a_problem_jumps_to_its_line(self, snap_compare, studio_app) -> None:
        """You should see the editor focused on the line of the last problem of
        many_problems.toml.

        The problems list was focused (F4), moved to its last row (End) and Enter pressed: the
        editor now has the focus (bright border), scrolled down to lines 7-29, and its cursor is
        at the start of line 28, 'instrucion = "Oops."'. The Problems list below keeps its last
        row highlighted: the line-28 warning "unknown key (ignored; did you mean
        instruction?)".
        """

        async def jump(pilot) -> None:
            await analysed(pilot)
            await pilot.press("f4", "end", "enter")
            await pilot.pause()

        assert snap_compare(
            studio_app("invalid/many_problems.toml"), terminal_size=SIZE, run_before=jump
        )


class TestEditing:
    def test_unsaved_edits(self, snap_compare, studio_app) -> None:
        """You should see minimal.toml with an expert typed into the editor and not saved.

        The header reads "perstack.toml ● modified", the editor's bottom border says
        "● modified" in yellow instead of "saved", and the status line, in yellow, says
        "perstack.toml · 2 experts · unsaved edits · opened". The Team tree has caught up with
        the text: "model (default)", hello and the new critic; "✓ No problems found."
        """

        async def type_an_expert(pilot) -> None:
            await analysed(pilot)
            screen = pilot.app.screen
            end = screen.editor.document.end
            screen.editor.insert('\n[experts."critic"]\ninstruction = "Criticise."\n', end)
            await wait_until(
                pilot,
                lambda: (
                    screen.analysis is not None
                    and screen.analysis.outline is not None
                    and "critic" in screen.analysis.outline.expert_keys
                ),
            )
            await pilot.pause()

        assert snap_compare(
            studio_app("minimal.toml"), terminal_size=SIZE, run_before=type_an_expert
        )

    def test_every_skill_type_in_the_tree(self, snap_compare, studio_app) -> None:
        """You should see the toolbox expert with one skill of each type in the Team tree.

        Under toolbox (v2.0.0-beta.1+build.5): ⚙ @perstack/base "stdio · omit 1", ⚙ github
        "stdio · pick 2", ⚙ time "stdio", ⚙ search "sse · pick 1 · omit 1", ⚙ docs "http" and
        ⚙ ask "interactive · 2 tools", skill names in orange and details in grey. The status
        line says "1 expert" and the Problems list "✓ No problems found."
        """
        assert snap_compare(
            studio_app("all_skill_types.toml"), terminal_size=SIZE, run_before=analysed
        )

    def test_runs_tab(self, snap_compare, studio_app) -> None:
        """You should see the Runs tab selected (underlined) instead of Author.

        Its placeholder explains that runs of the team will appear there, how to run an expert
        from a terminal meanwhile ('perstack start <expert> "<query>" --no-tui') and that F7
        shows the scores of the team's eval sets. The status line and the footer are those of
        the main screen, without the tree's keys.
        """

        async def runs(pilot) -> None:
            await analysed(pilot)
            pilot.app.screen.action_show_tab("runs")
            await pilot.pause()

        assert snap_compare(studio_app("minimal.toml"), terminal_size=SIZE, run_before=runs)


class TestCommandPalette:
    def test_palette_lists_the_team_commands(self, snap_compare, studio_app) -> None:
        """You should see the command palette (Ctrl+P) searching for "expert".

        The search box holds "expert" and the list below shows the six matching commands, each
        with its help line and the matched word underlined: "run: selected expert" (highlighted,
        first), "team: new (create-expert wizard)", "expert: add", "expert: edit hello",
        "expert: rename hello" and "expert: delete hello". The main screen is dimmed behind it.
        """

        async def palette(pilot) -> None:
            await analysed(pilot)
            await pilot.press("ctrl+p")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette))
            await pilot.press(*"expert")
            options = pilot.app.screen.query_one(CommandList)
            await wait_until(pilot, lambda: options.option_count >= 6)
            await pilot.pause()

        assert snap_compare(studio_app("minimal.toml"), terminal_size=SIZE, run_before=palette)
