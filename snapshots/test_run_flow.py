"""Snapshots of a run of the demo team stage by stage, and of the finished job replayed.

Both come from the job ``maze-game`` of fixtures/workspaces/studio-jobs, made once with fixed ids
and times by ``snapshots/fixtures/make_jobs.py``. The stages replay, up to a given event, the
events the studio received while that job ran (``fixtures/streams/maze-game.jsonl``, with the
streamed text): the tree the live run draws at that moment, with nothing left to timing, not
even which of the two parallel specialists finishes first. The finished job is replayed from
storage, as the history does, so the durations it shows are fixed too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime import EVENT_ADAPTER, PerstackEvent
from snapshots.conftest import FIXTURES, make_run, stored_job
from snapshots.helpers import SIZE, VARIANTS, wait_until
from studio.demo import DEMO_EXPERT
from studio.screens.run import RunScreen

JOB = "maze-game"
STREAM = [
    EVENT_ADAPTER.validate_json(line)
    for line in (FIXTURES / "streams" / f"{JOB}.jsonl").read_text().splitlines()
]
"""The events of the maze-game run as the studio received them, in order."""


def through(events: list[PerstackEvent], last: Callable[[PerstackEvent], bool]) -> list[Any]:
    """``events`` up to and including the first one for which ``last`` holds."""
    end = next(i for i, event in enumerate(events) if last(event))
    return events[: end + 1]


def before(events: list[PerstackEvent], first: Callable[[PerstackEvent], bool]) -> list[Any]:
    """``events`` up to the first one for which ``first`` holds, without it."""
    return through(events, first)[:-1]


def replaying(events: list[Any], *, job_id: str | None = None, then: tuple[str, ...] = ()):
    """A ``run_before`` that shows ``events`` in the run view (as a stored job when ``job_id``
    is given), then presses ``then``."""

    async def replay(pilot: Any) -> None:
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, RunScreen))
        screen = pilot.app.screen
        if job_id is not None:
            screen.load_job(job_id, events)
        elif events:
            screen.replay(events)
        await pilot.pause()
        if then:
            await pilot.press(*then)
            await pilot.pause()

    return replay


def is_(kind: str, expert: str | None = None) -> Callable[[PerstackEvent], bool]:
    return lambda event: (
        event.type == kind and (expert is None or getattr(event, "expert_key", None) == expert)
    )


class TestDemoRunStages:
    def test_1_before_the_query(self, snap_compare, jobs_workspace: Path) -> None:
        """You should see the run view of game-studio waiting for its first query.

        The step tree ("Job · game-studio") holds only "job · waiting for a query"; the detail
        pane says "No job yet." and "Type a query for game-studio below and press Enter. F5
        opens the history of past jobs."; the Streaming pane is empty; the query box is focused
        with the placeholder "Ask the expert… (Enter runs)". The status bar reads "game-studio
        · demo-scripted · no steps yet · 0 tok · idle".
        """
        app = make_run(jobs_workspace, DEMO_EXPERT)
        assert snap_compare(app, terminal_size=SIZE, run_before=replaying([]))

    def test_2_the_coordinator_delegates(self, snap_compare, jobs_workspace: Path) -> None:
        """You should see game-studio's first step handing the work to two specialists.

        The job row "◐ job maze-game delegating · 1 run", then "◐ game-studio delegating"
        (orange) with step 1 holding two cyan delegate calls, ↳ level-designer(query="Design
        the first maze level.") and ↳ programmer(query="Write a script that prints the
        maze."), whose runs have not started. The Streaming pane ("Streaming · game-studio")
        shows what game-studio said with its calls: "I'll have the level designer and the
        programmer work in parallel."
        """
        events = through(STREAM, is_("stopRunByDelegate"))
        app = make_run(jobs_workspace, DEMO_EXPERT)
        assert snap_compare(app, terminal_size=SIZE, run_before=replaying(events))

    def test_3_both_specialists_at_work(self, snap_compare, jobs_workspace: Path) -> None:
        """You should see the two specialists running side by side under their calls.

        Under ↳ level-designer(…): "◐ @demo/level-designer running · 1 step" with its step 2
        and a running (◐) writeTextFile(path="levels/level1.txt", …) call; under ↳
        programmer(…): "◐ @demo/programmer running" with a running writeTextFile(path=
        "src/maze.py", …) call. The job row says "3 runs · 45 tok" and "delegating".
        """
        events = through(STREAM, is_("callTools", "@demo/programmer"))
        app = make_run(jobs_workspace, DEMO_EXPERT)
        assert snap_compare(app, terminal_size=SIZE, run_before=replaying(events))

    def test_4_one_specialist_done(self, snap_compare, jobs_workspace: Path) -> None:
        """You should see the programmer done while the level designer still answers.

        "✓ @demo/programmer done · 2 steps · 30 tok" (green) with its ✓ writeTextFile call and
        its step 3; "◐ @demo/level-designer running", its writeTextFile call ✓ and its step 3
        under way. game-studio is still delegating ("3 runs · 60 tok"). The Streaming pane
        ("Streaming · @demo/level-designer") shows its answer so far, cut mid-word: "Saved
        levels/level1.txt: a 9x5 maze with start S and exi".
        """
        events = through(STREAM, is_("completeRun"))
        app = make_run(jobs_workspace, DEMO_EXPERT)
        assert snap_compare(app, terminal_size=SIZE, run_before=replaying(events))

    def test_5_the_coordinator_sums_up(self, snap_compare, jobs_workspace: Path) -> None:
        """You should see game-studio thinking again after both specialists finished.

        Both delegate calls and runs are ✓ done; game-studio (◐ running again) has steps 4 and
        5, step 5 with its ✓ attemptCompletion() call. The Streaming pane ("Streaming ·
        game-studio") shows the reasoning it is streaming: "Both specialists reported back;
        summarise their files."
        """
        events = before(STREAM, is_("completeStreamingReasoning", DEMO_EXPERT))
        app = make_run(jobs_workspace, DEMO_EXPERT)
        assert snap_compare(app, terminal_size=SIZE, run_before=replaying(events))


class TestReplayedJob:
    def test_step_detail(self, snap_compare, jobs_workspace: Path) -> None:
        """You should see the stored job maze-game with a step of the level designer selected.

        The tree (focused with Ctrl+T, orange border) has every run ✓ done and the cursor on
        step 2 of @demo/level-designer. The detail pane says "Step 2 of @demo/level-designer ·
        1 tool call · took 3.2 s" (the stored times). The query box is blurred.
        """
        keys = ("ctrl+t", *["down"] * 5)
        app = make_run(jobs_workspace, DEMO_EXPERT)
        run_before = replaying(stored_job(JOB), job_id=JOB, then=keys)
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)

    def test_tool_call_detail(self, snap_compare, jobs_workspace: Path) -> None:
        """You should see the level designer's file write selected in the replayed job.

        The cursor is on the ✓ writeTextFile call under step 2 of @demo/level-designer. The
        detail pane says "Tool call writeTextFile · @perstack/base · done", then the
        Arguments as coloured JSON (the path "levels/level1.txt" and the maze text with its
        \\n escapes, cut at the pane's edge), then the Result: the path
        "/workspace/levels/level1.txt" (the stored workspace) and the same text.
        """
        keys = ("ctrl+t", *["down"] * 6)
        app = make_run(jobs_workspace, DEMO_EXPERT)
        run_before = replaying(stored_job(JOB), job_id=JOB, then=keys)
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)

    @VARIANTS
    def test_finished_job(self, snap_compare, jobs_workspace: Path, size, theme) -> None:
        """You should see the finished maze-game job in a small or large terminal, dark or
        light.

        The tree: "✓ job maze-game done · 3 runs · 105 tok", "✓ game-studio done · 5 steps",
        its two delegate calls each holding a done specialist with its writeTextFile call and
        step 3, then steps 4 and 5 (attemptCompletion). The job detail shows the query "Make a
        tiny maze game for the terminal." and the start of the team's result; the Streaming
        pane is empty (a replay has no streamed text). The status bar ends in "step 5 · 105 tok
        · done". At 80×24 the tree takes the whole width at the top (it scrolls, cutting long
        rows) with the Detail and Streaming panes side by side below it; at 160×48 the tree and
        the side panes stand side by side and show in full.
        """
        app = make_run(jobs_workspace, DEMO_EXPERT, theme=theme)
        run_before = replaying(stored_job(JOB), job_id=JOB)
        assert snap_compare(app, terminal_size=size, run_before=run_before)
