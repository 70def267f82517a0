"""Fork from a delegate's step in the studio, with its definition edited (issue 16, item 2)."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import DataTable, TextArea

from runtime import RunSetting, parse_config, run
from runtime.jobs import Jobs
from runtime.testing import call, reply, scripted_team
from studio.run_app import make_run_app
from studio.screens.confirm import ConfirmModal
from studio.screens.expert_form import ExpertFormScreen
from studio.screens.history import HistoryScreen
from tests.runtime.test_fork import EDITED, system_prompt, team
from tests.runtime.test_replay import TEAM
from tests.studio.test_run_view import SIZE, finished, screen_ready, until


async def origin_job(workspace: Path) -> str:
    (workspace / "perstack.toml").write_text(TEAM)
    config = parse_config(TEAM, path=workspace / "perstack.toml")
    setting = RunSetting(expert_key="lead", query="make it", workspace=workspace)
    return (await run(setting, None, model=team(), config=config)).job_id


def rust_team():  # type: ignore[no-untyped-def]
    return scripted_team(
        {
            "You write code, in Rust.": [
                call("writeTextFile", path="main.rs", text="fn main() {}"),
                call("attemptCompletion"),
                reply("built in Rust"),
            ],
            "You lead the team.": [reply("shipped in Rust")],
        }
    )


async def fork_the_coder(pilot, write: bool, shown: str = "You write code.") -> None:  # type: ignore[no-untyped-def]
    """F5, the job, the coder's first checkpoint, f; the instruction edited; the diff answered."""
    app = pilot.app
    await pilot.press("f5")
    await until(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.jobs)
    history = app.screen
    await pilot.press("enter")
    await until(pilot, lambda: bool(history.checkpoints))
    row = next(
        index
        for index, checkpoint in enumerate(history.checkpoints)
        if checkpoint.expert_key == "@team/coder"
    )
    history.query_one("#history-checkpoints", DataTable).move_cursor(row=row)
    await pilot.press("f")
    await until(pilot, lambda: isinstance(app.screen, ExpertFormScreen))
    form = app.screen
    instruction = form.query_one("#expert-instruction", TextArea)
    assert instruction.text == shown  # prefilled with the definition the run used
    instruction.load_text("You write code, in Rust.")
    await pilot.press("ctrl+s")
    await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
    dialog = app.screen
    message = str(dialog.query_one("#confirm-message").render())
    assert '+instruction = "You write code, in Rust."' in message
    await pilot.click("#confirm" if write else "#cancel")


async def test_fork_only_leaves_the_file_and_links_the_new_job(tmp_path: Path) -> None:
    origin = await origin_job(tmp_path)
    model = rust_team()
    app = make_run_app(
        workspace=tmp_path, expert_key="lead", language_model=model, cursor_blink=False
    )
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_ready(pilot)
        await fork_the_coder(pilot, write=False)
        await finished(pilot)
        assert screen.controller.checkpoint is not None
        fork = screen.controller.checkpoint
        assert fork.status == "completed"
    assert "You write code, in Rust." in system_prompt(model.requests[0])
    assert (tmp_path / "perstack.toml").read_text() == TEAM  # the edit was for the fork only
    record = Jobs(tmp_path / "perstack").record(fork.job_id)
    assert record.origin is not None
    assert (record.origin.kind, record.origin.job_id) == ("fork", origin)
    assert (tmp_path / "main.rs").is_file()


async def test_fork_and_write_the_edit_into_perstack_toml(tmp_path: Path) -> None:
    await origin_job(tmp_path)
    app = make_run_app(
        workspace=tmp_path, expert_key="lead", language_model=rust_team(), cursor_blink=False
    )
    async with app.run_test(size=SIZE) as pilot:
        await screen_ready(pilot)
        await fork_the_coder(pilot, write=True)
        await finished(pilot)
    written = (tmp_path / "perstack.toml").read_text()
    assert written == EDITED
    job_ids = [job.id for job in Jobs(tmp_path / "perstack").list_jobs()]
    assert len(job_ids) == 2
    newest = json.loads((tmp_path / "perstack" / "jobs" / job_ids[0] / "job.json").read_text())
    assert newest["origin"]["kind"] == "fork"


async def test_the_form_holds_the_definition_the_run_used(tmp_path: Path) -> None:
    """perstack.toml changed after the run: the fork starts from what the coder was told then."""
    await origin_job(tmp_path)
    (tmp_path / "perstack.toml").write_text(TEAM.replace("You write code.", "You write tests."))
    app = make_run_app(
        workspace=tmp_path, expert_key="lead", language_model=rust_team(), cursor_blink=False
    )
    async with app.run_test(size=SIZE) as pilot:
        await screen_ready(pilot)
        await fork_the_coder(pilot, write=False, shown="You write code.")
        await finished(pilot)
    assert "You write tests." in (tmp_path / "perstack.toml").read_text()  # left as it was


async def test_the_history_says_which_job_a_fork_came_from(tmp_path: Path) -> None:
    origin = await origin_job(tmp_path)
    app = make_run_app(
        workspace=tmp_path, expert_key="lead", language_model=rust_team(), cursor_blink=False
    )
    async with app.run_test(size=SIZE) as pilot:
        await screen_ready(pilot)
        await fork_the_coder(pilot, write=False)
        await finished(pilot)
        await pilot.press("f5")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.jobs)
        history = app.screen
        assert isinstance(history, HistoryScreen)
        table = history.query_one("#history-jobs", DataTable)
        rows = [table.get_row_at(index) for index in range(table.row_count)]
        assert rows[0][-1] == f"fork of {origin}" and rows[1][-1] == ""


async def test_escape_on_the_diff_forks_nothing(tmp_path: Path) -> None:
    await origin_job(tmp_path)
    app = make_run_app(
        workspace=tmp_path, expert_key="lead", language_model=rust_team(), cursor_blink=False
    )
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_ready(pilot)
        await pilot.press("f5")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.jobs)
        history = app.screen
        await pilot.press("enter")
        await until(pilot, lambda: bool(history.checkpoints))
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, ExpertFormScreen))
        app.screen.query_one("#expert-instruction", TextArea).load_text("Something else.")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        assert not screen.controller.running
    assert len(Jobs(tmp_path / "perstack").ids()) == 1
    assert (tmp_path / "perstack.toml").read_text() == TEAM
