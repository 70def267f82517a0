"""Snapshots of the history (F5 in the run view): past jobs, a job's checkpoints, replays.

The workspace is a copy of fixtures/workspaces/studio-jobs: five jobs stored by the runtime on
2025-01-02 between 09:00 and 11:15 UTC (the demo team's maze-game, hello-twice with a follow-up,
missing-notes stopped by an error, colour-question waiting for an answer, endless-reading
stopped at its step limit), with fixed ids and times. Some suites add the job that the real
Perstack CLI stored in tests/fixtures/perstack-jobs/parallel-delegates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from snapshots.conftest import copy_perstack_job, make_run
from snapshots.helpers import SIZE, SMALL_LIGHT_LARGE_DARK, wait_until
from studio.screens.history import HistoryScreen
from studio.screens.run import RunScreen


async def history_open(pilot: Any) -> None:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, RunScreen))
    await pilot.press("f5")
    await wait_until(
        pilot, lambda: isinstance(pilot.app.screen, HistoryScreen) and pilot.app.screen.jobs
    )
    await pilot.pause()


def checkpoints_of(row: int) -> Any:
    """A ``run_before`` that opens the checkpoints of the job on ``row`` (0: the newest)."""

    async def checkpoints(pilot: Any) -> None:
        await history_open(pilot)
        history = pilot.app.screen
        await pilot.press(*["down"] * row, "enter")
        await wait_until(pilot, lambda: bool(history.checkpoints))
        await pilot.pause()

    return checkpoints


def resumed_from(row: int, *, then: tuple[str, ...] = ()) -> Any:
    """A ``run_before`` that picks the newest checkpoint of the job on ``row``: back on the run
    view with the job replayed, ready to resume; then presses ``then``."""

    async def resumed(pilot: Any) -> None:
        await checkpoints_of(row)(pilot)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, RunScreen))
        screen = pilot.app.screen
        await wait_until(pilot, lambda: screen.resume_point is not None)
        screen.refresh_tree()
        await pilot.pause()
        if then:
            await pilot.press(*then)
            await pilot.pause()

    return resumed


class TestJobList:
    def test_jobs_newest_first(self, snap_compare, jobs_workspace: Path) -> None:
        """You should see "Past jobs · 6", newest first, the first row highlighted.

        Columns Started, Expert, Status, Steps, Tokens, Job and From (empty: none of these is a
        fork or a replay). The Perstack CLI's job (2026-12-04 06:01:14 coordinator completed,
        4 steps, 1,450 tokens, frkf50u5o6toegv3la9ywjzb), then
        2025-01-02 11:15:00 solo stoppedByMaxSteps (3 steps, 45 tokens, endless-reading), 10:40
        asker stoppedByInteractiveTool (colour-question), 10:05 solo stoppedByError
        (missing-notes), 09:30 solo completed (2 steps, hello-twice) and 09:00 game-studio
        completed (5 steps, 105 tokens, maze-game). The hint below says "Enter: the job's
        checkpoints · Esc: back to the run"; the footer lists the history's keys (esc Back and
        the keys to fork, mark and compare jobs).
        """
        copy_perstack_job("parallel-delegates", jobs_workspace)
        app = make_run(jobs_workspace, "solo")
        assert snap_compare(app, terminal_size=SIZE, run_before=history_open)

    @SMALL_LIGHT_LARGE_DARK
    def test_jobs_in_other_sizes(self, snap_compare, jobs_workspace: Path, size, theme) -> None:
        """You should see "Past jobs · 5" (the runtime's five jobs) in a small light or a large
        dark terminal.

        At 80×24 the table is wider than the screen: Started, Expert, Status, Steps and Tokens
        show, the Job column is cut after two letters (a horizontal scrollbar under the rows);
        the five rows, the hint and the footer fit. At 160×48 every column shows with room to
        spare.
        """
        app = make_run(jobs_workspace, "solo", theme=theme)
        assert snap_compare(app, terminal_size=size, run_before=history_open)

    def test_no_jobs_yet(self, snap_compare, tmp_path: Path) -> None:
        """You should see the history of a workspace where nothing has run yet.

        The title reads "Past jobs · none yet in this workspace"; the table has its column
        headers (Started, Expert, Status, Steps, Tokens, Job, From) and no rows; the hint says
        "Enter: the job's checkpoints · Esc: back to the run".
        """
        (tmp_path / "perstack.toml").write_text('[experts."solo"]\ninstruction = "Alone."\n')
        app = make_run(tmp_path, "solo")

        async def empty_history(pilot: Any) -> None:
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, RunScreen))
            await pilot.press("f5")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, HistoryScreen))
            title = pilot.app.screen.query_one("#history-title")
            await wait_until(pilot, lambda: "none yet" in str(title.render()))
            await pilot.pause()

        assert snap_compare(app, terminal_size=SIZE, run_before=empty_history)


class TestCheckpoints:
    def test_checkpoints_of_the_team_job(self, snap_compare, jobs_workspace: Path) -> None:
        """You should see the checkpoints of maze-game, the last one highlighted.

        Title "Job maze-game · game-studio · 7 checkpoints". Columns #, Step, Expert, Status,
        Checkpoint, in the order they were stored: 1 step 1 game-studio stoppedByDelegate; 2
        and 3, step 2 of "↳ @demo/level-designer" and "↳ @demo/programmer", proceeding; 4 and
        5, their step 3, completed (the programmer first); 6 step 4 game-studio proceeding; 7
        step 5 game-studio completed (highlighted). Each row ends with its fixed checkpoint id.
        The hint begins "Enter: replay the job and resume from this checkpoint" and ends "Esc:
        back to jobs".
        """
        app = make_run(jobs_workspace, "game-studio")
        assert snap_compare(app, terminal_size=SIZE, run_before=checkpoints_of(4))


class TestReplay:
    def test_ready_to_resume(self, snap_compare, jobs_workspace: Path) -> None:
        """You should see hello-twice (a query and a follow-up) replayed, ready to resume.

        The tree: "✓ job hello-twice done · 1 run · 30 tok" and one node "✓ solo done · 2
        steps" with steps 1 and 2: the follow-up continued the same node. The job detail lists
        both queries, "▶ Say hello." and "▶ And in French?", then "done · 30 tok" and the last
        answer "Bonjour !". The query box is focused and suggests "Resume from step 2
        (completed) with a new query… (Enter)"; a notification "History: Replayed job
        hello-twice." sits over its right half.
        """
        app = make_run(jobs_workspace, "solo")
        assert snap_compare(app, terminal_size=SIZE, run_before=resumed_from(3))

    def test_a_job_waiting_for_an_answer(self, snap_compare, jobs_workspace: Path) -> None:
        """You should see colour-question replayed: asker stopped to ask the user.

        The tree: "? job colour-question waiting for input", "? asker waiting for input" (in
        red) with step 1 and its "? askColor(question="Which colour should the door be?")"
        call. The detail shows the query "Paint the door."; the query box suggests "Resume from
        step 1 (stoppedByInteractiveTool) with a new…" under the notification "Replayed job
        colour-question."; the status bar ends in "waiting for input".
        """
        app = make_run(jobs_workspace, "asker")
        assert snap_compare(app, terminal_size=SIZE, run_before=resumed_from(1))

    def test_a_job_stopped_at_its_step_limit(self, snap_compare, jobs_workspace: Path) -> None:
        """You should see endless-reading replayed with its run selected.

        The tree: "■ job endless-reading max steps · 1 run · 45 tok" and "■ solo max steps ·
        3 steps", each step with a red ✗ readTextFile call (chapter-1.txt … chapter-3.txt,
        which do not exist). The run is selected (Ctrl+T, ↓): the detail pane says "Run solo ·
        max steps", "steps 3 · own 45 tok · with delegates 45 tok · took 5.0 s" (the stored
        times), the Query "Read every chapter." and, in red, the Error "max steps reached at
        step 3".
        """
        app = make_run(jobs_workspace, "solo")
        keys = ("ctrl+t", "down")
        assert snap_compare(app, terminal_size=SIZE, run_before=resumed_from(0, then=keys))

    def test_a_job_of_the_perstack_cli(self, snap_compare, jobs_workspace: Path) -> None:
        """You should see the job the real Perstack CLI stored, replayed: ten parallel
        delegates.

        The tree: "✓ job frkf50u5o6toegv3la9ywjzb done · 11 runs · 1,450 tok", "✓ coordinator
        done · 4 steps" and under its step 1 the ten delegate calls helper0(query="Task 0") …
        helper9, each holding its "✓ helperN done · 1 step · 120 tok" with its step 2 (the tree
        scrolls). The detail shows the query "Ask all ten helpers" and "All ten helpers
        answered."; the query box suggests "Resume from step 4 (completed) with a new query…".
        """
        copy_perstack_job("parallel-delegates", jobs_workspace)
        app = make_run(jobs_workspace, "coordinator")
        assert snap_compare(app, terminal_size=SIZE, run_before=resumed_from(0))
