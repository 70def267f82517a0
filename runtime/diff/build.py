"""Comparing two stored jobs: read each through the jobs API, align, and find what differs."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, TypeVar

from runtime.diff.describe import describe_difference, describe_step
from runtime.diff.format import same_cost
from runtime.diff.model import (
    FIELDS,
    JSON,
    CallView,
    Difference,
    Divergence,
    JobDiff,
    JobSide,
    NodeDiff,
    NodeSide,
    ResultView,
    StepDiff,
    StepView,
    usage_dict,
)
from runtime.errors import StorageError
from runtime.jobs.api import Jobs, JobSummary
from runtime.jobs.lock import INTERRUPTED_ERROR
from runtime.jobs.runs import TreeNode
from runtime.schema.checkpoint import Step, ToolResult, Usage
from runtime.schema.events import (
    CompleteRun,
    ContinueToNextStep,
    PerstackEvent,
    StopRunByDelegate,
    StopRunByError,
    StopRunByExceededMaxSteps,
    StopRunByInteractiveTool,
)
from runtime.schema.messages import ExpertMessage, TextPart, ToolMessage
from runtime.schema.results import tool_result_failed

_STEP_ENDS: dict[type[Any], str] = {
    ContinueToNextStep: "continued",
    CompleteRun: "completed",
    StopRunByDelegate: "delegated",
    StopRunByInteractiveTool: "waiting for input",
    StopRunByExceededMaxSteps: "stopped at max steps",
    StopRunByError: "stopped by error",
}
"""How a step ended, by the event that carried it (each step ends with exactly one of these)."""


def diff_jobs(jobs: Jobs, job_a: str, job_b: str) -> JobDiff:
    """Compare two stored jobs.

    Args:
        jobs: Where both jobs are stored.
        job_a: The first job (shown as A, the ``-`` side).
        job_b: The second job (B, the ``+`` side).

    Returns:
        The aligned trees, their differences and the first divergence.

    Raises:
        StorageError: A job does not exist; the message names it and where it looked.
    """
    summary_a, summary_b = _get(jobs, job_a), _get(jobs, job_b)
    roots = _align_nodes(_sides(jobs, job_a), _sides(jobs, job_b), ())
    side_a = JobSide(summary_a, _origin_document(jobs, job_a))
    side_b = JobSide(summary_b, _origin_document(jobs, job_b))
    result = JobDiff(a=side_a, b=side_b, roots=roots)
    if summary_a.status != summary_b.status:
        result.differences.append(
            Difference("status", "job status", summary_a.status, summary_b.status)
        )
    result.first = _first_divergence(result)
    return result


def origin_of(jobs: Jobs, job_id: str) -> str | None:
    """The job ``job_id`` was replayed or forked from, None for a job of its own.

    Raises:
        StorageError: No such job (the message names it and where it looked).
    """
    _get(jobs, job_id)
    origin = jobs.record(job_id).origin
    return origin.job_id if origin is not None else None


def _origin_document(jobs: Jobs, job_id: str) -> JSON | None:
    origin = jobs.record(job_id).origin
    return origin.to_dict() if origin is not None else None


def _get(jobs: Jobs, job_id: str) -> JobSummary:
    try:
        return jobs.get(job_id)
    except StorageError as error:
        stored = jobs.ids()
        close = nearest(job_id, stored)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        if not stored:
            hint = " (no job is stored there)"
        raise StorageError(f"{error.message}{hint}") from error


def nearest(wanted: str, existing: Sequence[str], limit: int = 3) -> list[str]:
    """The ids most like ``wanted``: those sharing the longest prefix with it, at least 3."""

    def shared(candidate: str) -> int:
        count = 0
        for left, right in zip(wanted, candidate, strict=False):
            if left != right:
                break
            count += 1
        return count

    scored = sorted(((shared(c), c) for c in existing), key=lambda item: (-item[0], item[1]))
    return [candidate for score, candidate in scored[:limit] if score >= 3]


@dataclass
class _Tree:
    """One job's node with its steps and delegates, ready to be aligned."""

    node: TreeNode
    side: NodeSide
    children: list[_Tree]


def _sides(jobs: Jobs, job_id: str) -> list[_Tree]:
    steps = _steps_by_run(jobs.events(job_id, messages=False))
    return [_tree(root, steps) for root in jobs.tree(job_id)]


