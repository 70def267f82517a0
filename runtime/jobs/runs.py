"""A job's run segments and delegation tree, derived from its stored events.

A run segment is one ``runId``: an expert running until it completes or stops (to delegate, to
ask the user, on an error). The delegation tree groups each expert's segments into one node and
nests delegates under the node that called them, in call order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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
        }


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
    _link_segments(runs)
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
    if start is not None:
        initial = start.get("initialCheckpoint")
        initial = initial if isinstance(initial, dict) else {}
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
            targets = checkpoint.get("delegateTo")
            if isinstance(targets, list):
                info.delegated_calls = [
                    t["toolCallId"]
                    for t in targets
                    if isinstance(t, dict) and isinstance(t.get("toolCallId"), str)
                ]
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


def _link_segments(runs: list[RunInfo]) -> None:
    """Set ``parent_run_id`` / ``resumes_run_id`` from delegatedBy and the checkpoints' messages.

    A new delegate starts from an ``init`` checkpoint whose ``delegatedBy.runId`` is the parent's
    run. Any other segment continues an earlier segment of the same expert under the same parent:
    preferably the one whose final checkpoint ends with the message this one starts from (exact
    even when parallel delegates of one expert resume), else the latest such segment.
    """
    by_id = {run.run_id: run for run in runs}
    for position, run in enumerate(runs):
        delegated_by = run.delegated_by
        parent_id = delegated_by.get("runId") if delegated_by else None
        parent_id = parent_id if isinstance(parent_id, str) else None
        if delegated_by is not None and run.initial_status in ("init", None):
            run.parent_run_id = parent_id
            continue
        root_of_parent = _segment_root(by_id, parent_id) if parent_id else None
        candidates = [
            earlier
            for earlier in runs[:position]
            if earlier.expert_key == run.expert_key
            and _logical_parent(by_id, earlier) == root_of_parent
        ]
        match = next(
            (
                earlier
                for earlier in reversed(candidates)
                if run.first_message_id is not None
                and earlier.final_message_id == run.first_message_id
            ),
            candidates[-1] if candidates else None,
        )
        if match is not None:
            run.resumes_run_id = match.run_id
            run.parent_run_id = match.parent_run_id


def _segment_root(by_id: dict[str, RunInfo], run_id: str | None) -> str | None:
    """The first segment of the logical run that ``run_id`` belongs to."""
    seen: set[str] = set()
    while run_id is not None and run_id in by_id and run_id not in seen:
        seen.add(run_id)
        previous = by_id[run_id].resumes_run_id
        if previous is None:
            return run_id
        run_id = previous
    return run_id


def _logical_parent(by_id: dict[str, RunInfo], run: RunInfo) -> str | None:
    return _segment_root(by_id, run.parent_run_id) if run.parent_run_id else None


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
