"""A continued job keeps every run under the call that started it, and a resume from an earlier
checkpoint is shown as a branch, as `perstack log` shows them (issue 16, bug 3: a re-run delegate
appeared beside the cancelled one, the coordinator's total dropped, and the old branch's later
steps stayed mixed into the tree)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from runtime.jobs import Jobs
from runtime.testing import call, reply, scripted_team
from studio.screens.history import HistoryScreen
from tests.studio.test_run_view import SIZE, app_for, finished, screen_ready, shape, until


async def test_a_resumed_delegate_continues_its_node(tmp_path: Path) -> None:
    slow = dataclasses.replace(reply("mid: first"), delay=30)
    model = scripted_team(
        {
            "the chain": [call("mid", query="pass it on"), reply("lead: done")],
            "middle link": [slow, reply("mid: second")],
        }
    )
    app = app_for(tmp_path, "lead", "q1", model)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_ready(pilot)
        await until(pilot, lambda: any(n.expert_key == "mid" for _, n in screen.job.walk()))
        await pilot.press("escape")
        screen = await finished(pilot)
        assert shape(screen) == [(0, "lead", "cancelled"), (1, "mid", "cancelled")]
        query = screen.query_one("#run-query", Input)
        query.focus()
        query.value = "go on"
        await pilot.press("enter")
        screen = await finished(pilot, runs=2)
        assert shape(screen) == [(0, "lead", "done"), (1, "mid", "done")]
        (_, mid) = screen.job.walk()[1]
        assert len(mid.run_ids) == 2  # the interrupted segment and the resumed one
    jobs = Jobs.for_workspace(tmp_path)
    (job,) = jobs.list_jobs()
    (root,) = jobs.tree(job.id)
    assert [child.expert_key for child in root.children] == ["mid"]
    assert len(root.children[0].segments) == 2


def history_row(app: Any, job_id: str) -> tuple[str, str]:
    """The Steps and Tokens cells of a job's row in the open history."""
    history = app.screen
    assert isinstance(history, HistoryScreen)
    cells = history.query_one("#history-jobs", DataTable).get_row(job_id)
    return str(cells[3]), str(cells[4])


async def open_history(pilot: Pilot[Any]) -> None:
    await pilot.press("f5")
    await until(
        pilot, lambda: isinstance(pilot.app.screen, HistoryScreen) and pilot.app.screen.jobs
    )


def row_label(screen: Any, node_id: str) -> str:
    return str(screen.step_tree.nodes[("run", node_id)].label)


async def test_after_esc_and_a_follow_up_the_coordinator_keeps_the_job_s_totals(
    tmp_path: Path,
) -> None:
    """The coordinator half of bug 3: Esc while the coordinator works on its delegate's answer,
    then a follow-up. The follow-up was a second root holding only its own tokens (the job's
    total "dropped"), and what it delegated hung there; now the coordinator goes on, with the
    job's totals, and every delegate stays under the call that started it."""
    slow = dataclasses.replace(reply("lead: thinking"), delay=30)
    model = scripted_team(
        {
            "the chain": [
                call("mid", query="pass it on"),
                slow,
                call("mid", query="once more"),
                reply("lead: done"),
            ],
            "middle link": [reply("mid: first"), reply("mid: second")],
        }
    )
    app = app_for(tmp_path, "lead", "q1", model)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_ready(pilot)
        await until(pilot, lambda: len(model.requests) == 3)  # lead works on mid's answer
        await pilot.press("escape")
        screen = await finished(pilot)
        assert shape(screen) == [(0, "lead", "cancelled"), (1, "mid", "done")]
        await pilot.press(*"go on", "enter")
        screen = await finished(pilot, runs=2)
        assert shape(screen) == [(0, "lead", "done"), (1, "mid", "done"), (1, "mid", "done")]
        (root_id,) = screen.job.roots
        lead = screen.job.runs[root_id]
        (job,) = Jobs.for_workspace(tmp_path).list_jobs()
        assert screen.job.rollup(lead).total_tokens == job.total_tokens > 0
        assert screen.job.total_steps(lead) == job.total_steps
        label = row_label(screen, root_id)
        assert f" · {job.total_steps} steps · {job.total_tokens:,} tok" in label
        await open_history(pilot)
        assert history_row(app, job.id) == (str(job.total_steps), f"{job.total_tokens:,}")


async def test_a_resume_from_an_earlier_checkpoint_is_shown_as_a_branch(tmp_path: Path) -> None:
    """After a resume from the history, the old line keeps its later steps and delegates; the
    new one is a branch beside it with its own delegates under it, not at the top."""
    first = scripted_team(
        {
            "the chain": [
                call("mid", query="pass it on"),
                reply("lead: first"),
                call("mid", query="once more"),
                reply("lead: second"),
            ],
            "middle link": [reply("mid: 1"), reply("mid: 2")],
        }
    )
    app = app_for(tmp_path, "lead", "q1", first)
    async with app.run_test(size=SIZE) as pilot:
        screen = await finished(pilot)
        await pilot.press(*"q2", "enter")
        await finished(pilot, runs=2)
    jobs = Jobs.for_workspace(tmp_path)
    (job,) = jobs.list_jobs()
    before = [(n.expert_key, n.steps) for root in jobs.tree(job.id) for n in root.walk()]
    answer = next(
        c for c in jobs.checkpoints(job.id) if c.expert_key == "lead" and c.status == "completed"
    )
    again = scripted_team(
        {
            "the chain": [call("mid", query="differently"), reply("lead: branch")],
            "middle link": [reply("mid: 3")],
        }
    )
    app = app_for(tmp_path, "lead", None, again)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_ready(pilot)
        await open_history(pilot)
        await pilot.press("enter")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        await until(pilot, lambda: bool(history.checkpoints))
        row = next(i for i, c in enumerate(history.checkpoints) if c.id == answer.id)
        history.query_one("#history-checkpoints", DataTable).move_cursor(row=row)
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen)
        await pilot.press(*"differently", "enter")
        screen = await finished(pilot)
        assert screen.error is None
        assert shape(screen) == [
            (0, "lead", "done"),
            (1, "mid", "done"),
            (1, "mid", "done"),
            (0, "lead", "done"),
            (1, "mid", "done"),
        ]
        old, branch = (screen.job.runs[r] for r in screen.job.roots)
        assert (branch.branch_of, branch.fork_step) == (old.node_id, answer.step_number)
        assert min(branch.step_numbers) > answer.step_number
        assert "↱ branch from step" in row_label(screen, branch.node_id)
        # The old line is as it was; the jobs API draws the same two lines.
        roots = jobs.tree(job.id)
        assert [(n.expert_key, n.steps) for n in roots[0].walk()] == before
        assert roots[1].fork_step == answer.step_number
        (job,) = jobs.list_jobs()
        total = sum(screen.job.rollup(screen.job.runs[r]).total_tokens for r in screen.job.roots)
        assert total == job.total_tokens
        await open_history(pilot)
        assert history_row(app, job.id) == (str(job.total_steps), f"{job.total_tokens:,}")
