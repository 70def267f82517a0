"""The main screen: tree, editor, problems while typing, jump to line, saving."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from studio.messages import AnalysisReady, ConfigSaved
from studio.screens.main import MainScreen
from studio.widgets.expert_tree import ExpertTree
from tests.studio.helpers import SIZE, Messages, studio, wait_until


async def analysed(messages: Messages, screen: MainScreen, pilot) -> None:
    """Wait until the problems list shows the analysis of the editor's current text."""
    await messages.wait_for(AnalysisReady, lambda m: m.text == screen.editor.text)
    await wait_until(pilot, lambda: screen.analysis is not None)
    await pilot.pause()


async def test_opens_the_team(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("team.toml")
    messages = Messages()
    app = studio(path.parent)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await analysed(messages, screen, pilot)
        tree = screen.query_one(ExpertTree)
        assert tree.outline is not None
        assert tree.outline.expert_keys == (
            "game-director",
            "@ai-gaming/level-designer",
            "story-writer",
        )
        director = tree.outline.expert("game-director")
        assert director is not None
        assert director.delegates[1] == "story-writer"
        assert screen.editor.text == path.read_text()
        assert not screen.dirty


async def test_problems_while_typing_and_jump(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("minimal.toml")
    messages = Messages()
    app = studio(path.parent)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await analysed(messages, screen, pilot)
        assert screen.problems.diagnostics == ()
        screen.editor.focus()
        screen.editor.move_cursor((0, 0))
        await pilot.press(*"maxSteps = 0", "enter")
        await analysed(messages, screen, pilot)
        assert screen.dirty
        problems = screen.problems.diagnostics
        assert any(item.key == "maxSteps" and item.severity == "error" for item in problems)
        # Choosing the problem moves the editor to its line.
        screen.editor.move_cursor((0, 0))
        screen.problems.focus()
        await pilot.press("home", "enter")
        await pilot.pause()
        line = problems[0].line
        assert line is not None
        assert screen.editor.cursor_location[0] == line - 1
        assert screen.editor.has_focus
        # A click on the row does the same.
        screen.editor.move_cursor((2, 0))
        await pilot.click("#diagnostics", offset=(8, 1))
        await pilot.pause()
        assert screen.editor.cursor_location[0] == line - 1


async def test_editor_follows_the_tree(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("team.toml")
    messages = Messages()
    app = studio(path.parent)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await analysed(messages, screen, pilot)
        screen.team_tree.focus()
        await pilot.press("end")  # story-writer's last child: its delegate
        await pilot.pause()
        outline = screen.team_tree.outline
        assert outline is not None
        writer = outline.expert("story-writer")
        assert writer is not None and writer.line is not None
        assert screen.editor.cursor_location[0] == writer.line - 1


async def test_untouched_save_is_byte_identical(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("odd_formatting.toml")
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    app = studio(path.parent)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == mtime


async def test_save_writes_the_editor(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("minimal.toml")
    messages = Messages()
    app = studio(path.parent)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.editor.focus()
        screen.editor.move_cursor(screen.editor.document.end)
        await pilot.press(*"# a note", "enter")
        await pilot.press("ctrl+s")
        await messages.wait_for(ConfigSaved)
        await pilot.pause()
        assert path.read_text() == screen.editor.text
        assert path.read_text().endswith("# a note\n")
        assert not screen.dirty
        assert "saved at 12:34:56" in str(screen.query_one("#status-line").render())


async def test_invalid_file_is_editable_and_savable(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("invalid/syntax_error.toml")
    messages = Messages()
    app = studio(path.parent)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await analysed(messages, screen, pilot)
        assert screen.problems.diagnostics
        # Forms wait for the syntax to be fixed, and say so.
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen is screen
        screen.editor.focus()
        screen.editor.move_cursor(screen.editor.document.end)
        await pilot.press(*"# still broken", "enter")
        await pilot.press("ctrl+s")
        await messages.wait_for(ConfigSaved)
    assert path.read_text().endswith("# still broken\n")
