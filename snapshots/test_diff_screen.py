"""Snapshots of the diff view: two jobs of a team side by side, the first divergence selected."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest

import runtime.schema.events as events_module
from runtime import RunSetting, parse_config, run
from runtime.testing import Reply, call, reply, scripted_team
from snapshots.conftest import THEME, fixed_now
from snapshots.helpers import SIZE, wait_until
from studio.run_app import make_run_app
from studio.screens.diff import DiffScreen
from studio.screens.history import HistoryScreen

TEAM = """
[experts."lead"]
instruction = "You lead a maze team."
delegates = ["researcher", "writer", "checker"]

[experts."researcher"]
instruction = "You research what players like."

[experts."writer"]
instruction = "You write maze levels."

[experts."checker"]
instruction = "You check levels."
"""

STARTED = 1_735_812_000_000
"""2025-01-02 10:00:00 UTC: the fake clock's first millisecond."""


class _Clock:
    """A clock one millisecond further on each time it is read: the jobs' times are fixed."""

    def __init__(self) -> None:
        self._ticks = itertools.count()

    def time_ns(self) -> int:
        return (STARTED + next(self._ticks)) * 1_000_000


def _job(workspace: Path, job_id: str, scripts: dict[str, list[Reply]]) -> None:
    config = parse_config(TEAM, path=workspace / "perstack.toml")
    setting = RunSetting(
        expert_key="lead", query="Make a maze level.", workspace=workspace, job_id=job_id
    )
    asyncio.run(run(setting, model=scripted_team(scripts), config=config))


def two_jobs(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """job-a: research, write, done. job-b: other research, so other writing, then a check."""
    (workspace / "perstack.toml").write_text(TEAM)
    with monkeypatch.context() as patch:
        patch.setattr(events_module, "time", _Clock())
        _job(
            workspace,
            "job-a",
            {
                "maze team": [
                    call("researcher", query="What makes a maze fun?"),
                    call("writer", query="Write a maze with loops."),
                    reply("Done: a maze with loops."),
                ],
                "what players like": [reply("Loops and a few dead ends.")],
                "maze levels": [reply("A 9x5 maze with two loops.")],
            },
        )
        _job(
            workspace,
            "job-b",
            {
                "maze team": [
                    call("researcher", query="What makes a maze fun?"),
                    call("writer", query="Write a maze with dead ends."),
                    call("checker", query="Is it solvable?"),
                    reply("Done: a checked maze with dead ends."),
                ],
                "what players like": [reply("Dead ends, mostly.")],
                "maze levels": [reply("A 9x5 maze with five dead ends.")],
                "check levels": [reply("Solvable in 14 moves.")],
            },
        )


async def diffed(pilot: Any) -> None:
    """F5 (history), d on the newest job: no job is marked, so it is compared with the last."""
    await pilot.press("f5")
    await wait_until(
        pilot, lambda: isinstance(pilot.app.screen, HistoryScreen) and bool(pilot.app.screen.jobs)
    )
    await pilot.press("d")
    await wait_until(
        pilot,
        lambda: isinstance(pilot.app.screen, DiffScreen) and pilot.app.screen.result is not None,
    )
    await pilot.pause()


class TestDiffView:
    def test_two_jobs_of_a_team(self, snap_compare, tmp_path: Path, monkeypatch) -> None:
        """You should see job-a (A) and job-b (B) of the lead's team compared side by side.

        On top, in yellow: "First divergence: lead › researcher, step 2: text: Loops and a few
        dead ends. → Dead ends, mostly." Below it the two jobs: "A job job-a · lead · completed
        · 7 steps · 75 tokens · 71 ms" and "B job job-b · lead · completed · 10 steps · 105
        tokens · 99 ms". The table (columns Where, "A · job-a", "B · job-b") lists lead (≠),
        its step 1 (=, dim: the same researcher call), researcher (≠) with its step 2 selected
        (≠, the two answers), the results step and the writer's call (step 4, ≠: its query
        differs), writer (≠) and its step 5, then three green "+" rows only in B (the checker's
        call at step 7, checker with its step 8, the results at step 9: "—" in the A column),
        and last the final answers, "step 7 (B: 10)" (≠). The Detail pane below shows "lead ›
        researcher · step 2 · differs", under Differences "text" with "- Loops and a few dead
        ends." in red and "+ Dead ends, mostly." in green, then the A and B steps side by side.
        The footer reads "esc Back  n Next diff  p Prev diff  ^q Quit".
        """
        two_jobs(tmp_path, monkeypatch)
        app = make_run_app(
            workspace=tmp_path,
            expert_key="lead",
            now=fixed_now,
            theme=THEME,
            cursor_blink=False,
        )
        assert snap_compare(app, terminal_size=SIZE, run_before=diffed)
