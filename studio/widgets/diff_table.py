"""The side-by-side table of two compared jobs: one row per aligned run or step, A left, B right."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.widgets import DataTable

from runtime.diff import MARKS, describe_node_side, describe_step, format_duration

if TYPE_CHECKING:
    from runtime.diff import Divergence, JobDiff, NodeDiff, NodeSide, StepDiff, StepView

MARK_STYLES = {"same": "dim", "changed": "bold yellow", "onlyInA": "red", "onlyInB": "green"}
"""The mark column's colours: as ``perstack diff`` colours its marks."""


@dataclass(frozen=True)
class DiffRow:
    """One row of the table: a pair of runs (``step`` is None) or a pair of steps of ``node``."""

    depth: int
    node: NodeDiff
    step: StepDiff | None = None

    @property
    def state(self) -> str:
        """``same``, ``changed``, ``onlyInA`` or ``onlyInB``."""
        return self.step.state if self.step is not None else self.node.state

    @property
    def differs(self) -> bool:
        """The row itself differs (a run row whose only differences are below it does not)."""
        if self.step is not None:
            return not self.step.same
        node = self.node
        return node.a is None or node.b is None or bool(node.differences)


def diff_rows(result: JobDiff) -> list[DiffRow]:
    """The table's rows in reading order: each run, its steps, each delegate after its call."""
    return [row for root in result.roots for row in _node_rows(root, 0)]


def _node_rows(node: NodeDiff, depth: int) -> Iterator[DiffRow]:
    yield DiffRow(depth, node)
    called: dict[int | None, list[NodeDiff]] = {}
    for child in node.children:
        called.setdefault(child.called_at, []).append(child)
    for index, step in enumerate(node.steps):
        yield DiffRow(depth + 1, node, step)
        for child in called.get(index, []):
            yield from _node_rows(child, depth + 1)
    for child in called.get(None, []):
        yield from _node_rows(child, depth + 1)


class DiffTable(DataTable[Text]):
    """The aligned runs and steps of two jobs, the mark column saying which differ.

    The owner calls :meth:`show` with the comparison; a row's cells are cut to the table's
    width (the detail pane shows everything).
    """

    DEFAULT_CSS = """
    DiffTable {
        height: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.rows_shown: list[DiffRow] = []
        """The rows, in table order."""
        self._result: JobDiff | None = None
        self._width = 0

    def show(self, result: JobDiff, width: int) -> None:
        """Show ``result`` in ``width`` columns of text (the table's own width)."""
        self._result, self._width = result, width
        self.clear(columns=True)
        self.rows_shown = diff_rows(result)
        where = min(32, max([12, *(len(self._where(row)) for row in self.rows_shown)]))
        # Each column is padded by one cell on both sides; a vertical scrollbar takes two.
        side = max(16, (width - 1 - where - 4 * 2 - 2) // 2)
        self.add_column("", width=1, key="mark")
        self.add_column("Where", width=where, key="where")
        self.add_column(f"A · {result.a.summary.id}", width=side, key="a")
        self.add_column(f"B · {result.b.summary.id}", width=side, key="b")
        for index, row in enumerate(self.rows_shown):
            dim = "dim" if row.state == "same" else ""
            self.add_row(
                Text(MARKS[row.state], style=MARK_STYLES[row.state]),
                Text(self._where(row), style="bold" if row.step is None else dim),
                self._cell(row, "a", dim),
                self._cell(row, "b", dim),
                key=str(index),
            )

    def on_resize(self, event: events.Resize) -> None:
        # The cells are cut to the width: a new width lays them out again, the cursor kept.
        if self._result is not None and event.size.width != self._width:
            row = self.cursor_row
            self.show(self._result, event.size.width)
            self.move_cursor(row=row)

    def row_of(self, divergence: Divergence) -> int | None:
        """The index of the row a divergence points at."""
        for index, row in enumerate(self.rows_shown):
            if row.node is divergence.node and row.step is divergence.step:
                return index
        return None

    @property
    def current(self) -> DiffRow | None:
        """The row under the cursor."""
        if not self.rows_shown or not 0 <= self.cursor_row < len(self.rows_shown):
            return None
        return self.rows_shown[self.cursor_row]

    @staticmethod
    def _where(row: DiffRow) -> str:
        indent = "  " * row.depth
        if row.step is None:
            return indent + row.node.name
        return indent + row.step.label

    @staticmethod
    def _cell(row: DiffRow, side: str, style: str) -> Text:
        if row.step is not None:
            step: StepView | None = row.step.a if side == "a" else row.step.b
            if step is None:
                return Text("—", style="dim")
            text = (
                f"{describe_step(step)} · {step.total_tokens:,} tok · "
                f"{format_duration(step.duration_ms)}"
            )
        else:
            node: NodeSide | None = row.node.a if side == "a" else row.node.b
            if node is None:
                return Text("—", style="dim")
            text = describe_node_side(node)
        return Text(text, style=style, no_wrap=True, overflow="ellipsis")
