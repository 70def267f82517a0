"""Snapshots of live runs on a scripted model: cancelling one, and answering an interactive tool.

Each run is a real run of the runtime in the run view, on a scripted model that answers at
once (or, to be cancelled, only after the picture); the job ids are fixed and no duration shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.testing import Reply, ScriptedModel, call, reply
from snapshots.conftest import make_run
from snapshots.helpers import SIZE, wait_until
from studio.screens.interactive import InteractiveToolModal
from studio.screens.run import RunScreen


def run_screen(pilot: Any) -> RunScreen:
    return next(s for s in pilot.app.screen_stack if isinstance(s, RunScreen))


async def asked(pilot: Any) -> None:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, InteractiveToolModal))
    await pilot.pause()


class TestCancel:
    def test_cancelled_run(self, snap_compare, jobs_workspace: Path) -> None:
        """You should see a run cancelled with Esc while it waited for the model.

        The tree: "⊘ job cancel-job cancelled · 1 run · 0 tok" and "⊘ solo cancelled · 1 step"
        (the word in grey) with its step 1; the job detail shows the query "Take your time."
        and "cancelled · 0 tok". A notification "Cancelled: Run cancelled. Its last checkpoint
        is saved: type a query to continue the job."; the query box suggests "Continue the
        cancelled job… (Enter)" and the status bar ends in "step 1 · 0 tok · cancelled".
        """
        model = ScriptedModel([Reply(text="Too slow.", delay=30)])

        async def cancel(pilot: Any) -> None:
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, RunScreen))
            screen = pilot.app.screen
            await wait_until(pilot, lambda: bool(screen.job.roots) and screen.controller.running)
            await pilot.press("escape")
            await wait_until(pilot, lambda: screen.finished_runs >= 1)
            screen.refresh_tree()
            await pilot.pause()

        app = make_run(jobs_workspace, "solo", "Take your time.", model, job_id="cancel-job")
        assert snap_compare(app, terminal_size=SIZE, run_before=cancel)


class TestInteractive:
    def test_answer_later(self, snap_compare, jobs_workspace: Path) -> None:
        """You should see the run waiting for an answer after "Later" closed its dialog.

        The tree: "? job ask-job waiting for input" and "? asker waiting for input" (red) with
        step 1 and its "? askColor(question="Which colour?")" call; the query box is focused and
        suggests "Answer askColor… (Enter resumes the run)"; the status bar ends in "waiting for
        input".
        """
        model = ScriptedModel([call("askColor", question="Which colour?"), reply("Blue it is.")])

        async def later(pilot: Any) -> None:
            await asked(pilot)
            await pilot.press("escape")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, RunScreen))
            pilot.app.screen.refresh_tree()
            await pilot.pause()

        app = make_run(jobs_workspace, "asker", "Paint it.", model, job_id="ask-job")
        assert snap_compare(app, terminal_size=SIZE, run_before=later)

    def test_typing_the_answer(self, snap_compare, jobs_workspace: Path) -> None:
        """You should see the interactive dialog with an answer typed in.

        "? askColor needs your answer" (orange border), the model's argument "question: Which
        colour?", and the input "question (string)" holding "blue" (focused); the buttons Later
        and Answer. Behind it the tree shows asker "? waiting for input" and the query box
        "Answer askColor… (Enter resumes the run)".
        """
        model = ScriptedModel([call("askColor", question="Which colour?"), reply("Blue it is.")])

        async def typing(pilot: Any) -> None:
            await asked(pilot)
            await pilot.press(*"blue")
            await pilot.pause()

        app = make_run(jobs_workspace, "asker", "Paint it.", model, job_id="ask-job")
        assert snap_compare(app, terminal_size=SIZE, run_before=typing)

    def test_answered_and_done(self, snap_compare, jobs_workspace: Path) -> None:
        """You should see the job done after the answer "blue" resumed the run.

        The tree: "✓ job ask-job done · 1 run · 30 tok" and "✓ asker done · 3 steps" with step
        1 (its ✓ askColor call, answered), step 2 and step 3. The job detail shows the query
        "Paint it." and the answer "Blue it is."; the Streaming pane ("Streaming · asker") shows
        "Blue it is." too. The query box suggests "Follow up… (Enter continues the job)"; the
        status bar ends in "step 3 · 30 tok · done".
        """
        model = ScriptedModel([call("askColor", question="Which colour?"), reply("Blue it is.")])

        async def answered(pilot: Any) -> None:
            await asked(pilot)
            await pilot.press(*"blue", "ctrl+s")
            screen = run_screen(pilot)
            await wait_until(pilot, lambda: screen.finished_runs >= 2)
            screen.refresh_tree()
            await pilot.pause()

        app = make_run(jobs_workspace, "asker", "Paint it.", model, job_id="ask-job")
        assert snap_compare(app, terminal_size=SIZE, run_before=answered)
