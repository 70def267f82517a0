"""Two jobs side by side: their runs and steps aligned, the first divergence selected.

The comparison is the runtime's (:func:`runtime.diff.diff_jobs`, the same as ``perstack diff``),
made in a worker: the screen shows it, moves between the rows that differ, and details the
selected row below the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.worker import Worker

from runtime import StorageError
from runtime.diff import JobDiff, describe_job, diff_jobs
from runtime.jobs import Jobs
from studio.keys import bindings
from studio.messages import forward_worker_failure
from studio.widgets.diff_detail import DiffDetail
from studio.widgets.diff_table import DiffTable
from studio.widgets.footer import StudioFooter


class DiffScreen(Screen[None]):
    """Job A against job B; Esc goes back to where the comparison was asked for."""

    CSS_PATH = "diff.tcss"
    BINDINGS: ClassVar[list[BindingType]] = bindings("diff-back", "diff-next", "diff-previous")

    def __init__(self, workspace: Path, job_a: str, job_b: str) -> None:
        super().__init__()
        self.workspace = workspace
        self.job_a = job_a
        self.job_b = job_b
        self.result: JobDiff | None = None
        """The comparison, once made."""
        self.error: str | None = None
        """Why it could not be made."""

    def compose(self) -> ComposeResult:
        with Vertical(id="diff-body"):
            yield Static(f"Comparing job {self.job_a} with job {self.job_b}…", id="diff-title")
            yield Static("", id="diff-jobs")
            yield DiffTable(id="diff-table")
            yield DiffDetail(id="diff-detail")
        yield StudioFooter()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        forward_worker_failure(self, event)

    def on_mount(self) -> None:
        self._compare()

    @work(thread=True, exclusive=True, group="diff", exit_on_error=False)
    def _compare(self) -> None:
        try:
            result = diff_jobs(Jobs.for_workspace(self.workspace), self.job_a, self.job_b)
        except StorageError as error:
            self.app.call_from_thread(self._failed, error.message)
            return
        except (OSError, ValueError) as error:  # an unreadable job: said, not a crash
            self.app.call_from_thread(self._failed, f"{type(error).__name__}: {error}")
            return
        self.app.call_from_thread(self._show, result)

    def _failed(self, message: str) -> None:
        self.error = message
        self.query_one("#diff-title", Static).update(Text(f"Cannot compare: {message}", "red"))

    def _show(self, result: JobDiff) -> None:
        self.result = result
        self.query_one("#diff-title", Static).update(
            Text(result.summary, style="bold" if result.same else "bold yellow")
        )
        self.query_one("#diff-jobs", Static).update(
            Text.assemble(
                ("A ", "bold red"),
                describe_job(result.a),
                "\n",
                ("B ", "bold green"),
                describe_job(result.b),
            )
        )
        table = self.query_one(DiffTable)
        table.show(result, table.size.width or self.size.width - 2)
        first = table.row_of(result.first) if result.first is not None else None
        table.move_cursor(row=first or 0)
        table.focus()
        self._detail()

    @on(DataTable.RowHighlighted, "#diff-table")
    def _highlighted(self) -> None:
        self._detail()

    def _detail(self) -> None:
        if self.result is not None:
            detail = self.query_one(DiffDetail)
            detail.show(self.query_one(DiffTable).current, self.result)

    def _move(self, step: int) -> None:
        table = self.query_one(DiffTable)
        rows = table.rows_shown
        index = table.cursor_row + step
        while 0 <= index < len(rows):
            if rows[index].differs:
                table.move_cursor(row=index)
                return
            index += step
        self.notify("No more differences that way.", timeout=2)

    def action_next_difference(self) -> None:
        """Select the next row that differs."""
        self._move(1)

    def action_previous_difference(self) -> None:
        """Select the previous row that differs."""
        self._move(-1)

    def action_back(self) -> None:
        """Close the comparison."""
        self.dismiss(None)
