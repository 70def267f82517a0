"""The detail of one row of a diff: what differs, then job A and job B side by side in full."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from runtime.diff import describe_node_side, describe_value, format_cost, format_duration

if TYPE_CHECKING:
    from runtime.diff import Difference, JobDiff, NodeSide, StepView
    from studio.widgets.diff_table import DiffRow

FOLD_CHARS = 600
"""Characters of a result or a text shown per side; the rest is counted."""


class DiffDetail(VerticalScroll):
    """The run or step pair under the table's cursor, scrollable.

    The screen calls :meth:`show` with the row and the comparison it belongs to.
    """

    DEFAULT_CSS = """
    DiffDetail {
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Detail"

    def compose(self) -> ComposeResult:
        yield Static("", markup=False)

    def show(self, row: DiffRow | None, result: JobDiff) -> None:
        """Show ``row`` of ``result`` (None: nothing selected)."""
        self.query_one(Static).update(render_row(row, result) if row is not None else "")
        self.scroll_home(animate=False)


def render_row(row: DiffRow, result: JobDiff) -> RenderableType:
    """What differs in ``row``, then both sides in full."""
    node, step = row.node, row.step
    where = " › ".join(node.path[:-1] + (node.name,))
    title = Text.assemble((where, "bold"))
    state = row.state
    if step is not None:
        title.append(f" · {step.label}")  # a one-sided step's label says which job has it
    elif state in ("onlyInA", "onlyInB"):
        title.append(f" · only in {state[-1]}", style="bold yellow")
    if state in ("same", "changed"):
        same = state == "same"
        title.append(" · the same" if same else " · differs", "dim" if same else "bold yellow")
    parts: list[RenderableType] = [title]
    differences = step.differences if step is not None else node.differences
    if differences:
        parts.append(Text("\nDifferences", style="bold"))
        parts.extend(_difference(difference) for difference in differences)
    elif step is None and state == "changed":
        parts.append(Text("\nThe run's own steps or its delegates differ: see the rows below."))
    sides = Table.grid(padding=(0, 2), expand=True)
    sides.add_column(ratio=1)
    sides.add_column(ratio=1)
    header_a = Text.assemble(("A", "bold red"), f" · job {result.a.summary.id}")
    header_b = Text.assemble(("B", "bold green"), f" · job {result.b.summary.id}")
    if step is not None:
        sides.add_row(header_a, header_b)
        sides.add_row(_step_side(step.a), _step_side(step.b))
    else:
        sides.add_row(header_a, header_b)
        sides.add_row(_node_side(node.a), _node_side(node.b))
    parts += [Text(""), sides]
    return Group(*parts)


def _difference(difference: Difference) -> RenderableType:
    return Group(
        Text(f"  {difference.label}", style="cyan"),
        Text.assemble(("    - ", "red"), (describe_value(difference, "a"), "red")),
        Text.assemble(("    + ", "green"), (describe_value(difference, "b"), "green")),
    )


def _step_side(step: StepView | None) -> RenderableType:
    if step is None:
        return Text("(no such step)", style="dim")
    usage = f"{step.total_tokens:,} tokens"
    if step.cost_usd is not None:
        usage += f" · {format_cost(step.cost_usd)}"
    parts: list[RenderableType] = [
        Text(f"step {step.number} · {step.end} · {usage} · {format_duration(step.duration_ms)}")
    ]
    for call in step.calls:
        parts.append(Text.assemble(("\n" + call.tool_name, "bold"), " ", _json(call.args)))
        result = next((r for r in step.results if r.call_id == call.id), None)
        if result is not None:
            parts.append(_folded("→ ", result.text, "red" if result.failed else ""))
    for result in step.results:
        if not any(call.id == result.call_id for call in step.calls):
            parts.append(Text.assemble(("\n" + result.tool_name, "bold"), " result"))
            parts.append(_folded("→ ", result.text, "red" if result.failed else ""))
    if step.text:
        parts += [Text("\nText", style="bold"), _folded("", step.text, "")]
    if step.error:
        parts.append(Text("\n" + step.error, style="red"))
    return Group(*parts)


def _node_side(node: NodeSide | None) -> RenderableType:
    if node is None:
        return Text("(no such run)", style="dim")
    parts: list[RenderableType] = [Text(describe_node_side(node))]
    if node.query is not None:
        parts += [Text("\nQuery", style="bold"), _folded("", node.query, "")]
    return Group(*parts)


def _json(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= FOLD_CHARS else text[: FOLD_CHARS - 1] + "…"


def _folded(prefix: str, text: str, style: str) -> Text:
    body = Text(prefix + text[:FOLD_CHARS], style=style)
    if len(text) > FOLD_CHARS:
        body.append(f" … {len(text) - FOLD_CHARS:,} more characters", style="italic dim")
    return body
