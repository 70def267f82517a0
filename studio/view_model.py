"""The step tree of a job, built from events: job → runs → steps → tool calls.

A pure reducer with no Textual import: the live studio, replays of stored jobs and the
tests all feed it the same events. It keeps only what the tree shows (never whole checkpoints).
With ``keep_steps``, a run keeps only its newest steps: older settled ones are dropped (counted in
``RunNode.dropped_steps``; their usage stays in the run's totals) and are read back from storage
when someone opens them, so memory stays flat however long the job.

Segments: Perstack gives a run a new run id each time it resumes (after its delegates, after an
interactive answer, a follow-up query, a resume after an interrupt). Where each segment goes, and
how steps are counted, is the runtime's rule (:class:`runtime.jobs.SegmentLinker`,
:func:`runtime.jobs.count_steps`), the one ``perstack log`` and the jobs API apply to stored
jobs: a continued run is the same node going on under the call that started it, and a segment that
goes on from an earlier checkpoint (a resume from the history) is a branch, a new node beside the
one it branched from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from runtime import INTERRUPTED_ERROR, PerstackEvent, Usage, tool_result_failed
from runtime.jobs import (
    CHECKPOINT_EVENT_TYPES,
    SegmentLinker,
    SegmentStart,
    StepNumbers,
    count_steps,
    stop_calls,
)

RunStatus = Literal["running", "delegating", "waiting", "done", "failed", "stopped", "cancelled"]
CallStatus = Literal["running", "done", "failed", "waiting", "delegated"]

PREVIEW = 2000
"""Characters of a tool result kept for the detail pane (long output is folded)."""


@dataclass
class ToolNode:
    """One tool call of a step."""

    call_id: str
    tool_name: str
    skill_name: str
    args: dict[str, Any]
    status: CallStatus = "running"
    result: str = ""
    is_error: bool = False
    child_run_ids: list[str] = field(default_factory=list)


@dataclass
class StepNode:
    """One step of a run."""

    number: int
    calls: list[ToolNode] = field(default_factory=list)
    reasoning: str = ""
    text: str = ""
    retries: list[str] = field(default_factory=list)
    started_at: int | None = None
    finished_at: int | None = None


@dataclass
class RunNode:
    """One expert run (all its segments), possibly delegated from a tool call of a parent."""

    node_id: str
    expert_key: str
    run_ids: list[str]
    parent_node_id: str | None
    parent_call_id: str | None
    query: str = ""
    status: RunStatus = "running"
    steps: list[StepNode] = field(default_factory=list)
    own_usage: Usage = field(default_factory=Usage)
    result: str = ""
    streaming_result: str = ""
    streaming_reasoning: str = ""
    error: str | None = None
    started_at: int | None = None
    finished_at: int | None = None
    children: list[str] = field(default_factory=list)
    dropped_steps: int = 0
    """Settled steps no longer held (see ``JobTree(keep_steps=...)``); still on disk."""
    definitions: list[str] = field(default_factory=list)
    """Hashes of the expert definitions its segments ran (``startRun.definitionSha256``)."""
    stale: bool = False
    """Made with a definition that differs from the one in perstack.toml now (set by the
    studio, which knows the file)."""
    branch_of: str | None = None
    """For a branch (it went on from an earlier checkpoint): the node it branches from."""
    fork_step: int | None = None
    """For a branch: the step number of the checkpoint it went on from."""
    queries: list[str] = field(default_factory=list)
    """Every query its segments were given, in order (``query`` is the first): a follow-up's
    goes on in the same run."""
    step_numbers: StepNumbers = field(default_factory=StepNumbers)
    """Every step number its events carried, held or dropped: what its steps are counted by."""

    def step(self, number: int) -> StepNode:
        """The step with this number, created on first use."""
        self.step_numbers.add(number)
        if not self.steps or self.steps[-1].number != number:
            for existing in reversed(self.steps):
                if existing.number == number:
                    return existing
            self.steps.append(StepNode(number=number))
        return self.steps[-1]


class JobTree:
    """The reduced state of one job. Feed it events with :meth:`apply`."""

    def __init__(self, job_id: str | None = None, *, keep_steps: int | None = None) -> None:
        """Start an empty tree.

        Args:
            job_id: The job, when known before its first event.
            keep_steps: Hold at most about this many steps per run; older settled steps
                without delegated runs are dropped. ``None`` keeps everything.
        """
        self.job_id = job_id
        self.keep_steps = keep_steps
        self.runs: dict[str, RunNode] = {}
        self.roots: list[str] = []
        self.event_count = 0
        self.version = 0
        """Bumped on every change, so a view can tell whether to redraw."""
        self._by_run_id: dict[str, RunNode] = {}
        self._linker = SegmentLinker()

    # queries ---------------------------------------------------------------------------------

    def node(self, run_id: str) -> RunNode | None:
        """The run node a run id (of any of its segments) belongs to."""
        return self._by_run_id.get(run_id)

    def rollup(self, node: RunNode) -> Usage:
        """Usage of a run and everything it delegated to."""
        total = node.own_usage
        for child in node.children:
            total = total + self.rollup(self.runs[child])
        return total

    def step_count(self, node: RunNode) -> int:
        """Steps of this run alone (held and dropped)."""
        return count_steps(node.step_numbers)

    def total_steps(self, node: RunNode) -> int:
        """Steps of a run and everything it delegated to, each step number once (the rule)."""
        return count_steps(*(self.runs[node_id].step_numbers for node_id in self.subtree(node)))

    def subtree(self, node: RunNode) -> list[str]:
        """The ids of a run and of every run below it, parents first."""
        out = [node.node_id]
        for child in node.children:
            out.extend(self.subtree(self.runs[child]))
        return out

    def walk(self) -> list[tuple[int, RunNode]]:
        """Every run with its depth, parents before children, delegates in call order."""
        out: list[tuple[int, RunNode]] = []

        def visit(node_id: str, depth: int) -> None:
            node = self.runs[node_id]
            out.append((depth, node))
            for child in node.children:
                visit(child, depth + 1)

        for root in self.roots:
            visit(root, 0)
        return out

    # reducer ---------------------------------------------------------------------------------

    def apply(self, event: PerstackEvent) -> None:
        """Fold one event into the tree."""
        self.event_count += 1
        self.job_id = self.job_id or event.job_id
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is not None:
            handler(event)
            self.version += 1
        step = getattr(event, "step_number", None)
        if step is None or event.type == "startRun":
            return
        node = self._by_run_id.get(event.run_id)
        if node is not None:
            node.step_numbers.add(step)
        if event.type in CHECKPOINT_EVENT_TYPES:
            # What the segment stored, and what it stopped for: where later segments go on from.
            self._linker.stored(event.run_id, step)
            if calls := stop_calls(event.type, getattr(event, "checkpoint", None)):
                self._linker.stopped_for(event.run_id, calls, step)

    def _on_startRun(self, event: Any) -> None:
        start = SegmentStart.of(event.run_id, event.expert_key, event.initial_checkpoint)
        placed = self._linker.place(start)
        node = None if placed.new else self.runs.get(placed.node_id)
        if node is None:
            node = RunNode(
                node_id=placed.node_id,
                expert_key=event.expert_key,
                run_ids=[],
                parent_node_id=None,
                parent_call_id=placed.call_id,
                started_at=event.timestamp,
                branch_of=placed.branch_of,
                fork_step=placed.fork_step,
            )
            self.runs[node.node_id] = node
            parent_node = self._by_run_id.get(placed.parent_run_id or "")
            if parent_node is not None:
                node.parent_node_id = parent_node.node_id
                parent_node.children.append(node.node_id)
                self._order_children(parent_node)
                if call := self._find_call(parent_node, placed.call_id or ""):
                    call.child_run_ids.append(node.node_id)
            else:
                self.roots.append(node.node_id)
        node.run_ids.append(event.run_id)
        if event.definition_sha256 and event.definition_sha256 not in node.definitions:
            node.definitions.append(event.definition_sha256)
        node.status = "running"
        node.finished_at = None
        node.error = None  # an earlier segment's: the run goes on
        self._by_run_id[event.run_id] = node
        for message in event.input_messages:
            if message.type == "userMessage":
                query = " ".join(p.text for p in message.contents if p.type == "textPart")
                node.query = node.query or query
                node.queries.append(query)
        node.step(event.step_number).started_at = event.timestamp

    def _run(self, event: Any) -> RunNode | None:
        return self._by_run_id.get(event.run_id)

    def _on_startGeneration(self, event: Any) -> None:
        if node := self._run(event):
            step = node.step(event.step_number)
            step.started_at = step.started_at or event.timestamp
            # Text streamed by an earlier step (one that ended with tool calls) is not news.
            node.streaming_result = ""

    def _on_streamReasoning(self, event: Any) -> None:
        if node := self._run(event):
            node.streaming_reasoning += event.delta

    def _on_completeStreamingReasoning(self, event: Any) -> None:
        if node := self._run(event):
            node.step(event.step_number).reasoning = event.text
            node.streaming_reasoning = ""

    def _on_startStreamingRunResult(self, event: Any) -> None:
        # Every generation streams its text, so a run can stream several times.
        if node := self._run(event):
            node.streaming_result = ""

    def _on_streamRunResult(self, event: Any) -> None:
        if node := self._run(event):
            node.streaming_result += event.delta

    def _on_completeStreamingRunResult(self, event: Any) -> None:
        if node := self._run(event):
            node.streaming_result = event.text

    def _on_callTools(self, event: Any) -> None:
        if node := self._run(event):
            step = node.step(event.step_number)
            step.text = " ".join(p.text for p in event.new_message.contents if p.type == "textPart")
            step.calls = [
                ToolNode(c.id, c.tool_name, c.skill_name, dict(c.args)) for c in event.tool_calls
            ]
            # Events of parallel runs written in the same millisecond can replay in either
            # order: a delegate that started "before" this call still belongs under it.
            for child_id in node.children:
                child = self.runs[child_id]
                for call in step.calls:
                    if child.parent_call_id == call.call_id and child_id not in call.child_run_ids:
                        call.child_run_ids.append(child_id)
            self._order_children(node)
            node.own_usage = node.own_usage + event.usage

    def _order_children(self, node: RunNode) -> None:
        """Delegates in the order their parent called them, as ``perstack log`` lists them.

        Parallel delegates start in either order, and events written in the same millisecond
        replay in either order: start order would differ between a live run and its replay.
        """
        order: dict[str, int] = {}
        for step in node.steps:
            for call in step.calls:
                order.setdefault(call.call_id, len(order))
        node.children.sort(
            key=lambda child_id: (
                order.get(self.runs[child_id].parent_call_id or "", len(order)),
                self.runs[child_id].started_at or 0,
            )
        )

    def _find_call(self, node: RunNode, call_id: str) -> ToolNode | None:
        for step in reversed(node.steps):
            for call in step.calls:
                if call.call_id == call_id:
                    return call
        return None

    def _on_resolveToolResults(self, event: Any) -> None:
        if node := self._run(event):
            for result in event.tool_results:
                call = self._find_call(node, result.id)
                if call is None:
                    continue
                text = "\n".join(p.text for p in result.result if p.type == "textPart")
                if not text and result.result:
                    text = f"[{result.result[0].type}]"
                call.result = text[:PREVIEW]
                call.is_error = _failed(result.result, result.is_error)
                call.status = "failed" if call.is_error else "done"

    def _on_attemptCompletion(self, event: Any) -> None:
        if node := self._run(event):
            call = self._find_call(node, event.tool_result.id)
            if call is not None:
                call.status = "done"
                call.result = "\n".join(
                    p.text for p in event.tool_result.result if p.type == "textPart"
                )[:PREVIEW]

    def _on_callDelegate(self, event: Any) -> None:
        if node := self._run(event):
            for c in event.tool_calls:
                if call := self._find_call(node, c.id):
                    call.status = "delegated"

    def _on_callInteractiveTool(self, event: Any) -> None:
        if (node := self._run(event)) and (call := self._find_call(node, event.tool_call.id)):
            call.status = "waiting"

    def _on_retry(self, event: Any) -> None:
        if node := self._run(event):
            node.step(event.step_number).retries.append(event.reason)
            node.own_usage = node.own_usage + event.usage

    def _on_finishAllToolCalls(self, event: Any) -> None:
        if node := self._run(event):
            for message in event.new_messages:
                for part in message.contents:
                    call = self._find_call(node, part.tool_call_id)
                    if call is None:
                        continue
                    text = "\n".join(c.text for c in part.contents if c.type == "textPart")
                    call.result = text[:PREVIEW]
                    call.is_error = _failed(part.contents, part.is_error)
                    call.status = "failed" if call.is_error else "done"

    def _on_continueToNextStep(self, event: Any) -> None:
        if node := self._run(event):
            node.step(event.step_number).finished_at = event.timestamp
            self._trim(node)

    def _trim(self, node: RunNode) -> None:
        if self.keep_steps is None or len(node.steps) <= self.keep_steps:
            return
        # Only the oldest steps go, and only settled ones whose calls started no runs (the
        # delegated runs hang under those calls).
        old = node.steps[: len(node.steps) - self.keep_steps]
        gone = {id(step) for step in old if settled(step) and not _delegated(step)}
        if gone:
            node.steps = [step for step in node.steps if id(step) not in gone]
            node.dropped_steps += len(gone)

    def _stop(self, event: Any, status: RunStatus) -> RunNode | None:
        node = self._run(event)
        if node is None:
            return None
        node.status = status
        node.step(event.step_number).finished_at = event.timestamp
        if status not in ("delegating", "waiting"):
            node.finished_at = event.timestamp
        return node

    def _on_stopRunByDelegate(self, event: Any) -> None:
        self._stop(event, "delegating")

    def _on_stopRunByInteractiveTool(self, event: Any) -> None:
        self._stop(event, "waiting")

    def _on_stopRunByExceededMaxSteps(self, event: Any) -> None:
        if node := self._stop(event, "stopped"):
            node.error = f"max steps reached at step {event.step_number}"

    def _on_stopRunByError(self, event: Any) -> None:
        if event.error.name == INTERRUPTED_ERROR:
            self._stop(event, "cancelled")
        elif node := self._stop(event, "failed"):
            node.error = f"{event.error.name}: {event.error.message}"

    def _on_completeRun(self, event: Any) -> None:
        if node := self._stop(event, "done"):
            node.result = event.text
            node.streaming_result = ""
            node.own_usage = node.own_usage + event.usage

    def mark_cancelled(self) -> None:
        """Mark every unfinished run as cancelled (the studio cancelled the job)."""
        for node in self.runs.values():
            if node.status in ("running", "delegating"):
                node.status = "cancelled"
        self.version += 1


def settled(step: StepNode) -> bool:
    """Whether a step has finished and every one of its calls has a result."""
    return step.finished_at is not None and all(c.status in ("done", "failed") for c in step.calls)


def _delegated(step: StepNode) -> bool:
    return any(call.child_run_ids for call in step.calls)


def _failed(parts: Sequence[Any], is_error: bool | None) -> bool:
    """The runtime's rule (the one ``perstack log`` marks ✗ by), on the first text part."""
    first = next((part.text for part in parts if part.type == "textPart"), "")
    return tool_result_failed(first, is_error=is_error)
