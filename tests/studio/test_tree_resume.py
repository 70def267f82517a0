"""A delegate interrupted mid-run and resumed by a follow-up is one node of the tree, under the call
that started it, as `perstack log` shows it (issue 16, bug 3: the re-run appeared beside the
cancelled one)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from textual.widgets import Input

from runtime.jobs import Jobs
from runtime.testing import call, reply, scripted_team
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
