"""A job's run segments and delegation tree, and the one rule that places and counts them.

A run segment is one ``runId``: an expert running until it completes or stops (to delegate, to
ask the user, on an error, on an interrupt). The delegation tree groups each expert's segments into
one node and nests delegates under the node that called them, in call order.

This module owns the rule; the jobs API (:func:`build_runs`, :func:`build_tree`), ``perstack log``
and the studio's live tree (:class:`SegmentLinker`, fed one event at a time) all apply it:

- **Where a segment goes.** A node is one expert working for one caller: the coordinator, or a
  delegate for one tool call. A segment that starts from the checkpoint its node last stored
  (after its delegates, after an interactive answer, a follow-up query, a resume after an
  interrupt) continues that node, so a continued job keeps every run under the call that started
  it. A segment that starts from an *earlier* checkpoint (a resume from the history) starts a
  **branch**: a new node beside the one it branched from (same caller, same call), that says
  which node and after which step. The old branch's later steps stay in their own node.
- **Step numbers** are Perstack's ``stepNumber``, as the events carry them: one job-wide clock
  that delegates continue and that parallel delegates and branches share (two delegates running
  side by side both take steps 3-5).
- **Step counts** are counts of distinct step numbers (:func:`count_steps`): a run's own steps,
  a subtree's steps (its runs' together: a coordinator with two parallel delegates over steps 3-5
  counts those three steps once), and the job's, which is what its history row shows.
- **Usage** is each segment's own generations; a subtree's and the job's are sums over their
  segments (every branch included: all tokens the job spent).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.jobs.lock import INTERRUPTED_ERROR, JOB_INTERRUPTED
from runtime.jobs.records import JSON, EventRecord, EventSource
from runtime.jobs.store import MESSAGES_REF, Storage, is_inside, read_json_file
from runtime.schema.kinds import TERMINAL_EVENT_TYPES

_STATUS_BY_TERMINAL = {
    "completeRun": "completed",
    "stopRunByDelegate": "stoppedByDelegate",
    "stopRunByInteractiveTool": "stoppedByInteractiveTool",
    "stopRunByExceededMaxSteps": "stoppedByExceededMaxSteps",
    "stopRunByError": "stoppedByError",
}
JOB_STATUS_BY_RUN_STATUS = {
    "completed": "completed",
    "stoppedByInteractiveTool": "stoppedByInteractiveTool",
    "stoppedByExceededMaxSteps": "stoppedByMaxSteps",
    "stoppedByError": "stoppedByError",
    JOB_INTERRUPTED: JOB_INTERRUPTED,
}
_USAGE_FIELDS = (
    "inputTokens",
    "outputTokens",
    "reasoningTokens",
    "totalTokens",
    "cachedInputTokens",
)


def is_number(value: object) -> bool:
    """A JSON number (a bool is not one, although Python says it is an int)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def empty_usage() -> JSON:
    """Usage with every token count at zero and no cost."""
    return _usage(None)


def _usage(value: object) -> JSON:
    source = value if isinstance(value, dict) else {}
    usage: JSON = {}
    for name in _USAGE_FIELDS:
        number = source.get(name, 0)
        usage[name] = number if is_number(number) else 0
    cost = source.get("costUsd")
    if is_number(cost):
        usage["costUsd"] = cost
    return usage


def _usage_delta(end: JSON, start: JSON) -> JSON:
    delta: JSON = {name: max(0, end[name] - start[name]) for name in _USAGE_FIELDS}
    if "costUsd" in end:
        delta["costUsd"] = max(0.0, end["costUsd"] - start.get("costUsd", 0.0))
    return delta


def add_usage(left: JSON, right: JSON) -> JSON:
    """Field-wise sum of two usage objects (cost stays absent when neither has one)."""
    total: JSON = {name: left.get(name, 0) + right.get(name, 0) for name in _USAGE_FIELDS}
    if "costUsd" in left or "costUsd" in right:
        total["costUsd"] = left.get("costUsd", 0.0) + right.get("costUsd", 0.0)
    return total


