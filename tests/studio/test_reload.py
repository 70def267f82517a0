"""Hot reload: changes on disk reach the studio, and unsaved edits are never lost silently."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from studio.messages import AnalysisReady, ConfigReloaded, ConfigWatchStarted
from studio.screens.conflict import ReloadConflictScreen
from studio.screens.main import MainScreen
from tests.studio.helpers import SIZE, Messages, studio, wait_until

EXTRA = '\n[experts."critic"]\ninstruction = "Criticise."\n'


def write_atomically(path: Path, text: str) -> None:
    """Save like an editor does: a temporary file renamed over the original."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


async def test_reloads_a_change_on_disk(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("team.toml")
    messages = Messages()
    app = studio(path.parent, watch=True)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await messages.wait_for(ConfigWatchStarted)
        new_text = path.read_text() + EXTRA
        path.write_text(new_text)
        reloaded = await messages.wait_for(ConfigReloaded)
        assert reloaded.kept == "disk"
        await pilot.pause()
        assert screen.editor.text == new_text
        assert not screen.dirty
        assert "reloaded from disk at 12:34:56" in str(screen.query_one("#status-line").render())
        await messages.wait_for(AnalysisReady, lambda m: m.text == new_text)
        await wait_until(pilot, lambda: "critic" in screen.team_tree.outline.expert_keys)


async def test_an_edit_before_the_watcher_listens_is_reloaded(
    config_dir: Callable[[str], Path],
) -> None:
    """The file changes after the studio read it and before its watcher started: it used to be
    missed for good; the watcher's first look catches it."""
    path = config_dir("team.toml")
    messages = Messages()
    app = studio(path.parent, watch=True)  # reads the file now
    new_text = path.read_text() + EXTRA
    path.write_text(new_text)  # ... and it changes before the app (and its watcher) runs
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await messages.wait_for(ConfigReloaded)
        await pilot.pause()
        assert screen.editor.text == new_text and not screen.dirty


async def test_reloads_an_atomic_save(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("team.toml")
    messages = Messages()
    app = studio(path.parent, watch=True)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await messages.wait_for(ConfigWatchStarted)
        new_text = path.read_text() + EXTRA
        write_atomically(path, new_text)
        await messages.wait_for(ConfigReloaded)
        await pilot.pause()
        assert screen.editor.text == new_text


async def test_own_save_is_not_a_reload(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("minimal.toml")
    messages = Messages()
    app = studio(path.parent, watch=True)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await messages.wait_for(ConfigWatchStarted)
        screen.editor.insert("# mine\n", (0, 0))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not screen.dirty)
        # A later change from outside still arrives, and is the first reload seen.
        path.write_text(path.read_text() + EXTRA)
        await messages.wait_for(ConfigReloaded)
        assert len(messages.of(ConfigReloaded)) == 1


async def test_an_outside_edit_of_another_expert_is_merged_with_unsaved_edits(
    config_dir: Callable[[str], Path],
) -> None:
    """Issue 16, bug 6: keeping one's edits then saving overwrote an outside edit of another
    expert. Edits of different keys now merge without a question, and Ctrl+S saves both."""
    path = config_dir("team.toml")
    messages = Messages()
    app = studio(path.parent, watch=True)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await messages.wait_for(ConfigWatchStarted)
        text = screen.editor.text
        screen.editor.text = text.replace("Plans a game and", "Plans a game, then")  # mine
        disk = path.read_text() + EXTRA  # theirs: a new expert
        write_atomically(path, disk)
        reloaded = await messages.wait_for(ConfigReloaded)
        assert reloaded.kept == "merged"
        await pilot.pause()
        assert not isinstance(app.screen, ReloadConflictScreen)
        assert (
            "Plans a game, then" in screen.editor.text and 'experts."critic"' in screen.editor.text
        )
        assert screen.dirty and path.read_text() == disk  # nothing written yet
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not screen.dirty)
        saved = path.read_text()
        assert "Plans a game, then" in saved and 'experts."critic"' in saved


async def test_conflict_keep_mine(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("team.toml")
    messages = Messages()
    app = studio(path.parent, watch=True)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await messages.wait_for(ConfigWatchStarted)
        screen.editor.insert("# my edit\n", (0, 0))
        mine = screen.editor.text
        disk = path.read_text() + EXTRA
        write_atomically(path, disk)
        await wait_until(pilot, lambda: isinstance(app.screen, ReloadConflictScreen))
        diff = str(app.screen.query_one("#conflict-diff-text").render())
        assert "+# my edit" in diff and '-[experts."critic"]' in diff
        await pilot.press("m")
        reloaded = await messages.wait_for(ConfigReloaded)
        assert reloaded.kept == "mine"
        await pilot.pause()
        assert app.screen is screen
        assert screen.editor.text == mine
        assert screen.dirty
        assert path.read_text() == disk  # nothing written until the user saves
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not screen.dirty)
        assert path.read_text() == mine


async def test_conflict_take_disk_keeps_mine_in_undo(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("team.toml")
    messages = Messages()
    app = studio(path.parent, watch=True)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await messages.wait_for(ConfigWatchStarted)
        screen.editor.insert("# my edit\n", (0, 0))
        mine = screen.editor.text
        disk = path.read_text() + EXTRA
        write_atomically(path, disk)
        await wait_until(pilot, lambda: isinstance(app.screen, ReloadConflictScreen))
        await pilot.press("t")
        reloaded = await messages.wait_for(ConfigReloaded)
        assert reloaded.kept == "disk"
        await pilot.pause()
        assert screen.editor.text == disk
        assert not screen.dirty
        screen.editor.action_undo()
        await pilot.pause()
        assert screen.editor.text == mine


async def test_deleted_file_is_kept_in_the_editor(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("minimal.toml")
    text = path.read_text()
    messages = Messages()
    app = studio(path.parent, watch=True)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await messages.wait_for(ConfigWatchStarted)
        path.unlink()
        await wait_until(pilot, lambda: screen.dirty)
        assert screen.editor.text == text
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: path.exists() and not screen.dirty)
    assert path.read_text() == text
