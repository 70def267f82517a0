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
from textual.widgets import DataTable, Footer, Static

from runtime.jobs import CheckpointSummary, Jobs, JobSummary
from studio.keys import bindings

if TYPE_CHECKING:
    from runtime import PerstackEvent


@dataclass(frozen=True)
class ResumePoint:
    """What the history screen returns: continue ``job_id`` from ``checkpoint``."""

    job_id: str
    checkpoint: CheckpointSummary
    expert_key: str


def stored_events(workspace: Path, job_id: str) -> Iterator[PerstackEvent]:
    """The job's stored events in time order, read lazily, without the conversation.

    The tree shows structure, not messages, so the checkpoints come back with empty message
    lists: replay stays linear in the number of events however long the conversation.
    """
    return Jobs.for_workspace(workspace).events(job_id, messages=False)


def format_time(ms: int, now: Callable[[], datetime]) -> str:
    """A stored millisecond timestamp in the clock's time zone."""
    if not ms:
        return "?"
    return datetime.fromtimestamp(ms / 1000, tz=now().tzinfo).strftime("%Y-%m-%d %H:%M:%S")


class HistoryScreen(Screen[ResumePoint | None]):
    """Past jobs, newest first; Enter opens a job's checkpoints, Enter on one resumes from it."""

    CSS_PATH = "history.tcss"
    BINDINGS: ClassVar[list[BindingType]] = bindings("history-back")

    def __init__(self, workspace: Path, *, now: Callable[[], datetime]) -> None:
        super().__init__()
        self.workspace = workspace
        self.now = now
        self.jobs: list[JobSummary] = []
        self.checkpoints: list[CheckpointSummary] = []
        self.job: JobSummary | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="history-body"):
            yield Static("Past jobs", id="history-title")
            yield DataTable(id="history-jobs", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="history-checkpoints", cursor_type="row", zebra_stripes=True)
            yield Static("", id="history-hint")
        yield Footer()

    def on_mount(self) -> None:
        jobs = self.query_one("#history-jobs", DataTable)
        jobs.add_columns("Started", "Expert", "Status", "Steps", "Tokens", "Job")
        checkpoints = self.query_one("#history-checkpoints", DataTable)
        checkpoints.add_columns("#", "Step", "Expert", "Status", "Checkpoint")
        checkpoints.display = False
        self._hint("Enter: the job's checkpoints · Esc: back to the run")
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
                job.id,
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
        self._hint("Enter: replay the job and resume from this checkpoint · Esc: back to jobs")

    @on(DataTable.RowSelected, "#history-checkpoints")
    def _checkpoint_chosen(self, event: DataTable.RowSelected) -> None:
        assert self.job is not None
        self.dismiss(
            ResumePoint(self.job.id, self.checkpoints[event.cursor_row], self.job.expert_key)
        )

    def action_back(self) -> None:
        """Back to the jobs, or close the history."""
        checkpoints = self.query_one("#history-checkpoints", DataTable)
        if checkpoints.display:
            checkpoints.display = False
            jobs = self.query_one("#history-jobs", DataTable)
            jobs.display = True
            jobs.focus()
            self._show_jobs(self.jobs)
            self._hint("Enter: the job's checkpoints · Esc: back to the run")
            return
        self.dismiss(None)