def _last_message_id(checkpoint: JSON) -> str | None:
    ref = checkpoint.get(MESSAGES_REF)
    if isinstance(ref, dict):
        message_id = ref.get("lastMessageId")
        return message_id if isinstance(message_id, str) else None
    messages = checkpoint.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        message_id = messages[-1].get("id")
        return message_id if isinstance(message_id, str) else None
    return None


def first_user_text(messages: object) -> str | None:
    """The first text part of the first user message in ``messages`` (a stored message list)."""
    if not isinstance(messages, list):
        return None
    for message in messages:
        if isinstance(message, dict) and message.get("type") == "userMessage":
            text = first_text_part(message.get("contents"))
            if text is not None:
                return text
    return None


def first_text_part(contents: object) -> str | None:
    """The text of the first ``textPart`` in a list of parts."""
    if isinstance(contents, list):
        for part in contents:
            if isinstance(part, dict) and part.get("type") == "textPart":
                text = part.get("text")
                if isinstance(text, str):
                    return text
    return None


# The rule ----------------------------------------------------------------------------------

_RESUMED_STATUSES = frozenset({"stoppedByDelegate", "stoppedByInteractiveTool"})
"""Start statuses of a segment that brings results for the calls its node stopped for."""
_STOP_FOR_CALLS = frozenset({"stopRunByDelegate", "stopRunByInteractiveTool"})
"""Terminal events of a segment that stops to wait for calls (delegates, an answer)."""
CHECKPOINT_EVENT_TYPES = TERMINAL_EVENT_TYPES | {"continueToNextStep"}
"""Events that carry a checkpoint the job stores: the step they are numbered with is stored."""


class StepNumbers:
    """A set of step numbers held as sorted, disjoint ranges: a run of 10,000 steps is a few.

    For views that count steps as events arrive (the studio's tree): adding a number and
    counting stay cheap however long the job.
    """

    __slots__ = ("_ranges",)

    def __init__(self, numbers: Iterable[int] = ()) -> None:
        self._ranges: list[list[int]] = []
        for number in numbers:
            self.add(number)

    def add(self, number: int) -> None:
        """Add a step number (in any order; the next one is the cheap case)."""
        ranges = self._ranges
        if ranges and ranges[-1][0] <= number <= ranges[-1][1] + 1:
            ranges[-1][1] = max(ranges[-1][1], number)
            return
        index = bisect.bisect_right(ranges, number, key=_low)
        if index and ranges[index - 1][1] >= number - 1:
            index -= 1
            ranges[index][1] = max(ranges[index][1], number)
        else:
            ranges.insert(index, [number, number])
        while index + 1 < len(ranges) and ranges[index + 1][0] <= ranges[index][1] + 1:
            ranges[index][1] = max(ranges[index][1], ranges.pop(index + 1)[1])

    @property
    def ranges(self) -> list[tuple[int, int]]:
        """The numbers as inclusive ranges, ascending."""
        return [(low, high) for low, high in self._ranges]

    def __contains__(self, number: object) -> bool:
        if not isinstance(number, int):
            return False
        index = bisect.bisect_right(self._ranges, number, key=_low)
        return bool(index) and self._ranges[index - 1][1] >= number

    def __iter__(self) -> Iterator[int]:
        for low, high in self._ranges:
            yield from range(low, high + 1)

    def __len__(self) -> int:
        return sum(high - low + 1 for low, high in self._ranges)


def _low(pair: list[int]) -> int:
    return pair[0]


