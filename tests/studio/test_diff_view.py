"""The history's diff (issue 16, item 3): mark a job, diff another against it side by side."""

from __future__ import annotations

import json
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable

from runtime import RunSetting, parse_config, run
from runtime.jobs import Jobs
from runtime.testing import Reply, ScriptedModel, call, reply
from studio.run_app import RunApp
from studio.screens.diff import DiffScreen
from studio.screens.history import HistoryScreen
from studio.widgets.diff_detail import render_row
from studio.widgets.diff_table import DiffTable
from tests.studio.test_run_view import CHAIN, SIZE, app_for, plain, screen_ready, until


async def solo_job(workspace: Path, job_id: str, *replies: Reply) -> None:
    config = parse_config(CHAIN, path=workspace / "perstack.toml")
    setting = RunSetting(expert_key="solo", query="read it", workspace=workspace, job_id=job_id)
    await run(setting, lambda _: None, model=ScriptedModel(list(replies)), config=config)


async def two_jobs(workspace: Path) -> None:
    """job-1 reads a.txt, job-2 (newer, listed first) reads b.txt; both then answer."""
    (workspace / "a.txt").write_text("alpha")
    (workspace / "b.txt").write_text("beta")
    await solo_job(workspace, "job-1", call("readTextFile", path="a.txt"), reply("Alpha."))
    await solo_job(workspace, "job-2", call("readTextFile", path="b.txt"), reply("Beta."))


async def open_history(pilot: Pilot[object]) -> HistoryScreen:
    await screen_ready(pilot)
    await pilot.press("f5")
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, HistoryScreen) and bool(app.screen.jobs))
    history = app.screen
    assert isinstance(history, HistoryScreen)
    return history


async def compared(pilot: Pilot[object]) -> DiffScreen:
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, DiffScreen) and app.screen.result is not None)
    screen = app.screen
    assert isinstance(screen, DiffScreen)
    await pilot.pause()
    return screen


def solo_app(workspace: Path) -> RunApp:
    return app_for(workspace, "solo", None, ScriptedModel([]))


async def test_a_marked_job_is_diffed_with_the_first_divergence_selected(tmp_path: Path) -> None:
    await two_jobs(tmp_path)
    app = solo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        history = await open_history(pilot)
        assert [job.id for job in history.jobs] == ["job-2", "job-1"]
        await pilot.press("down", "m")
        assert history.marked == "job-1"
        jobs_table = history.query_one("#history-jobs", DataTable)
        assert jobs_table.get_row_at(1)[-2] == "● job-1"  # the Job column, before From
        await pilot.press("up", "d")
        screen = await compared(pilot)
        assert (screen.job_a, screen.job_b) == ("job-1", "job-2")
        result = screen.result
        assert result is not None and result.first is not None
        table = screen.query_one(DiffTable)
        assert table.has_focus
        row = table.current
        assert row is not None and row.step is result.first.step
        assert row.step is not None and row.step.label == "step 1"
        detail = plain(render_row(row, result))
        assert "solo · step 1 · differs" in detail
        assert 'readTextFile path\n    - "a.txt"\n    + "b.txt"' in detail
        assert "A · job job-1" in detail and "B · job job-2" in detail
        title = screen.query_one("#diff-title").render()
        assert 'First divergence: solo, step 1: readTextFile path: "a.txt" → "b.txt"' in str(title)

        # n and p move between the rows that differ: the answers differ too.
        await pilot.press("n")
        after = table.current
        assert after is not None and after.step is not None and after.step.label == "step 2"
        assert "Alpha." in plain(render_row(after, result))
        await pilot.press("p")
        assert table.current is row

        await pilot.press("escape")
        await until(pilot, lambda: app.screen is history)
        assert history.marked == "job-1"
        await pilot.press("down", "m")  # m on the marked job unmarks it
        assert history.marked is None
        assert jobs_table.get_row_at(1)[-2] == "job-1"


async def test_a_replay_is_diffed_with_its_origin_when_nothing_is_marked(tmp_path: Path) -> None:
    await two_jobs(tmp_path)
    await solo_job(tmp_path, "job-3", call("readTextFile", path="a.txt"), reply("Alpha."))
    path = Jobs.for_workspace(tmp_path).job_dir("job-2") / "job.json"
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "origin": {"kind": "replay", "jobId": "job-1"}}))
    app = solo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        history = await open_history(pilot)
        assert [job.id for job in history.jobs] == ["job-3", "job-2", "job-1"]
        await pilot.press("d")  # job-3: no origin, so the previous job of its expert
        screen = await compared(pilot)
        assert (screen.job_a, screen.job_b) == ("job-2", "job-3")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is history)
        await pilot.press("down", "d")  # job-2 replays job-1
        screen = await compared(pilot)
        assert (screen.job_a, screen.job_b) == ("job-1", "job-2")
        assert "replay of job job-1" in str(screen.query_one("#diff-jobs").render())


async def test_with_nothing_to_compare_the_history_says_so(tmp_path: Path) -> None:
    await solo_job(tmp_path, "only", reply("Alone."))
    app = solo_app(tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        history = await open_history(pilot)
        await pilot.press("d")
        await until(pilot, lambda: bool(app.screen.query("Toast")))
        toast = str(app.screen.query_one("Toast").render())
        assert "No earlier job of solo to compare with: mark a job with m first." in toast
        assert app.screen is history


async def test_two_identical_jobs_show_no_divergence(tmp_path: Path) -> None:
    await solo_job(tmp_path, "job-1", reply("Same."))
    await solo_job(tmp_path, "job-2", reply("Same."))
    app = solo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_history(pilot)
        await pilot.press("d")
        screen = await compared(pilot)
        assert screen.result is not None and screen.result.same
        assert str(screen.query_one("#diff-title").render()).startswith("No differences")
        table = screen.query_one(DiffTable)
        assert [row.state for row in table.rows_shown] == ["same", "same"]
        assert table.cursor_row == 0