def _tree(node: TreeNode, steps: dict[str, list[StepView]]) -> _Tree:
    own = sorted(
        (step for segment in node.segments for step in steps.get(segment.run_id, [])),
        key=lambda step: (step.number, step.started_at or 0),
    )
    delegated_by = node.segments[0].delegated_by or {}
    call_id = delegated_by.get("toolCallId")
    side = NodeSide(
        run_ids=tuple(segment.run_id for segment in node.segments),
        status=node.status,
        steps=tuple(own),
        usage=node.usage,
        query=node.segments[0].query,
        call_id=call_id if isinstance(call_id, str) else None,
    )
    return _Tree(node, side, [_tree(child, steps) for child in node.children])


def _steps_by_run(events: Iterable[PerstackEvent]) -> dict[str, list[StepView]]:
    """Every finished step of the job, by run id (a step stored twice counts once: the last)."""
    found: dict[tuple[str, int], StepView] = {}
    for event in events:
        end = _STEP_ENDS.get(type(event))
        step: Step | None = getattr(event, "step", None)
        if end is None or step is None:
            continue
        error = None
        if isinstance(event, StopRunByError):
            error = f"{event.error.name}: {event.error.message}"
            if event.error.name == INTERRUPTED_ERROR:
                end = "interrupted"
        text = _expert_text(step)
        if not text and isinstance(event, CompleteRun):
            text = event.text
        usage: Usage = step.usage
        found[(event.run_id, step.step_number)] = StepView(
            number=step.step_number,
            run_id=event.run_id,
            end=end,
            calls=tuple(
                CallView(call.id, call.tool_name, dict(call.args)) for call in step.tool_calls or ()
            ),
            results=_results(step),
            text=text,
            error=error,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            total_tokens=usage.total_tokens,
            cost_usd=usage.cost_usd,
            started_at=step.started_at,
            finished_at=step.finished_at,
        )
    by_run: dict[str, list[StepView]] = {}
    for view in found.values():
        by_run.setdefault(view.run_id, []).append(view)
    return by_run


def _expert_text(step: Step) -> str:
    texts = [
        part.text
        for message in step.new_messages
        if isinstance(message, ExpertMessage)
        for part in message.contents
        if isinstance(part, TextPart)
    ]
    return "\n".join(texts)


def _results(step: Step) -> tuple[ResultView, ...]:
    """The step's tool results; a resumed step has only its delegates' results, in messages."""
    if step.tool_results:
        return tuple(_result(result) for result in step.tool_results)
    views: list[ResultView] = []
    for message in step.new_messages:
        if isinstance(message, ToolMessage):
            for part in message.contents:
                text = _parts_text(part.contents)
                failed = tool_result_failed(text, is_error=part.is_error)
                views.append(ResultView(part.tool_call_id, part.tool_name, text, failed))
    return tuple(views)


def _result(result: ToolResult) -> ResultView:
    text = _parts_text(result.result)
    failed = tool_result_failed(text, is_error=result.is_error)
    return ResultView(result.id, result.tool_name, text, failed)


def _parts_text(parts: Iterable[Any]) -> str:
    return "\n".join(
        part.text if isinstance(part, TextPart) else f"[{getattr(part, 'type', 'part')}]"
        for part in parts
    )


_Item = TypeVar("_Item")


def _pair_by_occurrence(
    left: Sequence[_Item], right: Sequence[_Item], key: Callable[[_Item], Hashable]
) -> list[tuple[_Item | None, _Item | None]]:
    """Pair the k-th item of each key on the left with the k-th of that key on the right.

    The pairs keep the left order; an item only on the right comes after the item that precedes
    it on the right (and after the items only on the left that follow that one).
    """

    def keyed(items: Sequence[_Item]) -> list[tuple[Hashable, int]]:
        seen: dict[Hashable, int] = {}
        keys = []
        for item in items:
            k = key(item)
            seen[k] = seen.get(k, 0) + 1
            keys.append((k, seen[k]))
        return keys

    right_index = {k: j for j, k in enumerate(keyed(right))}
    rows: list[tuple[_Item | None, _Item | None, int | None]] = []
    matched: set[int] = set()
    for item, k in zip(left, keyed(left), strict=True):
        j = right_index.get(k)
        if j is not None:
            matched.add(j)
        rows.append((item, right[j] if j is not None else None, j))
    for j, item in enumerate(right):
        if j in matched:
            continue
        after = [i for i, row in enumerate(rows) if row[2] is not None and row[2] < j]
        at = after[-1] + 1 if after else 0
        while at < len(rows) and rows[at][2] is None and rows[at][0] is not None:
            at += 1  # what only the left has comes first, as a diff shows - before +
        rows.insert(at, (None, item, j))
    return [(a, b) for a, b, _ in rows]