def count_steps(*step_numbers: Iterable[int]) -> int:
    """The one step count: how many distinct step numbers ``step_numbers`` hold together.

    Steps are numbered on the job's clock (Perstack's ``stepNumber``), which parallel delegates
    and branches share, so a count over several runs counts each step number once.
    :class:`StepNumbers` are counted by their ranges, without listing their numbers.
    """
    ranges: list[tuple[int, int]] = []
    for numbers in step_numbers:
        if isinstance(numbers, StepNumbers):
            ranges.extend(numbers.ranges)
        else:
            ranges.extend((number, number) for number in set(numbers))
    count, reached = 0, None
    for low, high in sorted(ranges):
        if reached is not None and low <= reached:
            low = reached + 1
        if high >= low:
            count += high - low + 1
        reached = high if reached is None else max(reached, high)
    return count


def _as_json(checkpoint: Any, fields: set[str]) -> Mapping[str, Any]:
    """A checkpoint as stored (camelCase JSON), from the stored JSON or the runtime's model."""
    if isinstance(checkpoint, Mapping):
        return checkpoint
    dump = getattr(checkpoint, "model_dump", None)
    if dump is None:
        return {}
    data = dump(mode="json", by_alias=True, include=fields)
    return data if isinstance(data, dict) else {}


def _call_ids(items: object, key: str) -> list[str]:
    if not isinstance(items, list):
        return []
    return [
        item[key] for item in items if isinstance(item, dict) and isinstance(item.get(key), str)
    ]


@dataclass(frozen=True)
class SegmentStart:
    """What the start of a run segment says about where it belongs (its ``startRun``).

    Build it with :meth:`of` from the segment's initial checkpoint.

    Attributes:
        run_id: The segment.
        expert_key: Its expert.
        step: The step number of its initial checkpoint (None when unknown).
        status: The status of its initial checkpoint (``init`` for a new run; None when its
            start was not stored).
        caller_run_id: ``delegatedBy.runId``: the run that delegated (for a delegate).
        call_id: ``delegatedBy.toolCallId``: the tool call it works for (for a delegate).
        answers: The tool calls whose results it starts with, when it resumes after its
            delegates or an interactive answer.
    """

    run_id: str
    expert_key: str
    step: int | None = None
    status: str | None = None
    caller_run_id: str | None = None
    call_id: str | None = None
    answers: tuple[str, ...] = ()

    @classmethod
    def of(cls, run_id: str, expert_key: str, initial: Any) -> SegmentStart:
        """The start of ``run_id`` from its initial checkpoint (stored JSON or the model)."""
        data = _as_json(
            initial,
            {"step_number", "status", "delegated_by", "delegate_to", "partial_tool_results"},
        )
        step = data.get("stepNumber")
        status = data.get("status")
        by = data.get("delegatedBy")
        by = by if isinstance(by, dict) else {}
        answers: list[str] = []
        if status in _RESUMED_STATUSES:
            answers = _call_ids(data.get("delegateTo"), "toolCallId")
            answers += _call_ids(data.get("partialToolResults"), "id")
        caller, call = by.get("runId"), by.get("toolCallId")
        return cls(
            run_id=run_id,
            expert_key=expert_key,
            step=step if is_number(step) and isinstance(step, int) else None,
            status=status if isinstance(status, str) else None,
            caller_run_id=caller if isinstance(caller, str) else None,
            call_id=call if isinstance(call, str) else None,
            answers=tuple(dict.fromkeys(answers)),
        )


def stop_calls(event_type: str, checkpoint: Any) -> list[str]:
    """The tool calls a segment stopped to wait for (its delegates, the question it asked).

    Args:
        event_type: The segment's terminal event type.
        checkpoint: That event's checkpoint (stored JSON or the model).
    """
    if event_type not in _STOP_FOR_CALLS:
        return []
    data = _as_json(checkpoint, {"delegate_to", "pending_tool_calls"})
    calls = _call_ids(data.get("delegateTo"), "toolCallId")
    return calls + [c for c in _call_ids(data.get("pendingToolCalls"), "id") if c not in calls]


