"""Steps, runs, jobs and differences on one line each, for the command's text and the studio."""

from __future__ import annotations

import json
from typing import Any

from runtime._terminal import counted
from runtime.diff.format import (
    PREVIEW,
    change,
    cut,
    flat,
    format_cost,
    format_duration,
    metric,
    thousands,
)
from runtime.diff.model import CallView, Difference, JobSide, NodeDiff, NodeSide, StepDiff, StepView


def show_value(field: str, value: Any) -> str:
    """A compared value on one line, whole: JSON for arguments, text as it is otherwise."""
    if value is None:
        return "(none)"
    if field == "result" and isinstance(value, dict):
        text = flat(str(value.get("text", ""))) or "(empty)"
        return f"✗ {text}" if value.get("failed") else text
    if isinstance(value, str) and field != "args":
        return flat(value) or "(empty)"
    return json.dumps(value, ensure_ascii=False)


def excerpts(field: str, a: Any, b: Any, limit: int = PREVIEW) -> tuple[str, str]:
    """Both sides of a difference on one line each, from shortly before where they differ.

    Long results that differ near their end show where they differ, not their common start.
    """
    left, right = show_value(field, a), show_value(field, b)
    if len(left) <= limit and len(right) <= limit:
        return left, right
    common = 0
    for x, y in zip(left, right, strict=False):
        if x != y:
            break
        common += 1
    start = max(0, common - limit // 3)

    def around(text: str) -> str:
        piece = text[start : start + limit]
        return ("…" if start else "") + piece + ("…" if start + limit < len(text) else "")

    return around(left), around(right)


def describe_value(difference: Difference, side: str) -> str:
    """One side of a difference on one line (``side`` is ``a`` or ``b``)."""
    value = difference.a if side == "a" else difference.b
    if difference.field == "calls":
        return ", ".join(value) if value else "(no tool calls)"
    if difference.field == "tokens" and isinstance(value, dict):
        return (
            f"{value['totalTokens']:,} tokens (input {value['inputTokens']:,}, "
            f"output {value['outputTokens']:,})"
        )
    if difference.field == "cost":
        return format_cost(value)
    left, right = excerpts(difference.field, difference.a, difference.b)
    return left if side == "a" else right


def describe_difference(difference: Difference) -> str:
    """A difference on one line: ``writeTextFile path: "a.py" → "b.py"``."""
    if difference.field == "tokens":
        totals = (difference.a["totalTokens"], difference.b["totalTokens"])
        if totals[0] != totals[1]:
            return f"tokens {change(totals[0], totals[1], thousands)}"
    if difference.field == "cost":
        return f"cost {change(difference.a, difference.b, format_cost)}"
    if difference.field in ("calls", "tokens"):
        left, right = describe_value(difference, "a"), describe_value(difference, "b")
    else:
        left, right = excerpts(difference.field, difference.a, difference.b, PREVIEW // 2)
    return f"{difference.label}: {left} → {right}"


def describe_step(step: StepView) -> str:
    """What a step did, on one line: its tool calls with arguments, else its text or end."""
    if step.calls:
        return ", ".join(_describe_call(call) for call in step.calls)
    if step.error:
        return cut(flat(step.error), PREVIEW // 2)
    if step.text:
        return f"“{cut(flat(step.text), PREVIEW // 2)}”"
    if step.results:
        return "results of " + ", ".join(result.tool_name for result in step.results)
    return step.end


def _describe_call(call: CallView) -> str:
    args = ", ".join(
        f"{key}={cut(json.dumps(value, ensure_ascii=False), 24)}"
        for key, value in call.args.items()
    )
    return f"{call.tool_name}({args})"


def step_metrics(step: StepDiff) -> str:
    """Tokens, cost and time of a step pair: ``15 → 17 tok (+2) · 3 ms → 4 ms (+1 ms)``."""
    a, b = step.a, step.b
    if a is None or b is None:
        view = a or b
        assert view is not None
        parts = [f"{view.total_tokens:,} tok", format_duration(view.duration_ms)]
        if view.cost_usd is not None:
            parts.insert(1, format_cost(view.cost_usd))
        return " · ".join(parts)
    parts = [metric(a.total_tokens, b.total_tokens, thousands, " tok")]
    if a.cost_usd is not None or b.cost_usd is not None:
        parts.append(metric(a.cost_usd, b.cost_usd, format_cost, ""))
    parts.append(metric(a.duration_ms, b.duration_ms, format_duration, ""))
    return " · ".join(parts)


def describe_node_side(side: NodeSide) -> str:
    """A run on one line: ``completed · 3 steps · 45 tok · 0.2 s``."""
    parts = [side.status, counted(len(side.steps), "step")]
    parts.append(f"{side.usage.get('totalTokens', 0):,} tok")
    cost = side.usage.get("costUsd")
    if isinstance(cost, int | float):
        parts.append(format_cost(float(cost)))
    parts.append(format_duration(side.duration_ms))
    return " · ".join(parts)


def describe_node(node: NodeDiff) -> str:
    """A pair of runs on one line, each figure as ``A → B`` where they differ."""
    a, b = node.a, node.b
    if a is None or b is None:
        side = a or b
        assert side is not None
        return f"only in {'A' if a is not None else 'B'} · {describe_node_side(side)}"
    status = a.status if a.status == b.status else f"{a.status} → {b.status}"
    if len(a.steps) == len(b.steps):
        steps = counted(len(a.steps), "step")
    else:
        steps = metric(len(a.steps), len(b.steps), str, " steps")
    tokens = metric(a.usage.get("totalTokens", 0), b.usage.get("totalTokens", 0), thousands, " tok")
    parts = [status, steps, tokens]
    costs = (a.usage.get("costUsd"), b.usage.get("costUsd"))
    if costs != (None, None):
        parts.append(metric(costs[0], costs[1], format_cost, ""))
    parts.append(metric(a.duration_ms, b.duration_ms, format_duration, ""))
    return " · ".join(parts)


def describe_job(side: JobSide) -> str:
    """A job on one line: ``job ID · expert · completed · 5 steps · 105 tokens · 0.2 s``."""
    job = side.summary
    parts = [f"job {job.id}", job.expert_key, job.status, counted(job.total_steps, "step")]
    parts.append(f"{job.total_tokens:,} tokens")
    cost = job.usage.get("costUsd")
    if isinstance(cost, int | float):
        parts.append(format_cost(float(cost)))
    parts.append(format_duration(side.duration_ms))
    origin = side.origin
    if origin is not None:
        parts.append(f"{origin.get('kind', 'copy')} of job {origin.get('jobId', '?')}")
    return " · ".join(parts)
