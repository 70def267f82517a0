"""Past jobs of the workspace, their checkpoints, and their stored events (for replay).

Everything comes from the runtime's jobs API (:class:`runtime.jobs.Jobs`): jobs newest first by
their own start times, checkpoints in the order they were stored. Unreadable files and lines are
skipped there: history is a view, never a reason to fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.worker import Worker

from runtime.jobs import CheckpointSummary, Jobs, JobSummary
from studio.keys import bindings
from studio.messages import forward_worker_failure
from studio.widgets.footer import StudioFooter

if TYPE_CHECKING:
    from runtime import PerstackEvent


@dataclass(frozen=True)
class ResumePoint:
    """What the history screen returns: continue ``job_id`` from ``checkpoint``, or fork it."""

    job_id: str
    checkpoint: CheckpointSummary
    expert_key: str
    fork: bool = False
    """Fork a new job from the checkpoint (``f``) instead of continuing this one (Enter)."""


def stored_events(workspace: Path, job_id: str) -> Iterator[PerstackEvent]:
    """The job's stored events in time order, read lazily, without the conversation.

    The tree shows structure, not messages, so the checkpoints come back with empty message
    lists: replay stays linear in the number of events however long the conversation.
    """
    return Jobs.for_workspace(workspace).events(job_id, messages=False)


JOBS_HINT = "Enter: the job's checkpoints · Esc: back to the run"


def format_time(ms: int, now: Callable[[], datetime]) -> str:
    """A stored millisecond timestamp in the clock's time zone."""
    if not ms:
        return "?"
    return datetime.fromtimestamp(ms / 1000, tz=now().tzinfo).strftime("%Y-%m-%d %H:%M:%S")