@dataclass(frozen=True)
class Placement:
    """Where :meth:`SegmentLinker.place` put a segment.

    Attributes:
        node_id: The node it belongs to: the run id of the node's first segment.
        new: Whether it starts that node.
        parent_run_id: The caller's segment that made the call (None for a root): for a
            continuing or branching segment, the one its node's first segment has.
        call_id: The tool call the node works for (None for the coordinator).
        resumes: The node's previous segment, which this one continues (when not new).
        branch_of: For a new branch: the node it branches from.
        fork_step: For a new branch: the step number of the checkpoint it started from.
    """

    node_id: str
    new: bool
    parent_run_id: str | None = None
    call_id: str | None = None
    resumes: str | None = None
    branch_of: str | None = None
    fork_step: int | None = None


@dataclass
class _Line:
    """A node as the linker tracks it."""

    node_id: str
    parent_run_id: str | None
    tip: int | None
    """Step number of the node's latest stored checkpoint (where a continuation starts from)."""
    stored: StepNumbers = field(default_factory=StepNumbers)
    runs: list[str] = field(default_factory=list)


class SegmentLinker:
    """The rule that places run segments into nodes, one segment at a time (see the module).

    Feed it in time order: :meth:`place` each segment when it starts, :meth:`stored` each
    checkpoint a segment stores, :meth:`stopped_for` the calls a segment stops to wait for. The
    jobs API feeds it the runs it read; the studio feeds it the events as they come.
    """

    def __init__(self) -> None:
        self._lines: dict[str, _Line] = {}
        self._node_of: dict[str, str] = {}
        self._by_key: dict[tuple[str, str | None], list[_Line]] = {}
        self._caller: dict[str, str] = {}
        """Tool call id → the segment that stopped to wait for it."""
        self._stops: dict[str, tuple[frozenset[str], int | None]] = {}
        """Run id → the calls it stopped for and the step it stopped at."""

    def place(self, start: SegmentStart) -> Placement:
        """Put a segment that starts now into its node, a new node, or a new branch."""
        if (known := self._node_of.get(start.run_id)) is not None:
            return Placement(node_id=known, new=False)
        key = (start.expert_key, start.call_id)
        candidates = self._by_key.get(key, [])
        origin = self._origin(start, candidates) if candidates else None
        if origin is not None:
            line, fork = origin
            if fork is None or line.tip is None or fork >= line.tip:
                self._join(line, start.run_id, fork)
                return Placement(
                    node_id=line.node_id,
                    new=False,
                    parent_run_id=line.parent_run_id,
                    call_id=start.call_id,
                    resumes=line.runs[-2],
                )
            branch = self._new_line(start, key, line.parent_run_id, tip=fork)
            return Placement(
                node_id=branch.node_id,
                new=True,
                parent_run_id=branch.parent_run_id,
                call_id=start.call_id,
                branch_of=line.node_id,
                fork_step=fork,
            )
        # The segment that stopped for the call, else the run the start names: a delegate
        # started again by a continuation names a run that never ran (the continuation's).
        parent = self._caller.get(start.call_id or "", start.caller_run_id)
        before = start.step - 1 if start.step is not None else None
        line = self._new_line(start, key, parent, tip=before)
        return Placement(
            node_id=line.node_id, new=True, parent_run_id=parent, call_id=start.call_id
        )

    def stored(self, run_id: str, step: int) -> None:
        """A placed segment stored its checkpoint of step ``step``."""
        node = self._node_of.get(run_id)
        if node is not None:
            line = self._lines[node]
            line.stored.add(step)
            line.tip = step

    def stopped_for(self, run_id: str, call_ids: Iterable[str], step: int | None) -> None:
        """A placed segment stopped at ``step`` to wait for these tool calls."""
        calls = frozenset(call_ids)
        self._stops[run_id] = (calls, step)
        for call in calls:
            self._caller[call] = run_id

    def _origin(
        self, start: SegmentStart, candidates: list[_Line]
    ) -> tuple[_Line, int | None] | None:
        """The node a segment goes on from, and the step of the checkpoint it starts from."""
        if start.answers:
            answers = set(start.answers)
            for line in reversed(candidates):
                for run_id in reversed(line.runs):
                    calls, step = self._stops.get(run_id, (frozenset(), None))
                    if calls & answers:
                        return line, step
        if start.step is None or start.status is None:
            return candidates[-1], None  # nothing to go by: the latest goes on
        # Continuations number their first step one past the checkpoint they start from.
        before = start.step - 1
        for line in reversed(candidates):
            if before in line.stored:
                return line, before
        for line in reversed(candidates):
            if line.tip is None or line.tip <= before:
                return line, before  # past everything stored (a step run but never stored)
        return candidates[0], before

    def _join(self, line: _Line, run_id: str, fork: int | None) -> None:
        line.runs.append(run_id)
        self._node_of[run_id] = line.node_id
        if fork is not None and (line.tip is None or fork > line.tip):
            line.tip = fork

    def _new_line(
        self,
        start: SegmentStart,
        key: tuple[str, str | None],
        parent: str | None,
        *,
        tip: int | None,
    ) -> _Line:
        line = _Line(start.run_id, parent, tip, runs=[start.run_id])
        self._lines[start.run_id] = line
        self._node_of[start.run_id] = start.run_id
        self._by_key.setdefault(key, []).append(line)
        return line


