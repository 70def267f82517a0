"""The app's shell: the empty state, the command palette, help, quitting, start-up errors."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.widgets import Input

from runtime import ConfigError
from studio.app import make_app
from studio.keys import KEYS
from studio.screens.confirm import ConfirmModal
from studio.screens.create_config import CreateConfigScreen
from studio.screens.expert_form import ExpertFormScreen
from studio.screens.help import HelpScreen
from studio.screens.main import MainScreen
from studio.tui import run_tui
from tests.studio.helpers import SIZE, studio, wait_until


async def test_empty_state_creates_a_minimal_config(tmp_path: Path) -> None:
    app = studio(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, CreateConfigScreen)
        app.screen.query_one("#empty-key", Input).value = "greeter"
        await pilot.click("#empty-create")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        screen = app.screen
        assert isinstance(screen, MainScreen)
        path = tmp_path / "perstack.toml"
        assert screen.editor.text == path.read_text()
        assert "greeter" in tomllib.loads(path.read_text())["experts"]
        assert not screen.dirty


async def test_empty_state_takes_the_key_as_typed_without_a_tab(tmp_path: Path) -> None:
    """The key field has the focus with its text selected: type, Enter, done."""
    app = studio(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, CreateConfigScreen)
        await pilot.press(*"writer", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        experts = tomllib.loads((tmp_path / "perstack.toml").read_text())["experts"]
        assert list(experts) == ["writer"]


async def test_empty_state_refuses_a_bad_key(tmp_path: Path) -> None:
    app = studio(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#empty-key", Input).value = "Not Valid"
        await pilot.click("#empty-create")
        await pilot.pause()
        assert isinstance(app.screen, CreateConfigScreen)
        assert "not a valid expert key" in str(app.screen.query_one("#empty-error").render())
    assert not (tmp_path / "perstack.toml").exists()


async def test_finds_the_config_in_a_parent(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("minimal.toml")
    child = path.parent / "src" / "deep"
    child.mkdir(parents=True)
    app = studio(child)
    async with app.run_test(size=SIZE):
        assert isinstance(app.screen, MainScreen)
        assert app.screen.path == path
        assert app.screen.label == "perstack.toml" or app.screen.label.endswith("perstack.toml")


async def test_command_palette_runs_a_form(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("team.toml")
    app = studio(path.parent)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await wait_until(pilot, lambda: screen.analysis is not None)
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"edit story")
        await wait_until(pilot, lambda: app.screen.query_one("CommandList").option_count > 0)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ExpertFormScreen))
        assert app.screen.query_one("#expert-key", Input).value == "story-writer"


async def test_palette_offers_only_what_makes_sense(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("invalid/syntax_error.toml")
    app = studio(path.parent)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await wait_until(pilot, lambda: screen.analysis is not None)
        titles = [command.title for command in screen.palette_commands()]
        assert "file: save" in titles and "problems: next" in titles
        assert not any(title.startswith(("expert:", "skill:")) for title in titles)


async def test_help_lists_every_key(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("minimal.toml")
    app = studio(path.parent)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        source = app.screen.query_one("#help-keys").source
        for spec in KEYS:
            assert spec.description in source
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("f1")  # the help key closes it again
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))


async def test_every_binding_has_an_id_and_tooltip() -> None:
    ids = [spec.id for spec in KEYS]
    assert len(ids) == len(set(ids))
    assert all(spec.tooltip and spec.description for spec in KEYS)


async def test_quit_asks_when_there_are_unsaved_edits(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("minimal.toml")
    app = studio(path.parent)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.editor.insert("# unsaved\n", (0, 0))
        await wait_until(pilot, lambda: screen.dirty)
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen)
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.click("#confirm")
    assert app.return_code == 0


def test_remote_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="local files"):
        make_app("https://raw.githubusercontent.com/x/y/main/perstack.toml", cwd=tmp_path)


def test_non_utf8_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "perstack.toml").write_bytes(b'model = "\xff"\n')
    assert run_tui(cwd=tmp_path) == 2
    assert "not UTF-8" in capsys.readouterr().err


async def test_ctrl_t_opens_the_new_team_wizard(config_dir: Callable[[str], Path]) -> None:
    from studio.screens.wizard import WizardScreen

    app = studio(config_dir("minimal.toml"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, WizardScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert "new-team" in {spec.id for spec in KEYS}


async def test_f5_runs_the_selected_expert_in_the_run_view(
    config_dir: Callable[[str], Path],
) -> None:
    from studio.screens.run import RunScreen

    app = studio(config_dir("minimal.toml"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        screen = app.screen
        assert isinstance(screen, MainScreen)
        key = screen.team_tree.outline.expert_keys[0]
        screen.team_tree.select_expert(key)
        await pilot.press("f5")
        await wait_until(pilot, lambda: isinstance(app.screen, RunScreen))
        assert app.screen.options.expert_key == key


async def test_notifications_leave_the_problems_panel_visible(tmp_path: Path) -> None:
    """Issue 16, item 8: toasts covered the Problems panel for about five seconds."""
    (tmp_path / "perstack.toml").write_text('[experts."a"]\ninstruction = "x"\n')
    app = studio(tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        screen = app.screen
        assert isinstance(screen, MainScreen)
        app.notify("Saved perstack.toml", title="Saved")
        await wait_until(pilot, lambda: bool(app.screen.query("Toast")))
        await pilot.pause()
        toast = app.screen.query_one("Toast").region
        assert toast.height > 0
        assert not toast.overlaps(screen.problems.region)


async def test_a_failed_worker_of_a_screen_or_widget_shows_the_error(tmp_path: Path) -> None:
    """Textual's worker-state message does not bubble: screens and panes forward failures."""
    from textual.worker import Worker

    from studio.screens.error import ErrorModal
    from studio.screens.main import MainScreen
    from tests.studio.helpers import fixed_now, wait_until

    (tmp_path / "perstack.toml").write_text('[experts."a"]\ninstruction = "Help."\n')
    app = make_app(tmp_path / "perstack.toml", now=fixed_now, watch=False, cursor_blink=False)

    async def boom() -> None:
        raise RuntimeError("the analysis broke")

    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        screen = app.screen
        assert isinstance(screen, MainScreen)
        worker: Worker[None] = screen.editor_pane.run_worker(
            boom(), name="analysis", exit_on_error=False
        )
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert worker.error is not None
        text = " ".join(str(w.render()) for w in app.screen.query("Static"))
        assert "The studio's analysis failed" in text and "the analysis broke" in text
