"""The studio's history and replay on a job written by the real Perstack CLI (no job.json, one
file per event): the job is listed with its expert and status, and replaying it draws the team."""

from __future__ import annotations

import shutil
from pathlib import Path

from runtime.testing import ScriptedModel
from studio.run_app import make_run_app
from studio.screens.history import HistoryScreen
from tests.studio.test_run_view import SIZE, pick_from_history, screen_ready, shape, until

FIXTURES = Path(__file__).parents[1] / "fixtures" / "perstack-jobs"


async def test_history_lists_and_replays_a_perstack_team_job(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    shutil.copytree(FIXTURES / "parallel-delegates", workspace)
    app = make_run_app(
        workspace=workspace,
        expert_key="coordinator",
        query=None,
        language_model=ScriptedModel([]),
        cursor_blink=False,
    )
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_ready(pilot)
        await pilot.press("f5")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.jobs)
        history = app.screen
        assert isinstance(history, HistoryScreen)
        (job,) = history.jobs
        assert (job.expert_key, job.status, job.total_steps) == ("coordinator", "completed", 4)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await pick_from_history(pilot, screen)
        walked = shape(screen)
        assert walked[0] == (0, "coordinator", "done")
        assert sorted(walked[1:]) == [(1, f"helper{n}", "done") for n in range(10)]
        assert screen.resume_point is not None
        assert screen.resume_point.checkpoint.expert_key == "coordinator"
