"""What the run screen shows of a job: row labels, the detail of a node, the status, the phase.

No Textual here, only Rich renderables. :class:`RunView` holds the reduced job
(:class:`~studio.view_model.JobTree`) with what the screen knows about the run in flight (its
phase, the model, the last step); the step tree, the detail pane, the streaming pane and the
status line all draw from it, so they always agree.

The phase of the run in flight, before the model's first output: "starting…" from the moment the
query is submitted until the first generation is requested (config, skills), then "connecting to
<provider>…" until the first streamed token, tool call, retry or end. The job row, the
coordinator's run row and the status line say so instead of "running".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rich.console import Group, RenderableType
from rich.json import JSON
from rich.text import Text

from runtime.cli import counted
from studio.view_model import JobTree, RunNode, StepNode, ToolNode

if TYPE_CHECKING:
    from runtime import PerstackEvent, Usage
    from studio.run_controller import RunOptions

MODEL_OUTPUT = frozenset(
    {
        "callTools",
        "completeRun",
        "completeStreamingReasoning",
        "completeStreamingRunResult",
        "retry",
    }
)
"""Events that carry the model's output."""
MODEL_ANSWERING = MODEL_OUTPUT | {
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


def short(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def args_preview(args: dict[str, Any], limit: int = 48) -> str:
    """A tool call's arguments on one line (``key=json, …``), cut to ``limit`` characters."""
    return short(
        ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items()), limit
    )


def result_view(text: str, *, error: bool) -> RenderableType:
    """A tool result: JSON pretty-printed when short, else text folded after FOLD_LINES."""
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


def stream_text(node: RunNode) -> str:
    """The end of what a run is streaming: its reasoning, then its result."""
    body = node.streaming_result or node.result
    reasoning = node.streaming_reasoning
    return (reasoning[-STREAM_TAIL:] + "\n\n" if reasoning else "") + body[-STREAM_TAIL:]


def read_earlier_steps(workspace: Path, job: JobTree, node: RunNode) -> list[StepNode]:
    """The steps of ``node`` the job no longer holds, rebuilt from the job's stored events."""
    from runtime.jobs import Jobs

    if not job.job_id:
        return []
    scratch = JobTree(job.job_id)
    jobs = Jobs.for_workspace(workspace)
    for event in jobs.events(job.job_id, messages=False, run_ids=node.run_ids):
        scratch.apply(event)
    held = {step.number for step in node.steps}
    steps = [step for run in scratch.runs.values() for step in run.steps]
    return sorted((s for s in steps if s.number not in held), key=lambda s: s.number)


class RunView:
    """The job on the run screen and the state of the run in flight, as the widgets show them."""

    def __init__(
        self,
        expert_key: str,
        *,
        model_label: str,
        demo: bool = False,
        keep_steps: int | None = None,
    ) -> None:
        """Start with no job.

        Args:
            expert_key: The expert the screen runs.
            model_label: The model to show before the first run reports it.
            demo: Say "demo model" in the status line.
            keep_steps: Steps per run held in memory (see ``JobTree``).
        """
        self.expert_key = expert_key
        self.model_label = model_label
        self.demo = demo
        self.keep_steps = keep_steps
        self.job = JobTree(keep_steps=keep_steps)
        self.phase: Phase | None = None
        """The run in flight before the model's first output; ``None`` otherwise."""
        self.provider: str | None = None
        """The provider the run in flight calls, when known (for "connecting to …")."""
        self.pending_query = ""
        """The query of the run in flight, shown in the job's detail until its run appears."""
        self.last_step = 0
        self.earlier: dict[str, dict[int, StepNode]] = {}
        """Run node id → its dropped steps, read back while their node is open."""

    def reset(self, job_id: str) -> None:
        """Show ``job_id`` from its first event (a stored job, replayed)."""
        self.job = JobTree(job_id, keep_steps=self.keep_steps)
        self.earlier.clear()
        self.last_step = 0

    def apply(self, event: PerstackEvent) -> RunNode | None:
        """Fold one event into the job; returns the run it belongs to, if any."""
        self.job.apply(event)
        step = getattr(event, "step_number", None)
        if step:
            self.last_step = step
        if event.type == "initializeRuntime":
            self.model_label = event.model
        return self.job.node(event.run_id) if hasattr(event, "run_id") else None

    # the phase -------------------------------------------------------------------------------

    def phase_after(self, event_type: str) -> Phase | None:
        """The phase once an event of ``event_type`` has arrived."""
        if self.phase is None or event_type in MODEL_ANSWERING:
            return None
        return "connecting" if event_type == "startGeneration" else self.phase

    def phase_text(self) -> str:
        """What the run in flight is doing before the model's first output ("" after it)."""
        if self.phase == "starting":
            return "starting…"
        if self.phase == "connecting":
            return f"connecting to {self.provider or 'the model'}…"
        return ""

    def look(self, node: RunNode) -> tuple[str, str, str]:
        """Glyph, colour and word for a run's status (its phase, for the run in flight)."""
        in_flight = node.status == "running" and node.node_id == self.job.roots[-1]
        if self.phase is not None and in_flight:
            return (*PHASE_LOOK, self.phase_text())
        return RUN_LOOK.get(node.status, ("·", "white", node.status))

    # the tree's rows -------------------------------------------------------------------------

    def job_label(self) -> Text:
        """The job's row: status, id, runs and tokens."""
        job = self.job
        roots = [job.runs[r] for r in job.roots]
        if not roots and self.phase is not None:
            glyph, colour = PHASE_LOOK
            return Text.assemble(
                (f"{glyph} ", colour), ("job", "bold"), (f"  {self.phase_text()}", colour)
            )
        if not roots:
            return Text("job · waiting for a query", style="bright_black")
        total = sum((job.rollup(r) for r in roots[1:]), job.rollup(roots[0]))
        status = roots[-1].status
        glyph, colour, word = RUN_LOOK.get(status, ("·", "white", status))
        if self.phase is not None:
            # Also while a follow-up has no run yet (the newest root is the previous one).
            glyph, colour, word = (*PHASE_LOOK, self.phase_text())
        return Text.assemble(
            (f"{glyph} ", colour),
            ("job ", "bold"),
            (job.job_id or "", "bold"),
            f"  {word} · {counted(len(job.runs), 'run')} · {usage_text(total)}",
        )

    def run_label(self, node: RunNode) -> Text:
        """A run's row: status, branch, steps with its delegates', tokens, staleness."""
        glyph, colour, word = self.look(node)
        steps = self.job.total_steps(node)
        label = Text.assemble(
            (f"{glyph} ", colour), (node.expert_key, "bold"), (f"  {word}", colour)
        )
        if node.fork_step is not None:
            label.append(f" · ↱ branch from step {node.fork_step}", style="cyan")
        label.append(f" · {counted(steps, 'step')} · {usage_text(self.job.rollup(node))}")
        if node.stale:
            label.append(" · older definition", style="italic bright_black")
        return label

    @staticmethod
    def step_label(step: StepNode) -> Text:
        """A step's row: its number, retries, and its message when it called no tool."""
        label = Text(f"step {step.number}", style="bold")
        if step.retries:
            label.append(f" · {len(step.retries)} retr{'y' if len(step.retries) == 1 else 'ies'}")
        if not step.calls:
            text = step.text or step.reasoning
            if text:
                label.append("  " + short(text, 50), style="italic")
        return label

    @staticmethod
    def call_label(call: ToolNode) -> Text:
        """A tool call's row: status, tool and arguments."""
        glyph, colour = CALL_LOOK.get(call.status, ("·", "white"))
        return Text.assemble(
            (f"{glyph} ", colour),
            (call.tool_name, "bold"),
            (f"({args_preview(call.args)})", "bright_black"),
        )

    # the status line -------------------------------------------------------------------------

    def status_parts(self, *, running: bool, waiting: bool, failed: bool) -> list[str]:
        """The status line: expert, model, step, tokens, and what the run is doing."""
        roots = [self.job.runs[r] for r in self.job.roots]
        usage = None
        for root in roots:
            rolled = self.job.rollup(root)
            usage = rolled if usage is None else usage + rolled
        state = "running" if running else "idle"
        if self.phase is not None:
            state = self.phase_text()
        elif waiting:
            state = "waiting for input"
        elif failed and not running:
            state = "failed"
        elif roots and not running:
            state = RUN_LOOK.get(roots[-1].status, ("", "", roots[-1].status))[2]
        parts = [self.expert_key, self.model_label]
        if self.demo:
            parts.append("demo model")
        parts += [
            f"step {self.last_step}" if self.last_step else "no steps yet",
            usage_text(usage) if usage is not None else "0 tok",
            state,
        ]
        return parts

    # the detail pane -------------------------------------------------------------------------

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
            steps = list(self.earlier.get(node.node_id, {}).values())
        if kind == "step":
            step = next((s for s in steps if str(s.number) == key[2]), None)
            return self._step_detail(node, step) if step else Text("")
        call = next((c for s in steps for c in s.calls if c.call_id == key[2]), None)
        return self._call_detail(call) if call else Text("")

    def _job_detail(self) -> RenderableType:
        job = self.job
        if not job.roots and self.phase is not None:
            return Text.assemble(
                (f"Starting {self.expert_key}…\n\n", "bold"),
                ("▶ ", "bold"),
                short(self.pending_query, 200),
            )
        if not job.roots:
            return Text.assemble(
                ("No job yet.\n\n", "bold"),
                f"Type a query for {self.expert_key} below and press Enter. "
                "F5 opens the history of past jobs.",
            )
        lines = [Text.assemble(("Job ", "bold"), job.job_id or "")]
        for root_id in job.roots:
            root = job.runs[root_id]
            for query in root.queries[:-1]:  # earlier queries the run went on from
                lines.append(Text.assemble(("\n▶ ", "bold"), short(query, 200)))
            lines.append(
                Text.assemble(
                    ("\n▶ ", "bold"),
                    short(root.queries[-1] if root.queries else "(resumed)", 200),
                    (f"\n  {self.look(root)[2]}", "italic"),
                    f" · {usage_text(job.rollup(root))}",
                )
            )
            if root.result:
                lines.append(Text("  " + short(root.result, 300)))
        return Group(*lines)

    def _run_detail(self, node: RunNode) -> RenderableType:
        word = self.look(node)[2]
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

    @staticmethod
    def _step_detail(node: RunNode, step: StepNode) -> RenderableType:
        parts: list[RenderableType] = [
            Text.assemble(
                ("Step ", "bold"),
                (str(step.number), "bold"),
                f" of {node.expert_key} · {counted(len(step.calls), 'tool call')} · took "
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

    def _call_detail(self, call: ToolNode) -> RenderableType:
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
            parts.append(result_view(call.result, error=call.is_error))
        return Group(*parts)


def planned_model(options: RunOptions) -> str:
    """The model a run of ``options`` will use, as the status bar shows it before the run does.

    ``--model``, else perstack.toml's ``model``, else the runtime's default: the same rule the
    run applies (it used to say "default model" although the file set one).
    """
    from runtime import PerstackError, load_config_for
    from runtime.config import effective_settings

    try:
        loaded = load_config_for(options.expert_key, options.config_path, options.workspace)
        return effective_settings(loaded, provider=options.provider, model=options.model).model
    except PerstackError:  # the run reports the problem; until then, what was asked for
        return options.model or "default model"
