"""The run screen: a live step tree of a job, the selected node's detail, streaming text.

State and who owns it:

* :class:`~studio.view_model.JobTree` (``self.job``) is the reduced job. Every
  :class:`RunEventReceived` is applied to it at once; the Tree widget is brought up to date by a
  timer at most every :data:`REFRESH_SECONDS`, touching only the runs that changed since, so a
  thousand events a second never queue redraws. A run keeps its newest :data:`KEEP_STEPS`
  steps in memory and on screen; older ones collapse into one "earlier steps" node that reads
  them back from the job's stored events when opened, so a long job does not grow the app.
* :class:`~studio.run_controller.RunController` runs the expert in a worker and reports by
  message. Only the handlers here change widgets. As soon as perstack.toml is loaded, it loads
  the model client in a thread, so the first run does not wait for it.
* The run in flight before the model's first output (``self.phase``): "starting…" from the
  moment the query is submitted until the first generation is requested (config, skills), then
  "connecting to <provider>…" until the first streamed token, tool call, retry or end. The job
  row, the coordinator's run row and the status bar say so instead of "running".
* Which runs are stale: each run reports the hash of the expert definition it ran
  (``startRun.definitionSha256``); the same timer compares it, at most every
  :data:`DEFINITION_CHECK_SECONDS`, with the definition in perstack.toml as saved now, reloading
  the file only when its size or modification time changed.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from rich.console import Group, RenderableType
from rich.json import JSON
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static, Tree
from textual.widgets.tree import TreeNode
from textual.worker import Worker, WorkerState

from studio.run_controller import PREWARM_WORKER, RunController, RunOptions
from studio.run_messages import (
    RunCancelled,
    RunEventReceived,
    RunFailed,
    RunFinished,
    RunStarted,
)
from studio.screens import settle_cursors
from studio.view_model import JobTree, RunNode, StepNode, ToolNode, settled

if TYPE_CHECKING:
    from runtime import LoadedConfig, PerstackEvent, Usage
    from studio.screens.history import ResumePoint

REFRESH_SECONDS = 0.05
"""Longest wait between an event and the tree showing it."""

_FROZEN_AFTER_MODEL_IMPORT = False
_MODEL_OUTPUT = frozenset(
    {
        "callTools",
        "completeRun",
        "completeStreamingReasoning",
        "completeStreamingRunResult",
        "retry",
    }
)
_MODEL_ANSWERING = _MODEL_OUTPUT | {
    "startStreamingReasoning",
    "streamReasoning",
    "startStreamingRunResult",
    "streamRunResult",
    "stopRunByError",
    "stopRunByExceededMaxSteps",
    "stopRunByInteractiveTool",
    "stopRunByDelegate",
}
"""Events that end the "connecting" phase: the provider answered, or the run ended anyway."""

Phase = Literal["starting", "connecting"]
"""Where a run is before the model's first output (see the module docstring)."""
PHASE_LOOK = ("◌", "yellow")
"""Glyph and colour of a run in a phase (a run that is running, but has no output yet)."""

DEFINITION_CHECK_SECONDS = 1.0
"""How often the saved perstack.toml is looked at (a stat; it is read only when it changed)."""

KEEP_STEPS = 100
"""Steps per run held in memory and in the tree; older settled ones are read back on demand."""

FOLD_LINES = 30
"""Tool output longer than this is folded in the detail pane."""

STREAM_TAIL = 4000
"""Characters of streaming text kept on screen (the end of it)."""

NodeKey = tuple[str, ...]
"""("job",), ("run", node_id), ("step", node_id, number), ("call", node_id, call_id), or
("earlier", node_id) for a run's dropped steps; read back, those are ("step", node_id, number,
"earlier") and ("call", node_id, call_id, "earlier")."""

RUN_LOOK: dict[str, tuple[str, str, str]] = {
    "running": ("◐", "yellow", "running"),
    "delegating": ("◐", "yellow", "delegating"),
    "waiting": ("?", "magenta", "waiting for input"),
    "done": ("✓", "green", "done"),
    "failed": ("✗", "red", "failed"),
    "stopped": ("■", "red", "max steps"),
    "cancelled": ("⊘", "bright_black", "cancelled"),
}
CALL_LOOK: dict[str, tuple[str, str]] = {
    "running": ("◐", "yellow"),
    "delegated": ("↳", "cyan"),
    "waiting": ("?", "magenta"),
    "done": ("✓", "green"),
    "failed": ("✗", "red"),
}


