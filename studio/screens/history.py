"""Past jobs of the workspace, their checkpoints, and their stored events (for replay).

The studio lists jobs and checkpoints from the job folders as plain JSON files
(``perstack/jobs/{jobId}/job.json``, ``checkpoints/{id}.json``) and replays events through
``runtime.read_job_events``. Unreadable files and lines are skipped: history is a view, never a
reason to fail.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

if TYPE_CHECKING:
    from runtime import PerstackEvent


@dataclass(frozen=True)
class JobSummary:
    """One row of the jobs list."""

    id: str
    status: str
    expert_key: str
    total_steps: int
    total_tokens: int
    started_at: int
    finished_at: int | None


@dataclass(frozen=True)
class CheckpointSummary:
    """One row of a job's checkpoints."""

    id: str
    step_number: int
    status: str
    expert_key: str
    delegated: bool
    mtime: float


@dataclass(frozen=True)
class ResumePoint:
    """What the history screen returns: continue ``job_id`` from ``checkpoint``."""

    job_id: str
    checkpoint: CheckpointSummary
    expert_key: str


def jobs_root(workspace: Path) -> Path:
    """Where the runtime stores the workspace's jobs (``$PERSTACK_STORAGE_PATH`` wins, as there)."""
    override = os.environ.get("PERSTACK_STORAGE_PATH")
    root = Path(override).expanduser().resolve() if override else workspace / "perstack"
    return root / "jobs"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def list_jobs(workspace: Path) -> list[JobSummary]:
    """Every readable job of the workspace, newest first.

    A job stored as ``running`` that no live process holds is listed as ``interrupted``.
    """
    from runtime import job_status

    jobs: list[JobSummary] = []
    root = jobs_root(workspace)
    if not root.is_dir():
        return jobs
    for folder in root.iterdir():
        data = _read_json(folder / "job.json")
        if data is None or not isinstance(data.get("id"), str):
            continue
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        jobs.append(
            JobSummary(
                id=data["id"],
                status=job_status(folder, str(data.get("status", "?"))),
                expert_key=str(data.get("coordinatorExpertKey", "?")),
                total_steps=int(data.get("totalSteps") or 0),
                total_tokens=int((usage or {}).get("totalTokens") or 0),
                started_at=int(data.get("startedAt") or 0),
                finished_at=data.get("finishedAt"),
            )
        )
    jobs.sort(key=lambda job: (job.started_at, job.id), reverse=True)
    return jobs


def list_checkpoints(workspace: Path, job_id: str) -> list[CheckpointSummary]:
    """The job's checkpoints in the order they were stored."""
    folder = jobs_root(workspace) / job_id / "checkpoints"
    out: list[CheckpointSummary] = []
    if not folder.is_dir():
        return out
    for path in folder.glob("*.json"):
        data = _read_json(path)
        if data is None or not isinstance(data.get("id"), str):
            continue
        expert = data.get("expert") if isinstance(data.get("expert"), dict) else {}
        out.append(
            CheckpointSummary(
                id=data["id"],
                step_number=int(data.get("stepNumber") or 0),
                status=str(data.get("status", "?")),
                expert_key=str((expert or {}).get("key", "?")),
                delegated=bool(data.get("delegatedBy")),
                mtime=path.stat().st_mtime,
            )
        )
    out.sort(key=lambda c: (c.mtime, c.step_number))
    return out


def stored_events(workspace: Path, job_id: str) -> Iterator[PerstackEvent]:
    """The job's stored events in time order, read lazily, without the conversation.

    The tree shows structure, not messages, so the checkpoints come back with empty message
    lists: replay stays linear in the number of events however long the conversation.
    """
    from runtime import read_job_events

    return read_job_events(jobs_root(workspace) / job_id, messages=False)


def format_time(ms: int, now: Callable[[], datetime]) -> str:
    """A stored millisecond timestamp in the clock's time zone."""
    if not ms:
        return "?"
    return datetime.fromtimestamp(ms / 1000, tz=now().tzinfo).strftime("%Y-%m-%d %H:%M:%S")


class HistoryScreen(Screen[ResumePoint | None]):
    """Past jobs, newest first; Enter opens a job's checkpoints, Enter on one resumes from it."""

    CSS_PATH = "history.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "back",
            "Back",
            tooltip="Back to the job list, or close the history.",
            id="history-back",
        ),
    ]

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
        jobs = list_jobs(self.workspace)
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
        self.checkpoints = list_checkpoints(self.workspace, self.job.id)
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