def _align_nodes(
    left: Sequence[_Tree], right: Sequence[_Tree], parent: tuple[str, ...]
) -> list[NodeDiff]:
    calls: dict[str, int] = {}
    aligned: list[NodeDiff] = []
    for a, b in _pair_by_occurrence(left, right, lambda tree: tree.node.expert_key):
        either = a or b
        assert either is not None
        key = either.node.expert_key
        calls[key] = calls.get(key, 0) + 1
        path = (*parent, key)
        node = NodeDiff(
            expert_key=key,
            call=calls[key],
            path=path,
            a=a.side if a is not None else None,
            b=b.side if b is not None else None,
        )
        node.steps = [_compare_steps(x, y) for x, y in _align_steps(node.a, node.b)]
        if node.a is not None and node.b is not None:
            if node.a.status != node.b.status:
                node.differences.append(
                    Difference("status", "status", node.a.status, node.b.status)
                )
            if not parent and node.a.query != node.b.query:
                node.differences.append(Difference("query", "query", node.a.query, node.b.query))
        node.children = _align_nodes(
            a.children if a is not None else [], b.children if b is not None else [], path
        )
        for child in node.children:
            child.called_at = _calling_step(node.steps, child)
        aligned.append(node)
    return aligned


def _calling_step(steps: Sequence[StepDiff], child: NodeDiff) -> int | None:
    for index, step in enumerate(steps):
        for view, side in ((step.a, child.a), (step.b, child.b)):
            if view is not None and side is not None and side.call_id is not None:
                if any(call.id == side.call_id for call in view.calls):
                    return index
    return None