def usage_text(usage: Usage) -> str:
    """Tokens (and how many input tokens came from the provider's prompt cache), and cost."""
    text = f"{usage.total_tokens:,} tok"
    if usage.cached_input_tokens:
        text += f" ({usage.cached_input_tokens:,} cached)"
    if usage.cost_usd is not None:
        text += f" · ${usage.cost_usd:.4f}"
    return text


def duration_text(start: int | None, end: int | None) -> str:
    """A run or step's duration (coarse under a second, so pictures stay stable)."""
    if start is None or end is None:
        return "—"
    ms = end - start
    return "<1 s" if ms < 1000 else f"{ms / 1000:.1f} s"


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _args_preview(args: dict[str, Any], limit: int = 48) -> str:
    return _short(
        ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items()), limit
    )


class RunScreen(Screen[None]):
    """Run an expert and watch its team work: job → runs → steps → tool calls."""

    CSS_PATH = "run.tcss"
    AUTO_FOCUS = "#run-query"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape,ctrl+c",
            "cancel_run",
            "Cancel run",
            tooltip="Cancel the run in flight; its last checkpoint is saved and can be resumed.",
            id="run-cancel",
        ),
        Binding(
            "ctrl+h,f5",
            "history",
            "History",
            tooltip="Past jobs of this workspace: replay one and resume from any checkpoint.",
            id="run-history",
            key_display="f5",
        ),
        Binding(
            "h",
            "history",
            "History",
            show=False,
            tooltip="Past jobs (when the tree has the focus).",
            id="run-history-tree",
        ),
        Binding(
            "ctrl+t",
            "focus_tree",
            "Tree",
            tooltip="Move the focus to the step tree.",
            id="run-focus-tree",
        ),
        Binding(
            "ctrl+l",
            "focus_query",
            "Query",
            show=False,
            tooltip="Move the focus to the query box.",
            id="run-focus-query",
        ),
    ]

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
        self.demo = demo
        self.now = now or (lambda: datetime.now().astimezone())
        self.model_label = model_label or options.model or "default model"
        self.job = JobTree(keep_steps=KEEP_STEPS)
        self.resume_point: ResumePoint | None = None
        self.error: BaseException | None = None
        self.last_step = 0
        self.finished_runs = 0
        """Runs that ended (finished, failed or cancelled) since the screen opened."""
        self.phase: Phase | None = None
        """The run in flight before the model's first output; ``None`` otherwise."""
        self.provider: str | None = None
        """The provider the run in flight calls, when known (for "connecting to …")."""
        self._pending_query = ""
        """The query of the run in flight, shown in the detail pane until its run appears."""
        self._tree_nodes: dict[NodeKey, TreeNode[NodeKey]] = {}
        self._dirty: set[str] = set()
        self._settled: dict[str, int] = {}
        """Run node id → number of its first step that may still change."""
        self._shown_steps: dict[str, list[int]] = {}
        """Run node id → step numbers with a node in the tree."""
        self._earlier: dict[str, dict[int, StepNode]] = {}
        """Run node id → its dropped steps, read back while their node is open."""
        self._rendered_version = -1
        self._streaming: str | None = None
        self._stream_seen = ""
        self._timer: Timer | None = None
        self._definitions_checked = 0.0
        self._judged_runs = 0
        self._config_stamp: tuple[Path, int, int] | None = None
        self._config: LoadedConfig | None = None
        self._current_definitions: dict[str, str | None] = {}

    # layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="run-body"):
            tree: Tree[NodeKey] = Tree("job", data=("job",), id="run-tree")
            tree.show_root = True
            tree.guide_depth = 3
            tree.root.expand()
            yield tree
            with Vertical(id="run-side"):
                with VerticalScroll(id="run-detail"):
                    yield Static("", id="run-detail-text", markup=False)
                with VerticalScroll(id="run-stream"):
                    yield Static("", id="run-stream-text", markup=False)
        yield Static("", id="run-error", markup=False)
        yield Input(placeholder="Ask the expert… (Enter runs)", id="run-query")
        yield Static("", id="run-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        # What is alive now (modules, the app's DOM) lives as long as the app. Frozen, it is
        # left out of the collector's full passes, which otherwise stall input for ~50 ms at a
        # time while a long run streams events.
        gc.freeze()
        settle_cursors(self)
        self.query_one("#run-error").display = False
        self.query_one("#run-stream", VerticalScroll).anchor()
        self.query_one("#run-stream").border_title = "Streaming"
        self.query_one("#run-detail").border_title = "Detail"
        self.query_one("#run-tree").border_title = f"Job · {self.options.expert_key}"
        self._timer = self.set_interval(REFRESH_SECONDS, self._tick, name="tree-refresh")
        # Now rather than on the first tick: loading the file starts loading the model client.
        self._reload_config_if_changed()
        self._render_all()
        if self.initial_query:
            self.query_one("#run-query", Input).value = ""
            self.run_query(self.initial_query)

    # running ---------------------------------------------------------------------------------

    def run_query(self, query: str) -> None:
        """Run a query: a new job, a follow-up, an answer or a resume, whichever fits now."""
        if self.controller.running:
            self.notify("A run is in progress; cancel it with Esc first.", severity="warning")
            return
        self._clear_error()
        if self.resume_point is not None:
            point, self.resume_point = self.resume_point, None
            self.controller.resume(point.job_id, point.checkpoint.id, query)
        elif self.controller.waiting:
            self.controller.answer(query)
        else:
            self.controller.start(query)

    @on(Input.Submitted, "#run-query")
    def _query_submitted(self, event: Input.Submitted) -> None:
        query = event.value.strip()
        if not query:
            return
        if self.controller.running:
            self.notify("A run is in progress; cancel it with Esc first.", severity="warning")
            return
        event.input.value = ""
        self.run_query(query)

    @on(RunStarted)
    def _started(self, message: RunStarted) -> None:
        self.set_class(True, "-running")
        self.provider = self.controller.provider_name(self._config or self.controller.config)
        self._pending_query = message.query
        self._set_phase("starting")
        self._render_all()

    def _set_phase(self, phase: Phase | None) -> None:
        if phase == self.phase:
            return
        self.phase = phase
        # The job row and the newest root's row show the phase; redraw them on the next refresh.
        self._dirty.update(self.job.roots[-1:])
        self._rendered_version = -1

    def phase_text(self) -> str:
        """What the run in flight is doing before the model's first output ("" after it)."""
        if self.phase == "starting":
            return "starting…"
        if self.phase == "connecting":
            return f"connecting to {self.provider or 'the model'}…"
        return ""

    def _look(self, node: RunNode) -> tuple[str, str, str]:
        """Glyph, colour and word for a run's status (its phase, for the run in flight)."""
        in_flight = node.status == "running" and node.node_id == self.job.roots[-1]
        if self.phase is not None and in_flight:
            return (*PHASE_LOOK, self.phase_text())
        return RUN_LOOK.get(node.status, ("·", "white", node.status))

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
        if not _FROZEN_AFTER_MODEL_IMPORT and event.type in _MODEL_OUTPUT:
            # The model's first reply. The client is loaded before the run (see prewarm), but
            # its first request loads more that stays (litellm imports provider modules on
            # first use; an injected model loads nothing ahead): frozen as in on_mount.
            _FROZEN_AFTER_MODEL_IMPORT = True
            gc.freeze()
        if self.phase is not None:
            if event.type in _MODEL_ANSWERING:
                self._set_phase(None)
            elif event.type == "startGeneration":
                self._set_phase("connecting")
        self.job.apply(event)
        step = getattr(event, "step_number", None)
        if step:
            self.last_step = step
        if event.type == "initializeRuntime":
            self.model_label = event.model  # type: ignore[union-attr]
        node = self.job.node(event.run_id) if hasattr(event, "run_id") else None
        if node is not None:
            self._mark_dirty(node)
            if event.type in ("streamRunResult", "streamReasoning"):
                self._streaming = node.node_id

    def replay(self, events: Iterable[PerstackEvent]) -> int:
        """Fold stored events into the tree (history replay); returns how many."""
        count = 0
        for event in events:
            self.apply_event(event)
            count += 1
        self.refresh_tree()
        return count

    def _mark_dirty(self, node: RunNode) -> None:
        current: RunNode | None = node
        while current is not None and current.node_id not in self._dirty:
            self._dirty.add(current.node_id)
            current = self.job.runs.get(current.parent_node_id or "")

    @on(RunFinished)
    def _finished(self, message: RunFinished) -> None:
        self.finished_runs += 1
        self.set_class(False, "-running")
        self._set_phase(None)
        self.refresh_tree()
        checkpoint = message.checkpoint
        if checkpoint.status == "stoppedByInteractiveTool":
            self.ask_interactive()
        else:
            self._placeholder("Follow up… (Enter continues the job)")
        self._render_status()

    @on(RunFailed)
    def _failed(self, message: RunFailed) -> None:
        self.finished_runs += 1
        self.set_class(False, "-running")
        self._set_phase(None)
        self.refresh_tree()
        self.show_error(message.error)
        self._render_status()

    @on(RunCancelled)
    def _cancelled(self, message: RunCancelled) -> None:
        self.finished_runs += 1
        self.set_class(False, "-running")
        self._set_phase(None)
        self.job.mark_cancelled()
        for node in self.job.runs.values():
            self._dirty.add(node.node_id)
        self.refresh_tree()
        self.notify(
            "Run cancelled. Its last checkpoint is saved: type a query to continue the job.",
            title="Cancelled",
        )
        self._placeholder("Continue the cancelled job… (Enter)")
        self._render_status()

    def show_error(self, error: BaseException) -> None:
        """Show an error panel above the query box, and a toast."""
        from runtime import PerstackError

        self.error = error
        if isinstance(error, PerstackError):
            title, body = error.title, error.message
        else:
            title, body = "The run failed", f"{type(error).__name__}: {error}"
        panel = self.query_one("#run-error", Static)
        panel.update(Text.assemble((f"✗ {title}\n", "bold"), body))
        panel.display = True
        self.notify(body, title=title, severity="error", timeout=8)

    def _clear_error(self) -> None:
        self.error = None
        self.query_one("#run-error").display = False

    def _placeholder(self, text: str) -> None:
        self.query_one("#run-query", Input).placeholder = text

    # interactive tools -----------------------------------------------------------------------

    def ask_interactive(self) -> None:
        """Open the dialog for the pending interactive tool call."""
        from studio.screens.interactive import InteractiveToolModal

        call = self.controller.pending_call()
        if call is None:
            return
        self._placeholder(f"Answer {call.tool_name}… (Enter resumes the run)")

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
        self.query_one("#run-tree").focus()

    def action_focus_query(self) -> None:
        """Focus the query box."""
        self.query_one("#run-query").focus()

    def _resume_at(self, point: ResumePoint | None) -> None:
        if point is None:
            return
        from studio.screens.history import stored_events

        self.load_job(point.job_id, stored_events(self.options.workspace, point.job_id))
        self.resume_point = point
        self.controller.job_id = point.job_id
        self._placeholder(
            f"Resume from step {point.checkpoint.step_number} ({point.checkpoint.status}) "
            "with a new query… (Enter)"
        )
        self.query_one("#run-query").focus()
        self.notify(f"Replayed job {point.job_id}.", title="History")

    def load_job(self, job_id: str, events: Iterable[PerstackEvent]) -> int:
        """Show a stored job: clear the tree and replay its events."""
        self.job = JobTree(job_id, keep_steps=KEEP_STEPS)
        self._shown_steps.clear()
        self._earlier.clear()
        self._tree_nodes.clear()
        self._dirty.clear()
        self._settled.clear()
        self._streaming = None
        self._stream_seen = ""
        tree = self.query_one("#run-tree", Tree)
        tree.clear()
        tree.root.expand()
        self._tree_nodes[("job",)] = tree.root
        self.last_step = 0
        return self.replay(events)

    # definitions -----------------------------------------------------------------------------

    def _tick(self) -> None:
        now = time.monotonic()
        due = now - self._definitions_checked >= DEFINITION_CHECK_SECONDS
        if due or len(self.job.runs) != self._judged_runs:
            self._definitions_checked = now
            self.check_definitions()
        self.refresh_tree()

    def check_definitions(self) -> None:
        """Mark the runs made with an expert definition other than the one saved now.

        While the file cannot be read or is invalid, the marks stay as they were: there is no
        current definition to compare with.
        """
        self._judged_runs = len(self.job.runs)
        self._reload_config_if_changed()
        if self._config is None:
            return
        for node in self.job.runs.values():
            stale = any(h != self._current_definition(node.expert_key) for h in node.definitions)
            if stale != node.stale:
                node.stale = stale
                self._mark_dirty(node)
                self.job.version += 1

    def _reload_config_if_changed(self) -> None:
        stamp = _file_stamp(self._config.path if self._config is not None else None)
        if stamp is not None and stamp == self._config_stamp:
            return
        from runtime import PerstackError, load_config_for

        options = self.options
        try:
            loaded = load_config_for(options.expert_key, options.config_path, options.workspace)
        except (PerstackError, OSError):
            self._config_stamp = None
            return
        self._config = loaded
        self._current_definitions = {}
        self._config_stamp = _file_stamp(loaded.path)
        self.controller.prewarm(loaded)

    def _current_definition(self, expert_key: str) -> str | None:
        if expert_key not in self._current_definitions:
            from runtime import PerstackError, resolve_expert

            assert self._config is not None
            try:
                current: str | None = resolve_expert(self._config, expert_key).sha256
            except PerstackError:
                current = None  # removed from the file: every run of it is older
            self._current_definitions[expert_key] = current
        return self._current_definitions[expert_key]

    # drawing ---------------------------------------------------------------------------------

    def refresh_tree(self) -> None:
        """Bring the Tree widget, the stream and the status bar up to date with the job."""
        if self.job.version == self._rendered_version:
            return
        self._rendered_version = self.job.version
        tree = self.query_one("#run-tree", Tree)
        self._tree_nodes.setdefault(("job",), tree.root)
        tree.root.set_label(self._job_label())
        for node_id in [n.node_id for _, n in self.job.walk() if n.node_id in self._dirty]:
            self._draw_run(self.job.runs[node_id])
        self._dirty.clear()
        self._render_stream()
        self._render_status()
        self._render_detail()

    def _render_all(self) -> None:
        self._rendered_version = -1
        self.refresh_tree()

    def _job_label(self) -> Text:
        roots = [self.job.runs[r] for r in self.job.roots]
        if not roots and self.phase is not None:
            glyph, colour = PHASE_LOOK
            return Text.assemble(
                (f"{glyph} ", colour), ("job", "bold"), (f"  {self.phase_text()}", colour)
            )
        if not roots:
            return Text("job · waiting for a query", style="bright_black")
        total = sum((self.job.rollup(r) for r in roots[1:]), self.job.rollup(roots[0]))
        status = roots[-1].status
        glyph, colour, word = RUN_LOOK.get(status, ("·", "white", status))
        if self.phase is not None:
            # Also while a follow-up has no run yet (the newest root is the previous one).
            glyph, colour, word = (*PHASE_LOOK, self.phase_text())
        label = Text.assemble(
            (f"{glyph} ", colour),
            ("job ", "bold"),
            (self.job.job_id or "", "bold"),
            f"  {word} · {len(self.job.runs)} runs · {usage_text(total)}",
        )
        return label

    def _run_label(self, node: RunNode) -> Text:
        glyph, colour, word = self._look(node)
        steps = sum(self.job.step_count(self.job.runs[d]) for d in self._subtree(node))
        label = Text.assemble(
            (f"{glyph} ", colour),
            (node.expert_key, "bold"),
            (f"  {word}", colour),
            f" · {steps} step{'s' if steps != 1 else ''} · {usage_text(self.job.rollup(node))}",
        )
        if node.stale:
            label.append(" · older definition", style="italic bright_black")
        return label

    def _subtree(self, node: RunNode) -> list[str]:
        out = [node.node_id]
        for child in node.children:
            out.extend(self._subtree(self.job.runs[child]))
        return out

    def _step_label(self, node: RunNode, step: StepNode) -> Text:
        label = Text(f"step {step.number}", style="bold")
        if step.retries:
            label.append(f" · {len(step.retries)} retr{'y' if len(step.retries) == 1 else 'ies'}")
        if not step.calls:
            text = step.text or step.reasoning
            if text:
                label.append("  " + _short(text, 50), style="italic")
        return label

    def _call_label(self, call: ToolNode) -> Text:
        glyph, colour = CALL_LOOK.get(call.status, ("·", "white"))
        return Text.assemble(
            (f"{glyph} ", colour),
            (call.tool_name, "bold"),
            (f"({_args_preview(call.args)})", "bright_black"),
        )

    def _parent_tree_node(self, node: RunNode) -> TreeNode[NodeKey]:
        if node.parent_node_id and node.parent_call_id:
            call_node = self._tree_nodes.get(("call", node.parent_node_id, node.parent_call_id))
            if call_node is not None:
                return call_node
        if node.parent_node_id and ("run", node.parent_node_id) in self._tree_nodes:
            return self._tree_nodes[("run", node.parent_node_id)]
        return self._tree_nodes[("job",)]

    def _draw_run(self, node: RunNode) -> None:
        key: NodeKey = ("run", node.node_id)
        tree_node = self._tree_nodes.get(key)
        if tree_node is None:
            parent = self._parent_tree_node(node)
            parent.allow_expand = True
            parent.expand()
            tree_node = parent.add(self._run_label(node), data=key)
            tree_node.expand()
            self._tree_nodes[key] = tree_node
        else:
            tree_node.set_label(self._run_label(node))
        shown = self._shown_steps.setdefault(node.node_id, [])
        if node.dropped_steps:
            self._drop_steps(node, tree_node, shown)
        first_open = self._settled.get(node.node_id, 0)
        still_open = None
        for step in node.steps:
            if step.number < first_open:
                continue
            if step.number not in shown:
                shown.append(step.number)
            self._draw_step(node, tree_node, step)
            if still_open is None and not settled(step):
                still_open = step.number
        last = node.steps[-1].number + 1 if node.steps else first_open
        self._settled[node.node_id] = still_open if still_open is not None else last

    def _drop_steps(self, node: RunNode, run_node: TreeNode[NodeKey], shown: list[int]) -> None:
        """Take the steps the job no longer holds out of the tree; count them in one node."""
        held = {step.number for step in node.steps}
        for number in [n for n in shown if n not in held]:
            shown.remove(number)
            step_node = self._tree_nodes.pop(("step", node.node_id, str(number)), None)
            if step_node is None:
                continue
            for child in step_node.children:
                if child.data is not None:
                    self._tree_nodes.pop(child.data, None)
            step_node.remove()
        key: NodeKey = ("earlier", node.node_id)
        label = Text(
            f"⋯ {node.dropped_steps:,} earlier step{'s' if node.dropped_steps != 1 else ''}",
            style="bright_black",
        )
        earlier = self._tree_nodes.get(key)
        if earlier is None:
            earlier = run_node.add(label, data=key, before=0, allow_expand=True)
            self._tree_nodes[key] = earlier
        elif not earlier.is_expanded:
            earlier.set_label(label)

    @on(Tree.NodeExpanded, "#run-tree")
    def _expanded(self, event: Tree.NodeExpanded[NodeKey]) -> None:
        key = event.node.data
        if key is None or key[0] != "earlier":
            return
        node = self.job.runs.get(key[1])
        if node is None:
            return
        steps = self._read_earlier(node)
        self._earlier[node.node_id] = {step.number: step for step in steps}
        event.node.remove_children()
        for step in steps:
            step_key: NodeKey = ("step", node.node_id, str(step.number), "earlier")
            step_node = event.node.add(self._step_label(node, step), data=step_key)
            step_node.allow_expand = bool(step.calls)
            for call in step.calls:
                call_key: NodeKey = ("call", node.node_id, call.call_id, "earlier")
                step_node.add(self._call_label(call), data=call_key, allow_expand=False)
        if not steps:
            event.node.add(Text("(not found in the stored events)", style="italic"), data=key)

    @on(Tree.NodeCollapsed, "#run-tree")
    def _collapsed(self, event: Tree.NodeCollapsed[NodeKey]) -> None:
        key = event.node.data
        if key is not None and key[0] == "earlier":
            event.node.remove_children()
            event.node.allow_expand = True
            self._earlier.pop(key[1], None)

    def _read_earlier(self, node: RunNode) -> list[StepNode]:
        """The run's dropped steps, rebuilt from the job's stored events."""
        from runtime.jobs import Jobs

        if not self.job.job_id:
            return []
        scratch = JobTree(self.job.job_id)
        jobs = Jobs.for_workspace(self.options.workspace)
        for event in jobs.events(self.job.job_id, messages=False, run_ids=node.run_ids):
            scratch.apply(event)
        held = {step.number for step in node.steps}
        steps = [step for run in scratch.runs.values() for step in run.steps]
        return sorted((s for s in steps if s.number not in held), key=lambda s: s.number)

    def _draw_step(self, node: RunNode, parent: TreeNode[NodeKey], step: StepNode) -> None:
        key: NodeKey = ("step", node.node_id, str(step.number))
        step_node = self._tree_nodes.get(key)
        if step_node is None:
            step_node = parent.add(self._step_label(node, step), data=key)
            step_node.expand()
            self._tree_nodes[key] = step_node
        else:
            step_node.set_label(self._step_label(node, step))
        step_node.allow_expand = bool(step.calls)
        for call in step.calls:
            call_key: NodeKey = ("call", node.node_id, call.call_id)
            call_node = self._tree_nodes.get(call_key)
            if call_node is None:
                call_node = step_node.add(self._call_label(call), data=call_key, allow_expand=False)
                self._tree_nodes[call_key] = call_node
            else:
                call_node.set_label(self._call_label(call))

    def _render_stream(self) -> None:
        node = self.job.runs.get(self._streaming or "")
        panel = self.query_one("#run-stream-text", Static)
        if node is None:
            text = ""
            title = "Streaming"
        else:
            body = node.streaming_result or node.result
            reasoning = node.streaming_reasoning
            text = (reasoning[-STREAM_TAIL:] + "\n\n" if reasoning else "") + body[-STREAM_TAIL:]
            title = f"Streaming · {node.expert_key}"
        if text != self._stream_seen:
            self._stream_seen = text
            panel.update(text)
        self.query_one("#run-stream").border_title = title

    def _render_status(self) -> None:
        roots = [self.job.runs[r] for r in self.job.roots]
        usage = None
        for root in roots:
            rolled = self.job.rollup(root)
            usage = rolled if usage is None else usage + rolled
        state = "running" if self.controller.running else "idle"
        if self.phase is not None:
            state = self.phase_text()
        elif self.controller.waiting:
            state = "waiting for input"
        elif self.error is not None and not self.controller.running:
            state = "failed"
        elif roots and not self.controller.running:
            state = RUN_LOOK.get(roots[-1].status, ("", "", roots[-1].status))[2]
        parts = [self.options.expert_key, self.model_label]
        if self.demo:
            parts.append("demo model")
        parts += [
            f"step {self.last_step}" if self.last_step else "no steps yet",
            usage_text(usage) if usage is not None else "0 tok",
            state,
        ]
        self.query_one("#run-status", Static).update(" · ".join(parts))

    # detail ----------------------------------------------------------------------------------

    @on(Tree.NodeHighlighted, "#run-tree")
    def _highlighted(self) -> None:
        self._render_detail()

    def _render_detail(self) -> None:
        tree = self.query_one("#run-tree", Tree)
        cursor = tree.cursor_node
        key: NodeKey = cursor.data if cursor is not None and cursor.data else ("job",)
        self.query_one("#run-detail-text", Static).update(self.detail(key))

    def detail(self, key: NodeKey) -> RenderableType:
        """What the detail pane shows for a node of the tree."""
        kind = key[0]
        if kind == "job":
            return self._job_detail()
        node = self.job.runs.get(key[1])
        if node is None:
            return Text("")
        if kind == "run":
            return self._run_detail(node)
        if kind == "earlier":
            return Text(
                f"{node.dropped_steps:,} earlier steps of {node.expert_key} are not held in "
                "memory. Open this node to read them back from the stored events."
            )
        steps = node.steps
        if len(key) > 3:  # a step read back from storage
            steps = list(self._earlier.get(node.node_id, {}).values())
        if kind == "step":
            step = next((s for s in steps if str(s.number) == key[2]), None)
            return self._step_detail(node, step) if step else Text("")
        call = next((c for s in steps for c in s.calls if c.call_id == key[2]), None)
        return self._call_detail(node, call) if call else Text("")

    def _job_detail(self) -> RenderableType:
        if not self.job.roots and self.phase is not None:
            return Text.assemble(
                (f"Starting {self.options.expert_key}…\n\n", "bold"),
                ("▶ ", "bold"),
                _short(self._pending_query, 200),
            )
        if not self.job.roots:
            return Text.assemble(
                ("No job yet.\n\n", "bold"),
                f"Type a query for {self.options.expert_key} below and press Enter. "
                "F5 opens the history of past jobs.",
            )
        lines = [Text.assemble(("Job ", "bold"), self.job.job_id or "")]
        for root_id in self.job.roots:
            root = self.job.runs[root_id]
            lines.append(
                Text.assemble(
                    ("\n▶ ", "bold"),
                    _short(root.query or "(resumed)", 200),
                    (f"\n  {self._look(root)[2]}", "italic"),
                    f" · {usage_text(self.job.rollup(root))}",
                )
            )
            if root.result:
                lines.append(Text("  " + _short(root.result, 300)))
        return Group(*lines)

    def _run_detail(self, node: RunNode) -> RenderableType:
        word = self._look(node)[2]
        parts: list[RenderableType] = [
            Text.assemble(("Run ", "bold"), (node.expert_key, "bold"), f" · {word}"),
            Text(
                f"steps {self.job.step_count(node)} · own {usage_text(node.own_usage)} · with "
                f"delegates {usage_text(self.job.rollup(node))} · took "
                f"{duration_text(node.started_at, node.finished_at)}"
            ),
        ]
        if node.stale:
            parts.append(
                Text(
                    f"Made with an older definition of {node.expert_key}: perstack.toml has "
                    "changed since. The next run uses the file as saved now.",
                    style="italic yellow",
                )
            )
        if node.query:
            parts += [Text("\nQuery", style="bold"), Text(node.query)]
        if node.error:
            parts += [Text("\nError", style="bold red"), Text(node.error, style="red")]
        if node.result:
            parts += [Text("\nResult", style="bold"), Text(node.result)]
        return Group(*parts)

    def _step_detail(self, node: RunNode, step: StepNode) -> RenderableType:
        parts: list[RenderableType] = [
            Text.assemble(
                ("Step ", "bold"),
                (str(step.number), "bold"),
                f" of {node.expert_key} · {len(step.calls)} tool calls · took "
                f"{duration_text(step.started_at, step.finished_at)}",
            )
        ]
        if step.reasoning:
            parts += [Text("\nReasoning", style="bold"), Text(step.reasoning, style="italic")]
        if step.text:
            parts += [Text("\nMessage", style="bold"), Text(step.text)]
        for retry in step.retries:
            parts.append(Text(f"\nretry: {retry}", style="yellow"))
        return Group(*parts)

    def _call_detail(self, node: RunNode, call: ToolNode) -> RenderableType:
        parts: list[RenderableType] = [
            Text.assemble(
                ("Tool call ", "bold"),
                (call.tool_name, "bold"),
                f" · {call.skill_name} · {call.status}",
            ),
            Text("\nArguments", style="bold"),
            JSON.from_data(call.args, indent=2),
        ]
        if call.child_run_ids:
            children = ", ".join(self.job.runs[c].expert_key for c in call.child_run_ids)
            parts.append(Text(f"\nDelegated to {children}", style="cyan"))
        if call.result:
            parts.append(Text("\nResult" + (" (error)" if call.is_error else ""), style="bold"))
            parts.append(_result_view(call.result, error=call.is_error))
        return Group(*parts)


def _file_stamp(path: Path | None) -> tuple[Path, int, int] | None:
    """What tells a file changed (path, mtime, size); None when it cannot be read."""
    if path is None:
        return None
    try:
        info = path.stat()
    except OSError:
        return None
    return (path, info.st_mtime_ns, info.st_size)


def _result_view(text: str, *, error: bool) -> RenderableType:
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(stripped)
        except ValueError:
            pass
        else:
            pretty = json.dumps(data, indent=2, ensure_ascii=False).splitlines()
            if len(pretty) <= FOLD_LINES:
                return JSON.from_data(data, indent=2)
            text = "\n".join(pretty)
    lines = text.splitlines()
    body = Text("\n".join(lines[:FOLD_LINES]), style="red" if error else "")
    if len(lines) > FOLD_LINES:
        body.append(f"\n… {len(lines) - FOLD_LINES} more lines folded", style="italic bright_black")
    return body
