"""The run screen: a live step tree of a job, the selected node's detail, streaming text.

State and who owns it:

* :class:`~studio.run_view.RunView` (``self.view``) holds the reduced job and the phase of the
  run in flight; every :class:`RunEventReceived` is applied to it at once. The widgets draw from
  it: the :class:`~studio.widgets.step_tree.StepTree` is brought up to date by a timer at most
  every :data:`REFRESH_SECONDS`, touching only the runs that changed since, so a thousand events
  a second never queue redraws. A run keeps its newest :data:`KEEP_STEPS` steps in memory and on
  screen; older ones collapse into one "earlier steps" node that reads them back from the job's
  stored events when opened, so a long job does not grow the app.
* :class:`~studio.run_controller.RunController` runs the expert in a worker and reports by
  message. Only the handlers here change widgets. As soon as perstack.toml is loaded, it loads
  the model client in a thread, so the first run does not wait for it.
* Which runs are stale: :class:`~studio.definitions.SavedDefinitions` compares the definition
  each run ran with the one in perstack.toml as saved now; the same timer asks it when it is due
  (every second, or as soon as a run appears).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Tree
from textual.worker import Worker, WorkerState

from studio.definitions import SavedDefinitions
from studio.keys import bindings
from studio.run_controller import PREWARM_WORKER, RunController, RunOptions
from studio.run_messages import RunCancelled, RunEventReceived, RunFailed, RunFinished, RunStarted
from studio.run_view import MODEL_OUTPUT, NodeKey, Phase, RunView, planned_model
from studio.screens import settle_cursors
from studio.widgets.error_panel import ErrorPanel
from studio.widgets.footer import StudioFooter
from studio.widgets.query_input import QueryInput
from studio.widgets.run_detail import RunDetail
from studio.widgets.status_line import StatusLine
from studio.widgets.step_tree import StepTree
from studio.widgets.stream_pane import StreamPane

if TYPE_CHECKING:
    from runtime import PerstackEvent
    from studio.edits import ExpertFields
    from studio.screens.history import ResumePoint
    from studio.view_model import JobTree

NARROW = 100
"""Below this width the tree takes the whole width, above the detail and the stream."""

REFRESH_SECONDS = 0.05
"""Longest wait between an event and the tree showing it."""

KEEP_STEPS = 100
"""Steps per run held in memory and in the tree; older settled ones are read back on demand."""

_FROZEN_AFTER_MODEL_IMPORT = False


class RunScreen(Screen[None]):
    """Run an expert and watch its team work: job → runs → steps → tool calls."""

    CSS_PATH = "run.tcss"
    AUTO_FOCUS = "#run-query"
    BINDINGS: ClassVar[list[BindingType]] = bindings(
        "run-cancel", "run-history", "run-history-tree", "run-focus-tree", "run-focus-query"
    )

    def __init__(
        self,
        options: RunOptions,
        *,
        query: str | None = None,
        demo: bool = False,
        now: Callable[[], datetime] | None = None,
        model_label: str | None = None,
    ) -> None:
        """Build the screen.

        Args:
            options: The expert and workspace to run.
            query: Run this at once when the screen opens.
            demo: Label the status bar "demo model".
            now: The clock (history times; snapshots fix it).
            model_label: The model to show before the first run reports it.
        """
        super().__init__()
        self.options = options
        self.controller = RunController(self, options)
        self.initial_query = query
        self.now = now or (lambda: datetime.now().astimezone())
        self.view = RunView(
            options.expert_key,
            model_label=model_label or planned_model(options),
            demo=demo,
            keep_steps=KEEP_STEPS,
        )
        self.definitions = SavedDefinitions(
            options.expert_key, options.config_path, options.workspace
        )
        self.resume_point: ResumePoint | None = None
        self.finished_runs = 0
        """Runs that ended (finished, failed or cancelled) since the screen opened."""
        self._rendered_version = -1

    @property
    def job(self) -> JobTree:
        """The job shown."""
        return self.view.job

    @property
    def phase(self) -> Phase | None:
        """The run in flight before the model's first output; ``None`` otherwise."""
        return self.view.phase

    @property
    def error(self) -> BaseException | None:
        """Why the last run failed, while the error panel shows it."""
        return self.error_panel.error if self.is_mounted else None

    @property
    def step_tree(self) -> StepTree:
        """The step tree."""
        return self.query_one("#run-tree", StepTree)

    @property
    def query_input(self) -> QueryInput:
        """The query box."""
        return self.query_one("#run-query", QueryInput)

    @property
    def error_panel(self) -> ErrorPanel:
        """The error panel above the query box."""
        return self.query_one("#run-error", ErrorPanel)

    # layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="run-body"):
            yield StepTree(self.view, workspace=self.options.workspace, id="run-tree")
            with Vertical(id="run-side"):
                yield RunDetail(id="run-detail")
                yield StreamPane(id="run-stream")
        yield ErrorPanel(id="run-error")
        yield QueryInput(id="run-query")
        yield StatusLine(id="run-status")
        yield StudioFooter()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW, "-narrow")

    def on_mount(self) -> None:
        # What is alive now (modules, the app's DOM) lives as long as the app. Frozen, it is
        # left out of the collector's full passes, which otherwise stall input for ~50 ms at a
        # time while a long run streams events.
        gc.freeze()
        settle_cursors(self)
        self.set_interval(REFRESH_SECONDS, self._tick, name="tree-refresh")
        # Now rather than on the first tick: loading the file starts loading the model client.
        self._reload_definitions()
        self._render_all()
        if self.initial_query:
            self.query_input.value = ""
            self.run_query(self.initial_query)

    # running ---------------------------------------------------------------------------------

    def run_query(self, query: str) -> None:
        """Run a query: a new job, a follow-up, an answer or a resume, whichever fits now."""
        if self.controller.running:
            self.notify("A run is in progress; cancel it with Esc first.", severity="warning")
            return
        self.error_panel.clear()
        if self.resume_point is not None:
            point, self.resume_point = self.resume_point, None
            self.controller.resume(point.job_id, point.checkpoint.id, query)
        elif self.controller.waiting:
            self.controller.answer(query)
        else:
            self.controller.start(query)

    @on(QueryInput.Asked)
    def _query_asked(self, message: QueryInput.Asked) -> None:
        if not self.controller.running:  # else the query stays in the box, to send later
            message.input.value = ""
        self.run_query(message.query)

    @on(RunStarted)
    def _started(self, message: RunStarted) -> None:
        self.set_class(True, "-running")
        self.view.provider = self.controller.provider_name(
            self.definitions.config or self.controller.config
        )
        self.view.pending_query = message.query
        self._set_phase("starting")
        self._render_all()

    def _set_phase(self, phase: Phase | None) -> None:
        if phase == self.view.phase:
            return
        self.view.phase = phase
        # The job row and the newest root's row show the phase; redraw them on the next refresh.
        self.step_tree.mark_runs(self.job.roots[-1:])
        self._rendered_version = -1

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Freeze what the model client's warm-up loaded, once it has."""
        if event.worker.name == PREWARM_WORKER and event.state == WorkerState.SUCCESS:
            # The model client (for litellm, tens of megabytes of modules) now lives as long
            # as the app: frozen for the reason given in on_mount.
            gc.freeze()

    @on(RunEventReceived)
    def _event(self, message: RunEventReceived) -> None:
        self.apply_event(message.event)

    def apply_event(self, event: PerstackEvent) -> None:
        """Fold one event into the job; the tree catches up on the next tick."""
        global _FROZEN_AFTER_MODEL_IMPORT
        if not _FROZEN_AFTER_MODEL_IMPORT and event.type in MODEL_OUTPUT:
            # The model's first reply. The client is loaded before the run (see prewarm), but
            # its first request loads more that stays (litellm imports provider modules on
            # first use; an injected model loads nothing ahead): frozen as in on_mount.
            _FROZEN_AFTER_MODEL_IMPORT = True
            gc.freeze()
        self._set_phase(self.view.phase_after(event.type))
        node = self.view.apply(event)
        if node is not None:
            self.step_tree.mark_dirty(node)
            if event.type in ("streamRunResult", "streamReasoning"):
                self.query_one(StreamPane).follow(node.node_id)

    def replay(self, events: Iterable[PerstackEvent]) -> int:
        """Fold stored events into the tree (history replay); returns how many."""
        count = 0
        for event in events:
            self.apply_event(event)
            count += 1
        self.refresh_tree()
        return count

    def _after_run(self, *, cancelled: bool = False) -> None:
        self.finished_runs += 1
        self.set_class(False, "-running")
        self._set_phase(None)
        if cancelled:
            self.job.mark_cancelled()
            self.step_tree.mark_runs(self.job.runs)
        self.refresh_tree()

    @on(RunFinished)
    def _finished(self, message: RunFinished) -> None:
        self._after_run()
        checkpoint = message.checkpoint
        if checkpoint.status == "stoppedByInteractiveTool":
            self.ask_interactive()
        elif self.view.demo and self.finished_runs == 1:
            # What a newcomer can do next, where they look when the demo ends.
            self.query_input.prompt(
                "Demo done: ↑/↓ and Enter open a step · F5 history · type a follow-up · "
                "Ctrl+Q quits"
            )
        else:
            self.query_input.prompt("Follow up… (Enter continues the job)")
        self._render_status()

    @on(RunFailed)
    def _failed(self, message: RunFailed) -> None:
        self._after_run()
        self.show_error(message.error)
        self._render_status()

    @on(RunCancelled)
    def _cancelled(self, message: RunCancelled) -> None:
        self._after_run(cancelled=True)
        self.notify(
            "Run cancelled. Its last checkpoint is saved: type a query to continue the job.",
            title="Cancelled",
        )
        self.query_input.prompt("Continue the cancelled job… (Enter)")
        self._render_status()

    def show_error(self, error: BaseException) -> None:
        """Show an error panel above the query box, and a toast."""
        title, body = self.error_panel.show(error)
        self.notify(body, title=title, severity="error", timeout=8)

    # interactive tools -----------------------------------------------------------------------

    def ask_interactive(self) -> None:
        """Open the dialog for the pending interactive tool call."""
        from studio.screens.interactive import InteractiveToolModal

        call = self.controller.pending_call()
        if call is None:
            return
        self.query_input.prompt(f"Answer {call.tool_name}… (Enter resumes the run)")

        def answered(text: str | None) -> None:
            if text:
                self.run_query(text)

        self.app.push_screen(
            InteractiveToolModal(call.tool_name, call.args, self.controller.input_schema(call)),
            answered,
        )

    # actions ---------------------------------------------------------------------------------

    def action_cancel_run(self) -> None:
        """Cancel the run in flight (or leave the screen when there is none and one is below)."""
        if self.controller.cancel():
            return
        if len(self.app.screen_stack) > 2:
            self.dismiss(None)

    def action_history(self) -> None:
        """Open the history of the workspace's jobs."""
        from studio.screens.history import HistoryScreen

        if self.controller.running:
            self.notify("Wait for the run to end, or cancel it, first.", severity="warning")
            return
        self.app.push_screen(HistoryScreen(self.options.workspace, now=self.now), self._resume_at)

    def action_focus_tree(self) -> None:
        """Focus the step tree."""
        self.step_tree.focus()

    def action_focus_query(self) -> None:
        """Focus the query box."""
        self.query_input.focus()

    def _resume_at(self, point: ResumePoint | None) -> None:
        if point is None:
            return
        if point.fork:
            self._fork_at(point)
            return
        from studio.screens.history import stored_events

        self.load_job(point.job_id, stored_events(self.options.workspace, point.job_id))
        self.resume_point = point
        self.controller.job_id = point.job_id
        self.query_input.prompt(
            f"Resume from step {point.checkpoint.step_number} ({point.checkpoint.status}) "
            "with a new query… (Enter)"
        )
        self.query_input.focus()
        self.notify(f"Replayed job {point.job_id}.", title="History")

    def load_job(self, job_id: str, events: Iterable[PerstackEvent]) -> int:
        """Show a stored job: clear the tree and replay its events."""
        self.view.reset(job_id)
        self.query_one(StreamPane).follow(None)
        self.step_tree.clear_job()
        # A new tree counts its versions from 0 again: the same job replayed twice reaches the
        # version last drawn, which must not pass for "already drawn" (it drew an empty tree).
        self._rendered_version = -1
        return self.replay(events)

    # definitions -----------------------------------------------------------------------------

    def _tick(self) -> None:
        if self.definitions.due(self.job):
            self.check_definitions()
        self.refresh_tree()

    def check_definitions(self) -> None:
        """Mark the runs made with an expert definition other than the one saved now.

        While the file cannot be read or is invalid, the marks stay as they were: there is no
        current definition to compare with.
        """
        self._reload_definitions()
        for node in self.definitions.mark_stale(self.job):
            self.step_tree.mark_dirty(node)
            self.job.version += 1

    def _reload_definitions(self) -> None:
        loaded = self.definitions.reload_if_changed()
        if loaded is not None:
            self.controller.prewarm(loaded)

    # drawing ---------------------------------------------------------------------------------

    def refresh_tree(self) -> None:
        """Bring the tree, the stream, the status line and the detail up to date with the job."""
        if self.job.version == self._rendered_version:
            return
        self._rendered_version = self.job.version
        self.step_tree.draw()
        stream = self.query_one(StreamPane)
        stream.show(self.job.runs.get(stream.following or ""))
        self._render_status()
        self._render_detail()

    def _render_all(self) -> None:
        self._rendered_version = -1
        self.refresh_tree()

    def _render_status(self) -> None:
        running = self.controller.running
        parts = self.view.status_parts(
            running=running, waiting=self.controller.waiting, failed=self.error is not None
        )
        self.query_one("#run-status", StatusLine).show(*parts)

    @on(Tree.NodeHighlighted, "#run-tree")
    def _highlighted(self) -> None:
        self._render_detail()

    def _render_detail(self) -> None:
        cursor = self.step_tree.cursor_node
        key: NodeKey = cursor.data if cursor is not None and cursor.data else ("job",)
        self.query_one(RunDetail).show(self.view.detail(key))

    # forks -------------------------------------------------------------------------------------

    def _fork_at(self, point: ResumePoint) -> None:
        """Edit the checkpoint's expert for the fork, then fork a new job from the checkpoint."""
        from runtime import PerstackError, load_config_for
        from runtime.jobs import Jobs
        from studio.edits import ExpertFields
        from studio.screens.expert_form import ExpertFormScreen

        key = point.checkpoint.expert_key
        try:
            loaded = load_config_for(key, self.options.config_path, self.options.workspace)
            path = loaded.path
            assert path is not None
            text = path.read_text(encoding="utf-8")
            table = loaded.config.experts[key].model_dump(by_alias=True, exclude_none=True)
        except (PerstackError, OSError, KeyError, AssertionError) as error:
            self.notify(f"Cannot fork: {error}", title="Fork", severity="error")
            return
        original = ExpertFields.from_table(key, table)
        # Prefilled with the definition the run used (its run settings keep it): the question
        # is "what if it had been told something else then", whatever the file says now.
        used = Jobs.for_workspace(self.options.workspace).definition(point.job_id, key)
        prefill = ExpertFields.from_table(key, used) if used is not None else original
        if prefill != original:
            self.notify(
                f"The form holds {key} as the run used it; {path.name} has changed since.",
                title="Fork",
            )

        def edited(fields: ExpertFields | None) -> None:
            if fields is not None:
                self._fork_with(point, path, text, fields, original)

        self.app.push_screen(
            ExpertFormScreen(prefill, experts=sorted(loaded.config.experts)), edited
        )

    def _fork_with(
        self,
        point: ResumePoint,
        path: Path,
        text: str,
        fields: ExpertFields,
        original: ExpertFields,
    ) -> None:
        from runtime import PerstackError
        from runtime.config import unified_diff
        from studio.edits import apply_expert, edit_text
        from studio.screens.confirm import ConfirmModal

        if fields.key != original.key:
            self.notify("A fork edits the expert, not its key.", title="Fork", severity="warning")
            return
        try:
            new_text, _ = edit_text(
                text, lambda document: apply_expert(document, fields, original), label=path.name
            )
        except (PerstackError, KeyError) as error:
            self.notify(f"Cannot fork: {error}", title="Fork", severity="error")
            return
        if new_text == text:
            self._start_fork(point, None)
            return

        def decided(write: bool | None) -> None:
            if write is None:
                self.notify("No fork: nothing was run or written.", title="Fork")
                return
            if not write:
                self._start_fork(point, (path, new_text))
                return
            from runtime.config import save_config

            try:
                if path.read_text(encoding="utf-8") != text:
                    self.notify(
                        f"{path.name} changed on disk since the form opened: fork again to "
                        "start from it.",
                        title="Fork",
                        severity="warning",
                    )
                    return
                save_config(path, new_text)
            except (PerstackError, OSError) as error:
                self.notify(f"{path.name} was not written: {error}", title="Fork", severity="error")
                return
            self._start_fork(point, None)

        self.app.push_screen(
            ConfirmModal(
                f"Fork {original.key} with this change",
                unified_diff(text, new_text)
                + f"\n\nWrite it into {path.name} too? Otherwise only the fork runs with it "
                "(Esc: no fork).",
                confirm_label=f"Write {path.name}",
                cancel_label="Fork only",
                escape_backs_out=True,
            ),
            decided,
        )

    def _start_fork(self, point: ResumePoint, edited: tuple[Path, str] | None) -> None:
        from studio.screens.history import stored_events

        self.load_job(point.job_id, stored_events(self.options.workspace, point.job_id))
        self.resume_point = None
        self.controller.fork(point.checkpoint.id, "", edited)
        self.notify(
            f"Forked job {point.job_id} at step {point.checkpoint.step_number}"
            + (" (edited for the fork only)" if edited else ""),
            title="Fork",
        )