def _align_steps(
    a: NodeSide | None, b: NodeSide | None
) -> list[tuple[StepView | None, StepView | None]]:
    left = a.steps if a is not None else ()
    right = b.steps if b is not None else ()
    matcher = SequenceMatcher(
        None, [s.signature for s in left], [s.signature for s in right], autojunk=False
    )
    pairs: list[tuple[StepView | None, StepView | None]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("equal", "replace"):
            common = min(i2 - i1, j2 - j1)
            pairs += zip(left[i1 : i1 + common], right[j1 : j1 + common], strict=True)
            pairs += [(step, None) for step in left[i1 + common : i2]]
            pairs += [(None, step) for step in right[j1 + common : j2]]
        elif tag == "delete":
            pairs += [(step, None) for step in left[i1:i2]]
        else:
            pairs += [(None, step) for step in right[j1:j2]]
    return pairs


def _compare_steps(a: StepView | None, b: StepView | None) -> StepDiff:
    pair = StepDiff(a, b)
    if a is None or b is None:
        return pair
    found = pair.differences
    if a.end != b.end:
        found.append(Difference("end", "ended", a.end, b.end))
    names_a = [call.tool_name for call in a.calls]
    names_b = [call.tool_name for call in b.calls]
    if names_a != names_b:
        found.append(Difference("calls", "tool calls", names_a, names_b))
    call_pairs = _pair_by_occurrence(a.calls, b.calls, lambda call: call.tool_name)
    for call_a, call_b in call_pairs:
        if call_a is not None and call_b is not None and call_a.args != call_b.args:
            found.extend(_args_differences(call_a, call_b))
    found.extend(_result_differences(a, b, call_pairs))
    if a.text != b.text:
        found.append(Difference("text", "text", a.text, b.text))
    if a.error != b.error:
        found.append(Difference("error", "error", a.error, b.error))
    if (a.input_tokens, a.output_tokens, a.total_tokens) != (
        b.input_tokens,
        b.output_tokens,
        b.total_tokens,
    ):
        found.append(
            Difference(
                "tokens",
                "tokens",
                usage_dict(a.input_tokens, a.output_tokens, a.total_tokens, None),
                usage_dict(b.input_tokens, b.output_tokens, b.total_tokens, None),
            )
        )
    if not same_cost(a.cost_usd, b.cost_usd):
        found.append(Difference("cost", "cost", a.cost_usd, b.cost_usd))
    found.sort(key=lambda difference: FIELDS.index(difference.field))  # stable: args keep order
    return pair


def _args_differences(a: CallView, b: CallView) -> list[Difference]:
    keys = list(a.args) + [key for key in b.args if key not in a.args]
    return [
        Difference("args", f"{a.tool_name} {key}", a.args.get(key), b.args.get(key))
        for key in keys
        if a.args.get(key) != b.args.get(key) or (key in a.args) != (key in b.args)
    ]


def _result_differences(
    a: StepView, b: StepView, call_pairs: Sequence[tuple[CallView | None, CallView | None]]
) -> list[Difference]:
    """Results compared by the calls they answer, or (without calls) by tool and order."""
    found: list[Difference] = []
    by_call_a = {result.call_id: result for result in a.results}
    by_call_b = {result.call_id: result for result in b.results}
    for call_a, call_b in call_pairs:
        result_a = by_call_a.pop(call_a.id, None) if call_a is not None else None
        result_b = by_call_b.pop(call_b.id, None) if call_b is not None else None
        if call_a is None or call_b is None:
            continue  # a call only one side made: the "tool calls" difference says so
        found.extend(_result_difference(call_a.tool_name, result_a, result_b))
    # Results without a call in this step: a resumed parent's delegate results.
    for result_a, result_b in _pair_by_occurrence(
        list(by_call_a.values()), list(by_call_b.values()), lambda result: result.tool_name
    ):
        either = result_a or result_b
        assert either is not None
        found.extend(_result_difference(either.tool_name, result_a, result_b))
    return found


def _result_difference(
    tool_name: str, a: ResultView | None, b: ResultView | None
) -> list[Difference]:
    values = [
        {"text": side.text, "failed": side.failed} if side is not None else None for side in (a, b)
    ]
    if values[0] == values[1]:
        return []
    return [Difference("result", f"{tool_name} result", values[0], values[1])]


def _first_divergence(result: JobDiff) -> Divergence | None:
    """The divergence that happened first: by job-wide step number, then by time in the job.

    The step numbers and times are those of job A where the step or run exists there, else job
    B's (each relative to its own job's start).
    """
    starts = {"a": result.a.summary.started_at, "b": result.b.summary.started_at}
    candidates: list[tuple[tuple[int, int, int], Divergence]] = []

    def order(step: StepView | None, side: str, bias: int = 0) -> tuple[int, int, int]:
        if step is None:
            return (2**62, 0, bias)
        return (step.number, (step.started_at or 0) - starts[side], bias)

    def position(step: StepDiff, bias: int = 0) -> tuple[int, int, int]:
        return order(step.a, "a", bias) if step.a is not None else order(step.b, "b", bias)

    for _, node in result.walk():
        where = " › ".join(_path_names(node))
        if node.a is None or node.b is None:
            first = node.steps[0] if node.steps else None
            side = "A" if node.a is not None else "B"
            text = f"{where} runs only in {side}"
            key = position(first) if first is not None else (2**62, 0, 0)
            candidates.append((key, Divergence(node, None, None, text)))
            continue
        for step in node.steps:
            if step.same:
                continue
            label = f"{where}, {step.label}"
            if step.a is None or step.b is None:
                view = step.a or step.b
                assert view is not None
                text = f"{label}: {describe_step(view)}"
                candidates.append((position(step), Divergence(node, step, None, text)))
                continue
            difference = step.differences[0]
            text = f"{label}: {describe_difference(difference)}"
            more = len(step.differences) - 1
            if more:
                text += f" (+{more} more)"
            candidates.append((position(step), Divergence(node, step, difference, text)))
        for difference in node.differences:
            # A run's status follows from its last step; its query is known before its first.
            if difference.field == "query":
                key = position(node.steps[0], -1) if node.steps else (0, 0, -1)
            else:
                key = position(node.steps[-1], 1) if node.steps else (2**62, 0, 1)
            text = f"{where}: {describe_difference(difference)}"
            candidates.append((key, Divergence(node, None, difference, text)))
    if not candidates and result.differences:
        root = result.roots[0] if result.roots else None
        if root is not None:
            text = describe_difference(result.differences[0])
            return Divergence(root, None, result.differences[0], text)
    if not candidates:
        return None
    return min(candidates, key=lambda item: item[0])[1]


def _path_names(node: NodeDiff) -> list[str]:
    names = list(node.path)
    names[-1] = node.name
    return names
