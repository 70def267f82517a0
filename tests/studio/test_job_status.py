"""The studio runs jobs in its own process through the same job lock and statuses as the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textual.widgets import Input

from runtime.jobs import Jobs
from runtime.testing import Reply, ScriptedModel, reply
from studio.run_messages import RunCancelled
from tests.studio.test_run_view import SIZE, app_for, finished, screen_ready, shape, until


async def test_a_cancelled_job_is_interrupted_and_a_follow_up_continues_it(tmp_path: Path) -> None:
    model = ScriptedModel([Reply(text="too slow", delay=30), reply("second answer")])
    messages: list[Any] = []
    app = app_for(tmp_path, "solo", "take your time", model)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        screen = await screen_ready(pilot)
        await until(pilot, lambda: bool(screen.job.roots) and screen.controller.running)
        jobs = Jobs.for_workspace(tmp_path)
        assert [job.status for job in jobs.list_jobs()] == ["running"]  # held by this process
        await pilot.press("escape")
        await until(pilot, lambda: any(isinstance(m, RunCancelled) for m in messages))
        await until(pilot, lambda: not screen.controller.running)
        (job,) = Jobs.for_workspace(tmp_path).list_jobs()
        assert job.status == "interrupted"
        stored = json.loads((tmp_path / "perstack/jobs" / job.id / "job.json").read_text())
        assert stored["status"] == "interrupted"

        query = screen.query_one("#run-query", Input)
        query.focus()
        query.value = "go on"
        await pilot.press("enter")
        screen = await finished(pilot, runs=2)  # the lock was released when the run ended
        # The run goes on where it was cancelled: one run, not a second root (issue 16, bug 3).
        assert shape(screen) == [(0, "solo", "done")]
        (root,) = screen.job.roots
        assert screen.job.runs[root].queries == ["take your time", "go on"]
        assert screen.error is None
    assert [(j.id, j.status) for j in Jobs.for_workspace(tmp_path).list_jobs()] == [
        (job.id, "completed")
    ]