class HistoryScreen(Screen[ResumePoint | None]):
    """Past jobs, newest first; Enter opens a job's checkpoints, Enter on one resumes from it."""

    CSS_PATH = "history.tcss"
    BINDINGS: ClassVar[list[BindingType]] = bindings(
        "history-back", "history-fork", "history-mark", "history-diff"
    )

    def __init__(self, workspace: Path, *, now: Callable[[], datetime]) -> None:
        super().__init__()
        self.workspace = workspace
        self.now = now
        self.jobs: list[JobSummary] = []
        self.checkpoints: list[CheckpointSummary] = []
        self.job: JobSummary | None = None
        self.marked: str | None = None
        """The job marked with m, which d compares the highlighted job with."""

    def compose(self) -> ComposeResult:
        with Vertical(id="history-body"):
            yield Static("Past jobs", id="history-title")
            yield DataTable(id="history-jobs", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="history-checkpoints", cursor_type="row", zebra_stripes=True)
            yield Static("", id="history-hint")
        yield StudioFooter()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        forward_worker_failure(self, event)

    def on_mount(self) -> None:
        jobs = self.query_one("#history-jobs", DataTable)
        *_, self._job_column, _ = jobs.add_columns(
            "Started", "Expert", "Status", "Steps", "Tokens", "Job", "From"
        )
        checkpoints = self.query_one("#history-checkpoints", DataTable)
        checkpoints.add_columns("#", "Step", "Expert", "Status", "Checkpoint")
        checkpoints.display = False
        self._hint(JOBS_HINT)
        self._load()

    @work(thread=True, exclusive=True, group="history", exit_on_error=False)
    def _load(self) -> None:
        jobs = Jobs.for_workspace(self.workspace).list_jobs()
        self.app.call_from_thread(self._show_jobs, jobs)

    def _show_jobs(self, jobs: list[JobSummary]) -> None:
        self.jobs = jobs
        table = self.query_one("#history-jobs", DataTable)
        table.clear()
        for job in jobs:
            table.add_row(
                format_time(job.started_at, self.now),
                job.expert_key,
                job.status,
                str(job.total_steps),
                f"{job.total_tokens:,}",
                self._job_cell(job.id),
                job.origin_text,
                key=job.id,
            )
        title = f"Past jobs · {len(jobs)}" if jobs else "Past jobs · none yet in this workspace"
        self.query_one("#history-title", Static).update(title)
        table.focus()

    def _hint(self, text: str) -> None:
        self.query_one("#history-hint", Static).update(text)

    @on(DataTable.RowSelected, "#history-jobs")
    def _job_chosen(self, event: DataTable.RowSelected) -> None:
        self.job = self.jobs[event.cursor_row]
        self.checkpoints = Jobs.for_workspace(self.workspace).checkpoints(self.job.id)
        table = self.query_one("#history-checkpoints", DataTable)
        table.clear()
        for index, checkpoint in enumerate(self.checkpoints, start=1):
            table.add_row(
                str(index),
                str(checkpoint.step_number),
                ("↳ " if checkpoint.delegated else "") + checkpoint.expert_key,
                checkpoint.status,
                checkpoint.id,
            )
        self.query_one("#history-jobs", DataTable).display = False
        table.display = True
        table.focus()
        if self.checkpoints:
            table.move_cursor(row=len(self.checkpoints) - 1)
        self.query_one("#history-title", Static).update(
            f"Job {self.job.id} · {self.job.expert_key} · {len(self.checkpoints)} checkpoints"
        )
        self._hint(
            "Enter: replay the job and resume from this checkpoint · f: fork a new job from it "
            "· Esc: back to jobs"
        )

    @on(DataTable.RowSelected, "#history-checkpoints")
    def _checkpoint_chosen(self, event: DataTable.RowSelected) -> None:
        assert self.job is not None
        self.dismiss(
            ResumePoint(self.job.id, self.checkpoints[event.cursor_row], self.job.expert_key)
        )

    def action_fork(self) -> None:
        """Fork from the highlighted checkpoint (on the checkpoint list)."""
        table = self.query_one("#history-checkpoints", DataTable)
        if self.job is None or not table.display or not self.checkpoints:
            self.notify("Open a job (Enter) and pick the checkpoint to fork from.")
            return
        checkpoint = self.checkpoints[min(table.cursor_row, len(self.checkpoints) - 1)]
        self.dismiss(ResumePoint(self.job.id, checkpoint, self.job.expert_key, fork=True))

    def action_back(self) -> None:
        """Back to the jobs, or close the history."""
        checkpoints = self.query_one("#history-checkpoints", DataTable)
        if checkpoints.display:
            checkpoints.display = False
            jobs = self.query_one("#history-jobs", DataTable)
            jobs.display = True
            jobs.focus()
            self._show_jobs(self.jobs)
            self._hint(JOBS_HINT)
            return
        self.dismiss(None)

    def _job_cell(self, job_id: str) -> str:
        return f"● {job_id}" if job_id == self.marked else job_id

    def _highlighted_job(self) -> JobSummary | None:
        table = self.query_one("#history-jobs", DataTable)
        if not table.display or not self.jobs:
            self.notify("Mark and compare jobs in the list of jobs (Esc).", timeout=3)
            return None
        return self.jobs[table.cursor_row]

    def action_mark(self) -> None:
        """Mark the highlighted job to compare another with it (again: unmark it)."""
        job = self._highlighted_job()
        if job is None:
            return
        previous, self.marked = self.marked, None if self.marked == job.id else job.id
        table = self.query_one("#history-jobs", DataTable)
        for job_id in {previous, job.id}:
            if job_id is not None:
                cell = self._job_cell(job_id)
                table.update_cell(job_id, self._job_column, cell, update_width=True)
        if self.marked is not None:
            self._hint(f"Marked job {job.id} · d on another job compares the two · m unmarks")
        else:
            self._hint(JOBS_HINT)

    def action_diff(self) -> None:
        """Compare the highlighted job with the marked one, its origin, or its expert's previous."""
        from runtime.diff import origin_of
        from studio.screens.diff import DiffScreen

        job = self._highlighted_job()
        if job is None:
            return
        other = self.marked if self.marked not in (None, job.id) else None
        if other is None:  # a replay or a fork: its origin; else the expert's job before it
            origin = origin_of(Jobs.for_workspace(self.workspace), job.id)
            older = self.jobs[self.jobs.index(job) + 1 :]
            earlier = next((o.id for o in older if o.expert_key == job.expert_key), None)
            other = origin if origin in {listed.id for listed in self.jobs} else earlier
        if other is None:
            self.notify(
                f"No earlier job of {job.expert_key} to compare with: mark a job with m first.",
                severity="warning",
            )
            return
        self.app.push_screen(DiffScreen(self.workspace, other, job.id))