@dataclass
class RunInfo:
    """One run segment (one runId) of a job, derived from its events.

    Attributes:
        run_id: The segment's id.
        expert_key: The expert that ran (never empty: falls back to the run setting).
        expert_name: The expert's name when the start event records it.
        status: Status of the last terminal event, ``running`` when there is none yet.
        initial_status: Status of the checkpoint the segment started from (``init`` when new).
        delegated_by: The start checkpoint's ``delegatedBy`` (None for the coordinator).
        steps: Distinct step numbers of the segment, ascending.
        usage: Tokens and cost of this segment's own generations.
        query: The user query the segment started with (None when it resumed).
        started_at: First event timestamp (ms).
        finished_at: Timestamp of the terminal event, if any.
        event_count: Stored events of the segment.
        parent_run_id: The run that delegated to this one (for a new delegate).
        resumes_run_id: The previous segment this one continues (resume after delegation,
            interactive answer or ``--continue``).
        first_message_id: Id of the last message of the start checkpoint (links a resume).
        final_message_id: Id of the last message of the final checkpoint (links a resume).
        delegated_calls: Tool call ids of the delegates the segment stopped for, in call order
            (its final checkpoint's ``delegateTo``).
        start: What its start says about where it belongs (see :class:`SegmentStart`).
        stored_steps: Step numbers of the checkpoints it stored, ascending.
        stopped_for: The tool calls it stopped to wait for (delegates, an interactive answer).
        branch_of: For the first segment of a branch: the first run id of the node it branches
            from (see the module docstring).
        fork_step: For the first segment of a branch: the step number it branches after.
    """

    run_id: str
    expert_key: str
    expert_name: str | None = None
    status: str = "running"
    initial_status: str | None = None
    delegated_by: JSON | None = None
    steps: list[int] = field(default_factory=list)
    usage: JSON = field(default_factory=lambda: _usage(None))
    query: str | None = None
    started_at: int | None = None
    finished_at: int | None = None
    event_count: int = 0
    parent_run_id: str | None = None
    resumes_run_id: str | None = None
    first_message_id: str | None = None
    final_message_id: str | None = None
    delegated_calls: list[str] = field(default_factory=list)
    start: SegmentStart | None = None
    stored_steps: list[int] = field(default_factory=list)
    stopped_for: list[str] = field(default_factory=list)
    branch_of: str | None = None
    fork_step: int | None = None

    def to_dict(self) -> JSON:
        """The ``runs[]`` entry of ``--json`` output."""
        data: JSON = {
            "runId": self.run_id,
            "expertKey": self.expert_key,
            "status": self.status,
            "initialStatus": self.initial_status,
            "parentRunId": self.parent_run_id,
            "resumesRunId": self.resumes_run_id,
            "firstStep": self.steps[0] if self.steps else None,
            "lastStep": self.steps[-1] if self.steps else None,
            "steps": len(self.steps),
            "eventCount": self.event_count,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "usage": self.usage,
            "query": self.query,
            "branchOf": self.branch_of,
            "forkStep": self.fork_step,
        }
        if self.expert_name is not None:
            data["expertName"] = self.expert_name
        if self.delegated_by is not None:
            data["delegatedBy"] = self.delegated_by
        return data


