"""The report of ``perstack diff``: text (``-`` is job A, ``+`` job B) or one JSON document.

Stored text is data, never terminal commands: every piece of the text report goes through
:func:`runtime._terminal.visible` before any colour is added, and the JSON document through
:func:`runtime._terminal.json_visible`, as ``perstack log`` does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from runtime._terminal import counted, json_visible, visible
from runtime.diff.describe import (
    describe_job,
    describe_node,
    describe_step,
    describe_value,
    step_metrics,
)
from runtime.diff.format import format_cost, format_duration, metric, thousands
from runtime.diff.model import MARKS, Difference, JobDiff, NodeDiff, StepDiff

COLLAPSE_AT = 3
"""In text output, this many equal steps in a row fold into one line (``--all`` lists them)."""

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}
_MARK_STYLES = {"same": "dim", "changed": "yellow", "onlyInA": "red", "onlyInB": "green"}

Segment = tuple[str, str | None]
"""A piece of a line: its text and its style (space-separated names of :data:`_CODES`)."""


class _Report:
    """Lines of segments; stored text is made :func:`visible` before any colour is added."""

    def __init__(self, color: bool) -> None:
        self.color = color
        self.lines: list[list[Segment]] = []

    def add(self, indent: int, *segments: Segment) -> None:
        self.lines.append([("    " * indent, None), *segments])

    def text(self) -> str:
        return "\n".join(
            "".join(self._paint(text, style) for text, style in line) for line in self.lines
        )

    def _paint(self, text: str, style: str | None) -> str:
        text = visible(text)
        if not self.color or style is None or not text:
            return text
        codes = ";".join(_CODES[name] for name in style.split())
        return f"\033[{codes}m{text}\033[0m"


def render_text(result: JobDiff, *, color: bool = False, all_steps: bool = False) -> str:
    """The human-readable report.

    Args:
        result: The comparison.
        color: Use ANSI colour.
        all_steps: List every equal step (else :data:`COLLAPSE_AT` or more in a row fold).

    Returns:
        The report, without a trailing newline.
    """
    report = _Report(color)
    report.add(0, ("- A  ", "red"), (describe_job(result.a), None))
    report.add(0, ("+ B  ", "green"), (describe_job(result.b), None))
    style = "bold" if result.same else "bold yellow"
    report.add(0, (result.summary, style))
    report.add(0, (_counts_line(result), "dim"))
    for root in result.roots:
        report.lines.append([])
        _render_node(report, root, 0, all_steps)
    return report.text()


def _counts_line(result: JobDiff) -> str:
    counts = result.counts()
    parts = [f"{counts['changedSteps']} of {counts['steps']} steps differ"]
    for name, noun, side in (
        ("stepsOnlyInA", "step", "A"),
        ("stepsOnlyInB", "step", "B"),
        ("runsOnlyInA", "run", "A"),
        ("runsOnlyInB", "run", "B"),
    ):
        if counts[name]:
            parts.append(f"{counted(counts[name], noun)} only in {side}")
    a, b = result.a.summary, result.b.summary
    parts.append(metric(a.total_tokens, b.total_tokens, thousands, " tokens"))
    costs = (a.usage.get("costUsd"), b.usage.get("costUsd"))
    if costs != (None, None):
        parts.append(metric(costs[0], costs[1], format_cost, ""))
    parts.append(metric(result.a.duration_ms, result.b.duration_ms, format_duration, ""))
    return " · ".join(parts)


def _render_node(report: _Report, node: NodeDiff, depth: int, all_steps: bool) -> None:
    state = node.state
    mark = (f"{MARKS[state]} ", _MARK_STYLES[state])
    report.add(depth, mark, (node.name, "bold"), (f" · {describe_node(node)}", None))
    for difference in node.differences:
        _render_difference(report, difference, depth + 1)
    children: dict[int | None, list[NodeDiff]] = {}
    for child in node.children:
        children.setdefault(child.called_at, []).append(child)
    same_run: list[StepDiff] = []

    def flush() -> None:
        if not same_run:
            return
        if len(same_run) >= COLLAPSE_AT and not all_steps:
            report.add(
                depth + 1,
                ("= ", "dim"),
                (f"{_span(same_run)}: the same ({len(same_run)} steps)", "dim"),
            )
        else:
            for step in same_run:
                assert step.a is not None
                report.add(
                    depth + 1,
                    ("= ", "dim"),
                    (f"{step.label} · {describe_step(step.a)} · {step_metrics(step)}", "dim"),
                )
        same_run.clear()

    for index, step in enumerate(node.steps):
        if step.same:
            same_run.append(step)
        else:
            flush()
            _render_step(report, step, depth + 1)
        if index in children:
            flush()
            for child in children[index]:
                _render_node(report, child, depth + 1, all_steps)
    flush()
    for child in children.get(None, []):
        _render_node(report, child, depth + 1, all_steps)


def _span(steps: Sequence[StepDiff]) -> str:
    """``steps 3–7`` (A's numbers), with B's when they differ: ``steps 3–7 (B: 4–8)``."""
    first, last = steps[0], steps[-1]
    assert first.a and first.b and last.a and last.b  # equal steps: both jobs made them
    text = f"steps {first.a.number}–{last.a.number}"
    if (first.a.number, last.a.number) != (first.b.number, last.b.number):
        text += f" (B: {first.b.number}–{last.b.number})"
    return text


def _render_step(report: _Report, step: StepDiff, depth: int) -> None:
    state = step.state
    mark = (f"{MARKS[state]} ", _MARK_STYLES[state])
    if step.a is None or step.b is None:
        view = step.a or step.b
        assert view is not None
        report.add(
            depth,
            mark,
            (f"{step.label} · {describe_step(view)} · ", None),
            (step_metrics(step), "dim"),
        )
        return
    report.add(
        depth,
        mark,
        (f"{step.label} · {describe_step(step.a)}", None),
        (f" · {step_metrics(step)}", "dim"),
    )
    for difference in step.differences:
        if difference.field in ("tokens", "cost"):
            continue  # the step line's metrics show them
        _render_difference(report, difference, depth + 1)


def _render_difference(report: _Report, difference: Difference, depth: int) -> None:
    report.add(depth, (difference.label, "cyan"))
    report.add(depth + 1, ("- ", "red"), (describe_value(difference, "a"), "red"))
    report.add(depth + 1, ("+ ", "green"), (describe_value(difference, "b"), "green"))


def render_json(result: JobDiff, *, pretty: bool = False) -> str:
    """The ``--json`` document: compact on one line, or indented by two spaces."""
    document = result.to_dict()
    if pretty:
        return json_visible(json.dumps(document, ensure_ascii=False, indent=2))
    return json_visible(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
