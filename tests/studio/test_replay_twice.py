"""Replaying from the history twice in one session draws the tree both times (issue 16, bug 1:
the second replay drew only the job row)."""

from __future__ import annotations

from pathlib import Path

from runtime.testing import ScriptedModel, reply
from tests.studio.test_run_view import (
    SIZE,
    app_for,
    finished,
    pick_from_history,
    screen_ready,
    shape,
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
