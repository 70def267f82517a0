"""The history's replay and resume: twice in one session (issue 16, bug 1: the second replay
drew only the job row), and from a delegate's checkpoint (bug 2: it always failed)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from runtime.testing import ScriptedModel, call, reply, scripted_team
from studio.screens.history import HistoryScreen
from tests.studio.test_run_view import (
    SIZE,
    app_for,
    finished,
    pick_from_history,
    screen_ready,
    shape,
    until,
)


async def test_a_second_replay_draws_the_tree_again(tmp_path: Path) -> None:
    first = app_for(tmp_path, "solo", "q1", ScriptedModel([reply("first answer")]))
    async with first.run_test(size=SIZE) as pilot:
        await finished(pilot)
    app = app_for(tmp_path, "solo", None, ScriptedModel([]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_ready(pilot)
        await pick_from_history(pilot, screen)
        drawn = sorted(screen.step_tree.nodes)
        assert shape(screen) == [(0, "solo", "done")] and len(drawn) > 1
        await pick_from_history(pilot, screen)
        assert shape(screen) == [(0, "solo", "done")]
        assert sorted(screen.step_tree.nodes) == drawn


async def test_resuming_from_a_delegate_s_checkpoint_in_the_history(tmp_path: Path) -> None:
    """The "↳ mid" row of the history resumes mid with the new query, then its parent."""
    model = scripted_team(
        {
            "the chain": [call("mid", query="pass it on"), reply("lead: done"), reply("again")],
            "middle link": [reply("mid: first"), reply("mid: shorter")],
        }
    )
    first = app_for(tmp_path, "lead", "q1", model)
    async with first.run_test(size=SIZE) as pilot:
        await finished(pilot)
    app = app_for(tmp_path, "lead", None, model)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_ready(pilot)
        await pilot.press("f5")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.jobs)
        await pilot.press("enter")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        await until(pilot, lambda: bool(history.checkpoints))
        row = next(i for i, c in enumerate(history.checkpoints) if c.expert_key == "mid")
        history.query_one("#history-checkpoints", DataTable).move_cursor(row=row)
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen)
        await pilot.press(*"shorter please", "enter")
        screen = await finished(pilot)
        assert screen.error is None
        assert model.requests[-2].messages[-1].type == "userMessage"  # mid's follow-up
        # mid goes on under the call that started it (it was drawn beside the coordinator);
        # lead, which had gone on past that call, goes on in a branch of its own.
        assert shape(screen) == [(0, "lead", "done"), (1, "mid", "done"), (0, "lead", "done")]
        (_, mid), (_, branch) = screen.job.walk()[1:]
        assert len(mid.run_ids) == 2
        assert (branch.branch_of, branch.fork_step) == (screen.job.roots[0], 1)