@dataclass
class TreeNode:
    """One expert's run in the delegation tree: its segments and the delegates it called.

    A parent that delegates stops, and resumes later as a new run segment; both segments belong
    to the same node, so the tree reads "lead → coder → tester" rather than listing lead twice.
    A branch (a segment that went on from an earlier checkpoint) is a node of its own beside the
    node it branches from: :attr:`branch_of` and :attr:`fork_step` say where it branched.
    """

    segments: list[RunInfo]
    children: list[TreeNode] = field(default_factory=list)

    @property
    def expert_key(self) -> str:
        """The node's expert."""
        return self.segments[0].expert_key

    @property
    def status(self) -> str:
        """Status of the node's latest segment."""
        return self.segments[-1].status

    @property
    def steps(self) -> list[int]:
        """Distinct step numbers over the node's segments."""
        return sorted({step for segment in self.segments for step in segment.steps})

    @property
    def total_steps(self) -> int:
        """Steps of the whole subtree, each step number once (:func:`count_steps`)."""
        return count_steps(*(node.steps for node in self.walk()))

    @property
    def branch_of(self) -> str | None:
        """For a branch: the first run id of the node it branches from."""
        return self.segments[0].branch_of

    @property
    def fork_step(self) -> int | None:
        """For a branch: the step number of the checkpoint it went on from."""
        return self.segments[0].fork_step

    def walk(self) -> list[TreeNode]:
        """This node and every node below it, parents first, children in call order."""
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes

    @property
    def usage(self) -> JSON:
        """Tokens and cost of this node's own generations (children excluded)."""
        total = _usage(None)
        for segment in self.segments:
            total = add_usage(total, segment.usage)
        return total

    @property
    def total_usage(self) -> JSON:
        """Tokens and cost of the whole subtree."""
        total = self.usage
        for child in self.children:
            total = add_usage(total, child.total_usage)
        return total

    def to_dict(self) -> JSON:
        """The node in ``delegationTree`` of ``--json`` output."""
        delegated_by = self.segments[0].delegated_by
        by: JSON | None = None
        if delegated_by is not None:
            expert = delegated_by.get("expert")
            by = {
                "expertKey": expert.get("key") if isinstance(expert, dict) else None,
                "runId": delegated_by.get("runId"),
                "toolCallId": delegated_by.get("toolCallId"),
                "toolName": delegated_by.get("toolName"),
            }
        return {
            "expertKey": self.expert_key,
            "runIds": [segment.run_id for segment in self.segments],
            "status": self.status,
            "steps": len(self.steps),
            "stepRanges": [list(pair) for pair in step_ranges(self.steps)],
            "usage": self.usage,
            "totalUsage": self.total_usage,
            "delegatedBy": by,
            "query": self.segments[0].query,
            "children": [child.to_dict() for child in self.children],
            "totalSteps": self.total_steps,
            "branchOf": self.branch_of,
            "forkStep": self.fork_step,
        }


def job_steps(runs: Iterable[RunInfo]) -> int:
    """A job's steps: its runs' distinct step numbers (:func:`count_steps`), every branch's."""
    return count_steps(*(run.steps for run in runs))


