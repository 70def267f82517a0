"""Snapshots of the authoring dialogs: the expert and skill forms, prompts, confirmations and
the reload-conflict dialog."""

from __future__ import annotations

from textual.widgets import Input, Select, TextArea

from snapshots.helpers import SIZE, SMALL, analysed, on_tree_row, wait_until
from studio.messages import ConfigFileChanged
from studio.screens.confirm import ConfirmModal
from studio.screens.conflict import ReloadConflictScreen
from studio.screens.expert_form import ExpertFormScreen
from studio.screens.prompt import PromptModal
from studio.screens.skill_form import SkillFormScreen


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

    def test_expert_form_refuses_a_taken_key(self, snap_compare, studio_app) -> None:
        """You should see the New expert form staying open with a red reason above its buttons.

        The Key field holds "story-writer" (focused) and the Instruction "Write more.". Ctrl+S
        was pressed: the form says, in red, "An expert 'story-writer' already exists." and
        stays open with its Cancel and "Add expert" buttons.
        """

        async def submit_taken(pilot) -> None:
            await analysed(pilot)
            await pilot.press("a")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, ExpertFormScreen))
            form = pilot.app.screen
            form.query_one("#expert-key", Input).value = "story-writer"
            form.query_one("#expert-instruction", TextArea).text = "Write more."
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: bool(str(form.query_one("#form-error").render())))
            await pilot.pause()

        assert snap_compare(studio_app("team.toml"), terminal_size=SIZE, run_before=submit_taken)

    def test_expert_form_in_a_small_terminal(self, snap_compare, studio_app) -> None:
        """You should see the "Edit expert game-director" form in an 80×24 terminal.

        The dialog fills almost the whole screen. Its body scrolls in what the terminal leaves:
        the Instruction (focused, its two lines) and the "Delegates in this file" label show,
        with the body's scrollbar on the right; below it, still inside the dialog, the hint
        "Ctrl+S applies · Esc cancels" and the Cancel and Apply buttons.
        """

        async def open_form(pilot) -> None:
            await analysed(pilot)
            await on_tree_row(pilot, 1)
            await pilot.press("e")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, ExpertFormScreen))
            await pilot.pause()

        assert snap_compare(studio_app("team.toml"), terminal_size=SMALL, run_before=open_form)


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


class TestPrompts:
    def test_rename_refuses_an_invalid_key(self, snap_compare, studio_app) -> None:
        """You should see "Rename expert story-writer" (r in the tree) refusing "Story Writer".

        Label "New key", the input holding "Story Writer" (focused, selected); Enter was
        pressed and the dialog says, in red, "'Story Writer' is not a valid expert key: use
        lowercase letters, digits, '-' and '_', optionally prefixed by @scope/.", then the help
        line "Delegates lists that name this expert are updated too." and the buttons Cancel
        and Rename. Behind it story-writer is selected in the Team tree.
        """

        async def rename(pilot) -> None:
            await analysed(pilot)
            pilot.app.screen.team_tree.select_expert("story-writer")
            await pilot.press("r")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, PromptModal))
            pilot.app.screen.query_one(Input).value = "Story Writer"
            await pilot.press("enter")
            await pilot.pause()

        assert snap_compare(studio_app("team.toml"), terminal_size=SIZE, run_before=rename)

    def test_model_with_a_suggestion(self, snap_compare, studio_app) -> None:
        """You should see the "Model" dialog (Ctrl+O) with "gpt-4" typed and a completion.

        Label "Model id (any model your provider serves)", the input reading "gpt-4" followed
        by the suggested ".1" in grey (gpt-4.1, from the known models; the cursor on the "."),
        the help line "Leave empty for the default (claude-sonnet-4-5); --model on the command
        line still overrides it.", and the buttons Cancel and Apply.
        """

        async def model(pilot) -> None:
            await analysed(pilot)
            await pilot.press("ctrl+o")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, PromptModal))
            await pilot.press(*"gpt-4")
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()

        assert snap_compare(studio_app("minimal.toml"), terminal_size=SIZE, run_before=model)


