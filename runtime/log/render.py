r"""Text and JSON output of ``perstack log`` (§11 of the reference).

Text output follows Perstack's layout (job header, ``Events:`` between 50-character rules,
``[Step N] <type padded to 24> HH:MM:SS`` plus a few detail lines) and adds the storage path,
usage and the delegation tree. ANSI colour is plain escape codes, used only when the caller says
so (a terminal without ``NO_COLOR``): the runtime stays free of UI toolkits.

Stored text is data, never terminal commands. In text output every control character except tab
(so also ESC, BEL, backspace, carriage return and a stored newline), the C1 controls, the bidi
controls, the line and paragraph separators and lone surrogates are shown as Python-style escapes
(``\x1b``, ``\x9b``, ``\u202e``; see :func:`visible`), whether or not the output is coloured.
``--json`` keeps the exact text: json.dumps escapes C0 controls, and the other characters above
are written as ``\uXXXX`` escapes, which decode to the same string.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

from runtime._terminal import BIDI_AND_SEPARATORS as BIDI_AND_SEPARATORS
from runtime._terminal import counted
from runtime._terminal import use_color as use_color
from runtime._terminal import visible as visible
from runtime.jobs.records import JSON, EventRecord
from runtime.jobs.runs import RunInfo, TreeNode, first_text_part, first_user_text, step_ranges
from runtime.jobs.store import decode_json
from runtime.log.query import DELEGATION_TYPES, ERROR_TYPES, TOOL_TYPES, LogResult
from runtime.schema.results import tool_result_failed

RULE = "─" * 50
TYPE_WIDTH = 24
TREE_CHILDREN_SHOWN = 10
"""A node with more delegates than this shows the first and last five and counts the rest."""

_CODES = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
}


def visible_lines(text: str) -> str:
    """:func:`visible` for a message of several lines: its own newlines stay."""
    return "\n".join(visible(line) for line in text.split("\n"))


class _Paint:
    """Colours text, and joins the report's lines with everything stored made :func:`visible`.

    Colours are first written as markers holding a random nonce and become escape codes only
    in :meth:`finish`, after every other character went through :func:`visible`: stored text can
    neither forge a colour code nor keep an escape sequence of its own.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._nonce = os.urandom(8).hex()
        self._marker = re.compile(f"\ue000{self._nonce}([0-9;]+)\ue001")

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles or not text:
            return text
        codes = ";".join(_CODES[style] for style in styles)
        return f"\ue000{self._nonce}{codes}\ue001{text}\ue000{self._nonce}0\ue001"

    def finish(self, lines: Iterable[str]) -> str:
        """The report: one line per item (a newline inside an item is stored text)."""
        text = "\n".join(visible(line) for line in lines)
        if self.enabled:
            text = self._marker.sub(lambda match: f"\033[{match.group(1)}m", text)
        return text


def _preview(text: str, limit: int) -> str:
    # One line per detail: newlines in results and queries would break the layout.
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else f"{flat[:limit]}..."