def job_usage(runs: Iterable[RunInfo]) -> JSON:
    """A job's usage: the sum of its runs' own usage, every branch's (all it spent)."""
    total = _usage(None)
    for run in runs:
        total = add_usage(total, run.usage)
    return total


def step_ranges(steps: Sequence[int]) -> list[tuple[int, int]]:
    """Collapse ascending step numbers into inclusive ranges: [1, 2, 3, 6] → [(1, 3), (6, 6)]."""
    ranges: list[tuple[int, int]] = []
    for step in steps:
        if ranges and step == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], step)
        elif not ranges or step > ranges[-1][1]:
            ranges.append((step, step))
    return ranges


def build_runs(
    storage: Storage,
    job_id: str,
    run_ids: Sequence[str],
    records: Sequence[EventRecord],
    source: EventSource,
) -> list[RunInfo]:
    """Describe each run segment from its events, ordered by start time.

    Only the start event, the last checkpoint-carrying event and (when the start event is
    missing) the run setting are decoded, so this stays cheap on long jobs.
    """
    by_run: dict[str, list[EventRecord]] = {run_id: [] for run_id in run_ids}
    for record in records:
        by_run.setdefault(record.run_id, []).append(record)
    keyed: list[tuple[int, int, RunInfo]] = []
    for order, (run_id, events) in enumerate(by_run.items()):
        info = _describe_run(storage, job_id, run_id, events, source)
        # Runs with no events sort after those that have some, in directory order.
        keyed.append((info.started_at if info.started_at is not None else 2**62, order, info))
    runs = [info for _, _, info in sorted(keyed, key=lambda item: item[:2])]
    link_segments(runs)
    return runs


def _describe_run(
    storage: Storage, job_id: str, run_id: str, events: Sequence[EventRecord], source: EventSource
) -> RunInfo:
    start = next((source.payload(r) for r in events if r.type == "startRun"), None)
    info = RunInfo(run_id=run_id, expert_key="")
    info.event_count = len(events)
    if events:
        info.started_at = events[0].timestamp
    info.steps = sorted({r.step for r in events if r.step is not None})
    start_usage = _usage(None)
    initial: JSON = {}
    if start is not None:
        stored_initial = start.get("initialCheckpoint")
        initial = stored_initial if isinstance(stored_initial, dict) else {}
        expert = initial.get("expert")
        if isinstance(expert, dict):
            info.expert_key = str(expert.get("key") or "")
            name = expert.get("name")
            info.expert_name = name if isinstance(name, str) else None
        if not info.expert_key and isinstance(start.get("expertKey"), str):
            info.expert_key = start["expertKey"]
        status = initial.get("status")
        info.initial_status = status if isinstance(status, str) else None
        delegated_by = initial.get("delegatedBy")
        info.delegated_by = delegated_by if isinstance(delegated_by, dict) else None
        start_usage = _usage(initial.get("usage"))
        info.first_message_id = _last_message_id(initial)
        info.query = first_user_text(start.get("inputMessages"))
    if not info.expert_key:
        info.expert_key = next((r.expert_key for r in events if r.expert_key), "") or ""
    if not info.expert_key:
        setting_key = _run_setting(storage, job_id, run_id, source).get("expertKey")
        info.expert_key = setting_key if isinstance(setting_key, str) and setting_key else "?"
    info.start = SegmentStart.of(run_id, info.expert_key, initial)
    info.stored_steps = sorted(
        {r.step for r in events if r.type in CHECKPOINT_EVENT_TYPES and r.step is not None}
    )
    terminal = next((r for r in reversed(events) if r.type in TERMINAL_EVENT_TYPES), None)
    if terminal is not None:
        info.finished_at = terminal.timestamp
        info.status = _STATUS_BY_TERMINAL.get(terminal.type, terminal.type)
    last = terminal or next((r for r in reversed(events) if r.type == "continueToNextStep"), None)
    payload = source.payload(last) if last is not None else None
    if payload is not None:
        checkpoint = payload.get("checkpoint")
        if isinstance(checkpoint, dict):
            if terminal is not None and isinstance(checkpoint.get("status"), str):
                info.status = checkpoint["status"]
            info.usage = _usage_delta(_usage(checkpoint.get("usage")), start_usage)
            info.final_message_id = _last_message_id(checkpoint)
            info.delegated_calls = _call_ids(checkpoint.get("delegateTo"), "toolCallId")
            if terminal is not None:
                info.stopped_for = stop_calls(terminal.type, checkpoint)
        error = payload.get("error") if terminal is not None else None
        if isinstance(error, dict) and error.get("name") == INTERRUPTED_ERROR:
            info.status = JOB_INTERRUPTED  # the stopRunByError of Ctrl+C, SIGTERM or a cancel
    return info