class TestConfirmations:
    def test_delete_expert(self, snap_compare, studio_app) -> None:
        """You should see "Delete expert game-director?" over the main screen.

        It explains that the table and skills are removed from perstack.toml (undo with Ctrl+Z
        until you save) and that delegates lists naming it are updated. Buttons Cancel and a red
        "Delete" (focused).
        """

        async def delete(pilot) -> None:
            await analysed(pilot)
            await on_tree_row(pilot, 1)
            await pilot.press("d")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal))
            await pilot.pause()

        assert snap_compare(studio_app("team.toml"), terminal_size=SIZE, run_before=delete)

    def test_remove_the_base_skill(self, snap_compare, studio_app) -> None:
        """You should see "Remove skill @perstack/base?" with a warning about what it means.

        The message says the skill's table is removed from @ai-gaming/level-designer, and that
        @ai-gaming/level-designer lists skills, so it needs @perstack/base. Buttons Cancel and a
        red "Remove" (focused).
        """

        async def remove(pilot) -> None:
            await analysed(pilot)
            await on_tree_row(pilot, 6)
            await pilot.press("d")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal))
            await pilot.pause()

        assert snap_compare(studio_app("team.toml"), terminal_size=SIZE, run_before=remove)

    def test_quit_with_unsaved_edits(self, snap_compare, studio_app) -> None:
        """You should see "Quit without saving?" after Ctrl+Q with unsaved edits.

        The message says perstack.toml has unsaved edits: quit anyway and lose them, or cancel
        and save with Ctrl+S. Buttons Cancel and a red "Quit without saving" (focused). Behind
        it the header reads "perstack.toml ● modified".
        """

        async def quit_dirty(pilot) -> None:
            await analysed(pilot)
            pilot.app.screen.editor.insert("# a note\n", (0, 0))
            await wait_until(pilot, lambda: pilot.app.screen.dirty)
            await pilot.press("ctrl+q")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal))
            await pilot.pause()

        assert snap_compare(studio_app("minimal.toml"), terminal_size=SIZE, run_before=quit_dirty)


class TestSkillForm:
    def test_new_stdio_skill(self, snap_compare, studio_app) -> None:
        """You should see "New skill for hello", opened with "s" on an expert with no skills.

        Type "MCP server started as a command (mcpStdioSkill)"; the Name field focused
        (placeholder "github"); a note that hello has no skills yet, so @perstack/base (files,
        exec, todos) is added too; then Command, Package, Arguments and the environment
        variables with their placeholders (the body scrolls on to lazyInit, Pick and Omit);
        buttons Cancel and "Add skill" below the hint "Ctrl+S applies · Esc cancels".
        """

        async def add(pilot) -> None:
            await analysed(pilot)
            await on_tree_row(pilot, 1)
            await pilot.press("s")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, SkillFormScreen))
            await pilot.pause()

        assert snap_compare(studio_app("minimal.toml"), terminal_size=SIZE, run_before=add)

    def test_new_interactive_skill(self, snap_compare, studio_app) -> None:
        """You should see the New skill form switched to an interactive skill.

        Type "Questions answered by the user (interactiveSkill)"; the Name field holds "ask";
        the command fields are gone and the tool fields show instead: Tool name (placeholder
        "askUser"), Tool description (placeholder "Ask the user a question") and the Input JSON
        schema, prefilled with '{"type": "object", "properties": {"question": {"type":
        "string"}}}'.
        """

        async def interactive(pilot) -> None:
            await analysed(pilot)
            await on_tree_row(pilot, 1)
            await pilot.press("s")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, SkillFormScreen))
            form = pilot.app.screen
            form.query_one("#skill-type", Select).value = "interactiveSkill"
            await wait_until(pilot, lambda: form.has_class("-interactive"))
            form.query_one("#skill-name", Input).value = "ask"
            await pilot.pause()

        assert snap_compare(studio_app("minimal.toml"), terminal_size=SIZE, run_before=interactive)

    def test_edit_skill_with_pick_and_env(self, snap_compare, studio_app) -> None:
        """You should see "Edit skill github of toolbox" with the skill's values filled in.

        The body has scrolled down to the focused Description field, which holds "GitHub issues
        and pull requests." (selected). Above it: the lazyInit box ticked (X), Pick
        "list_issues, create_issue", Omit empty (placeholder "exec") and the allowed domains
        "api.github.com, *.githubusercontent.com"; below it the Rule "Never push to main.".
        The primary button reads "Apply".
        """

        async def edit(pilot) -> None:
            await analysed(pilot)
            await on_tree_row(pilot, 3)
            await pilot.press("e")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, SkillFormScreen))
            await pilot.pause()

        assert snap_compare(studio_app("all_skill_types.toml"), terminal_size=SIZE, run_before=edit)