def format_timestamp(ms: int, tz: tzinfo | None = None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in ``tz`` (None: the local time zone); ``?`` when out of range."""
    moment = _local(ms, tz)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "?"


def format_time(ms: int, tz: tzinfo | None = None) -> str:
    """``HH:MM:SS`` in ``tz`` (None: the local time zone); ``??:??:??`` when out of range."""
    moment = _local(ms, tz)
    return moment.strftime("%H:%M:%S") if moment is not None else "??:??:??"


def _local(ms: int, tz: tzinfo | None) -> datetime | None:
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
        return moment.astimezone(tz) if tz is not None else moment.astimezone()
    except (OverflowError, OSError, ValueError):  # a stored time no calendar can show
        return None


def format_usage(usage: JSON, *, detail: bool = False) -> str:
    """``1,234 tokens`` plus the cost when known (``$0.0123``), optionally with the split."""
    text = f"{usage.get('totalTokens', 0):,} tokens"
    if detail:
        text += (
            f" (input {usage.get('inputTokens', 0):,}, output {usage.get('outputTokens', 0):,}"
            f", reasoning {usage.get('reasoningTokens', 0):,}"
            f", cached input {usage.get('cachedInputTokens', 0):,})"
        )
    cost = usage.get("costUsd")
    if isinstance(cost, int | float):
        text += f", ${cost:.4f}"
    elif detail:
        text += ", cost n/a (no price known for the model)"
    return text


def _format_steps(steps: Sequence[int]) -> str:
    if not steps:
        return "no steps"
    ranges = step_ranges(steps)
    if len(ranges) > 4:
        # A parent resumed many times has many short ranges: the count and span say enough.
        return f"{len(steps)} steps ({steps[0]}-{steps[-1]})"
    parts = [f"{low}" if low == high else f"{low}-{high}" for low, high in ranges]
    label = "step" if len(steps) == 1 else "steps"
    return f"{label} {', '.join(parts)}"


def _format_runs(run_ids: Sequence[str]) -> str:
    if len(run_ids) == 1:
        return f"run {run_ids[0]}"
    if len(run_ids) <= 3:
        return f"runs {', '.join(run_ids)}"
    return f"runs {run_ids[0]}, {run_ids[1]}, … +{len(run_ids) - 2} more"


# text ----------------------------------------------------------------------------------------


def render_text(
    result: LogResult,
    *,
    color: bool = False,
    verbose: bool = False,
    messages: bool = False,
    summary: bool = False,
    tz: tzinfo | None = None,
) -> str:
    """The human-readable report.

    Args:
        result: What :func:`runtime.log.query.build_log` selected.
        color: Use ANSI colour.
        verbose: Show each tool call's skill and arguments.
        messages: List the checkpoint's messages (with ``--checkpoint``).
        summary: Show the summary block.
        tz: Time zone for times (None: local time).

    Returns:
        The report, without a trailing newline.
    """
    paint = _Paint(color)
    lines: list[str] = []
    if result.is_latest_job:
        lines.append(paint("(showing latest job)", "dim"))
    lines.append(f"Storage: {result.storage_path}")
    lines.extend(_job_header(result, paint, tz))
    lines.append("")
    if result.tree is not None and result.runs is not None and len(result.runs) > 1:
        lines.extend(_tree_section(result.tree, paint))
        lines.append("")
    if result.run is not None:
        lines.extend(_run_header(result.run, paint))
        lines.append("")
    if result.checkpoint is not None:
        lines.extend(_checkpoint_header(result.checkpoint, paint, messages))
        lines.append("")
    if summary:
        lines.extend(_summary_section(result.summary, len(result.runs or []), paint))
        lines.append("")
    selection = result.selection
    if not selection.matched:
        lines.append("No data found")
        return paint.finish(lines)
    multi_expert = result.runs is not None and len({r.expert_key for r in result.runs}) > 1
    experts = {run.run_id: run.expert_key for run in result.runs or []}
    lines.append(paint("Events:", "bold"))
    lines.append(RULE)
    shown = 0
    for record, is_context in selection.shown:
        payload = result.source.payload(record)
        if payload is None:
            continue
        shown += 1
        lines.extend(
            _event_lines(
                record,
                payload,
                paint=paint,
                verbose=verbose,
                context=is_context,
                expert=(record.expert_key or experts.get(record.run_id)) if multi_expert else None,
                tz=tz,
            )
        )
    if not shown:
        lines.append(paint("(no events on this page)", "dim"))
    lines.append(RULE)
    page, total, extra = len(selection.page), len(selection.matched), selection.context_count
    if page < total or extra:
        note = f"(showing {page} of {total} matched events"
        note += f" (+{extra} context))" if extra else ")"
        lines.append(paint(note, "dim"))
        if page < total:
            lines.append(
                paint(
                    "Use --take N and --offset N to page through them (--take 0 shows all).",
                    "dim",
                )
            )
    return paint.finish(lines)


def _job_header(result: LogResult, paint: _Paint, tz: tzinfo | None) -> list[str]:
    """The job: its steps and usage counted as the tree and the studio's history count them."""
    job = result.job
    status = str(job.get("status", "?"))
    lines = [
        f"{paint('Job:', 'bold')} {job.get('id')} ({paint(status, _status_style(status))})",
        f"Expert: {job.get('coordinatorExpertKey', '?')}",
    ]
    started = job.get("startedAt")
    if isinstance(started, int):
        lines.append(f"Started: {format_timestamp(started, tz)}")
    steps = result.job_steps if result.job_steps is not None else job.get("totalSteps", 0)
    lines.append(f"Steps: {steps}")
    finished = job.get("finishedAt")
    if isinstance(finished, int):
        lines.append(f"Finished: {format_timestamp(finished, tz)}")
    usage = result.job_usage if result.job_usage is not None else job.get("usage")
    if isinstance(usage, dict):
        lines.append(f"Usage: {format_usage(usage, detail=True)}")
    return lines


def _status_style(status: str) -> str:
    if status == "completed":
        return "green"
    if status in ("stoppedByError", "stoppedByMaxSteps", "stoppedByExceededMaxSteps"):
        return "red"
    return "yellow"


def _tree_section(roots: Sequence[TreeNode], paint: _Paint) -> list[str]:
    delegated = any(node.children for node in roots)
    # Without delegation the "tree" only lists the segments of a paused and resumed run.
    lines = [paint("Delegation tree:" if delegated else "Runs:", "bold")]

    def walk(node: TreeNode, prefix: str, connector: str, child_prefix: str) -> None:
        runs = _format_runs([segment.run_id for segment in node.segments])
        text = f"{paint(node.expert_key, 'bold')}  {paint(node.status, _status_style(node.status))}"
        if node.fork_step is not None:
            text += f"  {paint(f'↱ branch from step {node.fork_step}', 'cyan')}"
        text += f"  {_format_steps(node.steps)}  {format_usage(node.usage)}"
        if node.children:
            total = node.total_steps
            text += (
                f"  (with delegates: {counted(total, 'step')}, {format_usage(node.total_usage)})"
            )
        lines.append(f"  {prefix}{connector}{text}  {paint(runs, 'dim')}")
        children: list[TreeNode | str] = list(node.children)
        if len(children) > TREE_CHILDREN_SHOWN:
            # A coordinator that delegated hundreds of times would bury the events: keep the
            # first and last delegates and count the rest (--json has every node).
            keep = TREE_CHILDREN_SHOWN // 2
            hidden = node.children[keep:-keep]
            children = [*node.children[:keep], _hidden_summary(hidden), *node.children[-keep:]]
        for position, child in enumerate(children):
            last = position == len(children) - 1
            if isinstance(child, str):
                lines.append(
                    f"  {prefix}{child_prefix}{'└── ' if last else '├── '}{paint(child, 'dim')}"
                )
                continue
            walk(
                child,
                prefix + child_prefix,
                "└── " if last else "├── ",
                "    " if last else "│   ",
            )

    for root in roots:
        walk(root, "", "", "")
    return lines


def _hidden_summary(hidden: Sequence[TreeNode]) -> str:
    counts: dict[tuple[str, str], int] = {}
    for node in hidden:
        key = (node.expert_key, node.status)
        counts[key] = counts.get(key, 0) + 1
    parts = [f"{expert} {status} ×{count}" for (expert, status), count in counts.items()]
    return f"… {len(hidden)} more delegates ({', '.join(parts)}; see --json)"


def _run_header(run: RunInfo, paint: _Paint) -> list[str]:
    status = paint(run.status, _status_style(run.status))
    lines = [
        f"{paint('Run:', 'bold')} {run.run_id} ({status})",
        f"Expert: {run.expert_key}",
        f"Steps: {_format_steps(run.steps)}",
        f"Usage: {format_usage(run.usage)}",
    ]
    if run.delegated_by is not None:
        expert = run.delegated_by.get("expert")
        key = expert.get("key") if isinstance(expert, dict) else None
        lines.append(f"Delegated by: {key} (run {run.delegated_by.get('runId')})")
    return lines


def _checkpoint_header(checkpoint: JSON, paint: _Paint, messages: bool) -> list[str]:
    expert = checkpoint.get("expert")
    lines = [
        f"{paint('Checkpoint:', 'bold')} {checkpoint.get('id')}",
        f"Status: {checkpoint.get('status')}",
        f"Step: {checkpoint.get('stepNumber')}",
        f"Expert: {expert.get('key') if isinstance(expert, dict) else '?'}",
    ]
    if messages:
        lines.append("")
        lines.append(paint("Messages:", "bold"))
        for message in checkpoint.get("messages") or []:
            if isinstance(message, dict):
                lines.append(f"  [{message.get('type')}] {_message_preview(message)}")
    return lines


def _message_preview(message: JSON) -> str:
    contents = message.get("contents")
    text = first_text_part(contents)
    if text is not None:
        return _preview(text, 100)
    # An expert message with only tool calls, or a tool message: say what it holds.
    described: list[str] = []
    for part in contents if isinstance(contents, list) else []:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "toolCallPart":
            described.append(f"→ {part.get('toolName')}")
        elif part.get("type") == "toolResultPart":
            inner = first_text_part(part.get("contents")) or ""
            described.append(f"← {part.get('toolName')}: {_preview(inner, 40)}")
    return _preview("; ".join(described), 100)


def _summary_section(summary: JSON, run_count: int, paint: _Paint) -> list[str]:
    lines = [
        paint("Summary:", "bold"),
        f"  Total Events: {summary['totalEvents']}",
        f"  Errors: {summary['errorCount']}",
        f"  Tool Calls: {summary['toolCallsMade']}",
        f"  Delegations: {summary['delegationsMade']}",
    ]
    step_range = summary.get("stepRange")
    if isinstance(step_range, dict):
        lines.append(f"  Step Range: {step_range['min']} - {step_range['max']}")
    if run_count:
        lines.append(f"  Runs: {run_count}")
    return lines


def _type_style(event_type: str) -> tuple[str, ...]:
    if event_type in ERROR_TYPES:
        return ("red",)
    if event_type in TOOL_TYPES:
        return ("cyan",)
    if event_type in DELEGATION_TYPES:
        return ("magenta",)
    if event_type == "completeRun":
        return ("green", "bold")
    if event_type == "startRun":
        return ("blue", "bold")
    if event_type.startswith("stopRunBy"):
        return ("yellow",)
    return ()


def _event_lines(
    record: EventRecord,
    event: JSON,
    *,
    paint: _Paint,
    verbose: bool,
    context: bool,
    expert: str | None,
    tz: tzinfo | None,
) -> list[str]:
    step = str(record.step) if record.step is not None else "-"
    kind = record.type
    padded = kind.ljust(TYPE_WIDTH) if len(kind) < TYPE_WIDTH else f"{kind} "
    styles = ("dim",) if context else _type_style(kind)
    header = f"[Step {step}] {paint(padded, *styles)}{format_time(record.timestamp, tz)}"
    if expert:
        header += f"  {paint(expert, 'dim')}"
    if context:
        header += f"  {paint('(context)', 'dim')}"
    lines = [header]
    lines.extend(f"  {detail}" for detail in _details(kind, event, paint, verbose))
    lines.append("")
    return lines


def _details(kind: str, event: JSON, paint: _Paint, verbose: bool) -> list[str]:
    details: list[str] = []
    if kind == "startRun":
        query = first_user_text(event.get("inputMessages"))
        if query is not None:
            details.append(f'Query: "{_preview(query, 60)}"')
        initial = event.get("initialCheckpoint")
        if isinstance(initial, dict):
            delegated_by = initial.get("delegatedBy")
            if isinstance(delegated_by, dict):
                expert = delegated_by.get("expert")
                key = expert.get("key") if isinstance(expert, dict) else None
                details.append(f"Delegated by: {key} (run {delegated_by.get('runId')})")
            status = initial.get("status")
            if isinstance(status, str) and status != "init":
                details.append(f"Resumed from: {status} (step {initial.get('stepNumber')})")
    elif kind in ("callTools", "callDelegate"):
        calls = [c for c in event.get("toolCalls") or [] if isinstance(c, dict)]
        if kind == "callDelegate":
            for call in calls:
                # The delegate's expert key is the call's skill name (never "unknown").
                target = call.get("skillName") or call.get("toolName")
                args = call.get("args")
                query = args.get("query") if isinstance(args, dict) else None
                suffix = f' "{_preview(query, 60)}"' if isinstance(query, str) else ""
                details.append(f"Delegate to: {target}{suffix}")
        elif verbose:
            for call in calls:
                details.append(f"[{call.get('skillName')}] {call.get('toolName')}")
                details.append(f"  Args: {json.dumps(call.get('args'), ensure_ascii=False)}")
        else:
            names = ", ".join(str(call.get("toolName")) for call in calls)
            details.append(f"Tools: {names}")
    elif kind == "callInteractiveTool":
        interactive = event.get("toolCall")
        if isinstance(interactive, dict):
            details.append(
                f"Interactive tool: [{interactive.get('skillName')}] {interactive.get('toolName')}"
            )
            if verbose:
                args_text = json.dumps(interactive.get("args"), ensure_ascii=False)
                details.append(f"  Args: {args_text}")
    elif kind == "resolveToolResults":
        for tool_result in event.get("toolResults") or []:
            if isinstance(tool_result, dict):
                details.append(_tool_result_line(tool_result, paint))
    elif kind == "attemptCompletion":
        tool_result = event.get("toolResult")
        if isinstance(tool_result, dict) and verbose:
            details.append(_tool_result_line(tool_result, paint))
    elif kind == "stopRunByError":
        error = event.get("error")
        if isinstance(error, dict):
            details.append(paint(f"Error: {error.get('name')}", "red"))
            details.append(f"Message: {error.get('message')}")
            details.append(f"Retryable: {str(error.get('isRetryable')).lower()}")
    elif kind == "stopRunByDelegate":
        checkpoint = event.get("checkpoint")
        targets = checkpoint.get("delegateTo") if isinstance(checkpoint, dict) else None
        if isinstance(targets, list) and targets:
            keys = [
                str(t["expert"].get("key"))
                for t in targets
                if isinstance(t, dict) and isinstance(t.get("expert"), dict)
            ]
            details.append(f"Waiting for: {', '.join(keys)}")
    elif kind == "stopRunByInteractiveTool":
        checkpoint = event.get("checkpoint")
        pending = checkpoint.get("pendingToolCalls") if isinstance(checkpoint, dict) else None
        if isinstance(pending, list) and pending and isinstance(pending[0], dict):
            details.append(f"Waiting for an answer to: {pending[0].get('toolName')}")
    elif kind == "stopRunByExceededMaxSteps":
        details.append("Stopped: the job reached its step limit (maxSteps)")
    elif kind == "completeRun":
        text = event.get("text")
        if isinstance(text, str):
            details.append(f"Result: {_preview(text, 80)}")
    elif kind == "retry":
        details.append(f"Reason: {_retry_reason(event.get('reason'))}")
    elif kind == "completeStreamingReasoning" and verbose:
        text = event.get("text")
        if isinstance(text, str):
            details.append(f"Reasoning: {_preview(text, 80)}")
    else:
        details.extend(_runtime_details(kind, event))
    return details


def _tool_result_line(tool_result: JSON, paint: _Paint) -> str:
    text = first_text_part(tool_result.get("result")) or ""
    failed = tool_result_failed(text, is_error=tool_result.get("isError") is True)
    mark = paint("✗", "red") if failed else paint("✓", "green")
    return f"{mark} {tool_result.get('toolName')}: {_preview(text, 40)}"


def _retry_reason(reason: object) -> str:
    if not isinstance(reason, str):
        return str(reason)
    try:
        data: Any = decode_json(reason)
    except ValueError:
        return _preview(reason, 120)
    if isinstance(data, dict) and "error" in data:
        return _preview(f"{data.get('error')}: {data.get('message', '')}", 120)
    return _preview(reason, 120)


def _runtime_details(kind: str, event: JSON) -> list[str]:
    if kind == "initializeRuntime":
        details = [f"Expert: {event.get('expertName')}  Model: {event.get('model')}"]
        answer = event.get("interactiveToolCall")
        if isinstance(answer, dict):
            text = _preview(str(answer.get("text", "")), 60)
            details.append(f'Answer to {answer.get("toolName")}: "{text}"')
        return details
    if kind in ("skillStarting", "skillConnected"):
        return [f"Skill: {event.get('skillName')}"]
    if kind == "skillDisconnected":
        reason = event.get("reason")
        suffix = f" ({_preview(str(reason), 80)})" if reason else ""
        return [f"Skill: {event.get('skillName')}{suffix}"]
    if kind == "skillStderr":
        return [f"{event.get('skillName')}: {_preview(str(event.get('message', '')), 80)}"]
    return []