def _run_setting(storage: Storage, job_id: str, run_id: str, source: EventSource) -> JSON:
    """A run's run-setting.json as stored (empty when missing or unreadable, with a warning)."""
    path = storage.run_dir(job_id, run_id) / "run-setting.json"
    if not path.is_file():
        return {}
    if not is_inside(storage.job_dir(job_id), path):
        source.outside(path)
        return {}
    try:
        data = read_json_file(path)
    except OSError:
        return {}
    except ValueError as error:
        source.unreadable("run setting", path, error)
        return {}
    return data if isinstance(data, dict) else {}


def link_segments(runs: Sequence[RunInfo]) -> None:
    """Place the segments (ordered by start time) by the rule of :class:`SegmentLinker`.

    Sets each segment's ``parent_run_id`` (a run of the caller's node), ``resumes_run_id`` (the
    previous segment of its node) and, for the first segment of a branch, ``branch_of`` and
    ``fork_step``.
    """
    linker = SegmentLinker()
    for run in runs:
        start = run.start or SegmentStart(run.run_id, run.expert_key)
        placed = linker.place(start)
        run.parent_run_id = placed.parent_run_id
        run.resumes_run_id = placed.resumes
        run.branch_of, run.fork_step = placed.branch_of, placed.fork_step
        for step in run.stored_steps:
            linker.stored(run.run_id, step)
        if run.stopped_for:
            stop = run.stored_steps[-1] if run.stored_steps else None
            linker.stopped_for(run.run_id, run.stopped_for, stop)


def _segment_root(by_id: dict[str, RunInfo], run_id: str | None) -> str | None:
    """The first segment of the node that ``run_id`` belongs to."""
    seen: set[str] = set()
    while run_id is not None and run_id in by_id and run_id not in seen:
        seen.add(run_id)
        previous = by_id[run_id].resumes_run_id
        if previous is None:
            return run_id
        run_id = previous
    return run_id


def build_tree(runs: Sequence[RunInfo]) -> list[TreeNode]:
    """Group segments into nodes and nest delegates under the node that called them.

    A node's delegates are in the order they were called (parallel ones start in any order).
    """
    by_id = {run.run_id: run for run in runs}
    nodes: dict[str, TreeNode] = {}
    roots: list[TreeNode] = []
    for run in runs:
        root_id = _segment_root(by_id, run.run_id) or run.run_id
        node = nodes.get(root_id)
        if node is not None:
            node.segments.append(run)
            nodes[run.run_id] = node
            continue
        node = TreeNode(segments=[run])
        nodes[run.run_id] = node
        parent = nodes.get(run.parent_run_id) if run.parent_run_id else None
        (parent.children if parent is not None else roots).append(node)
    rank = {
        call_id: (index, position)
        for index, run in enumerate(runs)
        for position, call_id in enumerate(run.delegated_calls)
    }
    unknown = (len(runs), 0)  # jobs stored without delegateTo keep their start order
    for node in {id(n): n for n in nodes.values()}.values():
        node.children.sort(
            key=lambda child: rank.get(
                str((child.segments[0].delegated_by or {}).get("toolCallId")), unknown
            )
        )
    return roots
