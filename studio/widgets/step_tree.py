"""The step tree: job → runs → steps → tool calls, with delegated runs under their tool calls."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from rich.text import Text
from textual import on
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from runtime.cli import counted
from studio.run_view import NodeKey, RunView, read_earlier_steps
from studio.view_model import RunNode, StepNode, settled


class StepTree(Tree[NodeKey]):
    """The job the :class:`~studio.run_view.RunView` holds, drawn incrementally.

    Runs that changed are marked (:meth:`mark_dirty`) as events arrive, and :meth:`draw` redraws
    only those, and only their steps that may still change; the owner decides when to draw, so
    a flood of events never queues redraws. A run whose oldest steps the job dropped shows them
    as one "earlier steps" node that reads them back from the stored events when opened.
    """

    def __init__(self, view: RunView, *, workspace: Path, id: str | None = None) -> None:
        """Build the tree.

        Args:
            view: The job to draw (the tree reads it; it never changes it).
            workspace: Where the job's events are stored (for the earlier steps).
            id: The widget's id.
        """
        super().__init__("job", data=("job",), id=id)
        self.show_root = True
        self.guide_depth = 3
        self.root.expand()
        self.view = view
        self.workspace = workspace
        self.border_title = f"Job · {view.expert_key}"
        self._by_key: dict[NodeKey, TreeNode[NodeKey]] = {}
        self._dirty: set[str] = set()
        self._settled: dict[str, int] = {}
        """Run node id → number of its first step that may still change."""
        self._shown_steps: dict[str, list[int]] = {}
        """Run node id → step numbers with a node in the tree."""

    @property
    def nodes(self) -> Mapping[NodeKey, TreeNode[NodeKey]]:
        """The tree's nodes by what they show."""
        return self._by_key

    def mark_dirty(self, node: RunNode) -> None:
        """Redraw ``node`` and the runs above it on the next :meth:`draw`."""
        runs = self.view.job.runs
        current: RunNode | None = node
        while current is not None and current.node_id not in self._dirty:
            self._dirty.add(current.node_id)
            current = runs.get(current.parent_node_id or "")

    def mark_runs(self, node_ids: Iterable[str]) -> None:
        """Redraw these runs (and only these) on the next :meth:`draw`."""
        self._dirty.update(node_ids)

    def clear_job(self) -> None:
        """Forget every node: a new job is about to be shown."""
        self._shown_steps.clear()
        self._by_key.clear()
        self._dirty.clear()
        self._settled.clear()
        self.clear()
        self.root.expand()
        self._by_key[("job",)] = self.root

    def draw(self) -> None:
        """Bring the job's row and the marked runs up to date."""
        view = self.view
        self._by_key.setdefault(("job",), self.root)
        self.root.set_label(view.job_label())
        for node_id in [n.node_id for _, n in view.job.walk() if n.node_id in self._dirty]:
            self._draw_run(view.job.runs[node_id])
        self._dirty.clear()

    def _parent_node(self, node: RunNode) -> TreeNode[NodeKey]:
        if node.parent_node_id and node.parent_call_id:
            call_node = self._by_key.get(("call", node.parent_node_id, node.parent_call_id))
            if call_node is not None:
                return call_node
        if node.parent_node_id and ("run", node.parent_node_id) in self._by_key:
            return self._by_key[("run", node.parent_node_id)]
        return self._by_key[("job",)]

    def _draw_run(self, node: RunNode) -> None:
        key: NodeKey = ("run", node.node_id)
        tree_node = self._by_key.get(key)
        if tree_node is None:
            parent = self._parent_node(node)
            parent.allow_expand = True
            parent.expand()
            tree_node = parent.add(self.view.run_label(node), data=key)
            tree_node.expand()
            self._by_key[key] = tree_node
        else:
            tree_node.set_label(self.view.run_label(node))
        shown = self._shown_steps.setdefault(node.node_id, [])
        if node.dropped_steps:
            self._drop_steps(node, tree_node, shown)
        first_open = self._settled.get(node.node_id, 0)
        still_open = None
        for step in node.steps:
            if step.number < first_open:
                continue
            if step.number not in shown:
                shown.append(step.number)
            self._draw_step(node, tree_node, step)
            if still_open is None and not settled(step):
                still_open = step.number
        last = node.steps[-1].number + 1 if node.steps else first_open
        self._settled[node.node_id] = still_open if still_open is not None else last

    def _drop_steps(self, node: RunNode, run_node: TreeNode[NodeKey], shown: list[int]) -> None:
        """Take the steps the job no longer holds out of the tree; count them in one node."""
        held = {step.number for step in node.steps}
        for number in [n for n in shown if n not in held]:
            shown.remove(number)
            step_node = self._by_key.pop(("step", node.node_id, str(number)), None)
            if step_node is None:
                continue
            for child in step_node.children:
                if child.data is not None:
                    self._by_key.pop(child.data, None)
            step_node.remove()
        key: NodeKey = ("earlier", node.node_id)
        label = Text(
            f"⋯ {counted(node.dropped_steps, 'earlier step')}",
            style="bright_black",
        )
        earlier = self._by_key.get(key)
        if earlier is None:
            earlier = run_node.add(label, data=key, before=0, allow_expand=True)
            self._by_key[key] = earlier
        elif not earlier.is_expanded:
            earlier.set_label(label)

    def _draw_step(self, node: RunNode, parent: TreeNode[NodeKey], step: StepNode) -> None:
        key: NodeKey = ("step", node.node_id, str(step.number))
        step_node = self._by_key.get(key)
        if step_node is None:
            step_node = parent.add(self.view.step_label(step), data=key)
            step_node.expand()
            self._by_key[key] = step_node
        else:
            step_node.set_label(self.view.step_label(step))
        step_node.allow_expand = bool(step.calls)
        for call in step.calls:
            call_key: NodeKey = ("call", node.node_id, call.call_id)
            call_node = self._by_key.get(call_key)
            if call_node is None:
                call_node = step_node.add(
                    self.view.call_label(call), data=call_key, allow_expand=False
                )
                self._by_key[call_key] = call_node
            else:
                call_node.set_label(self.view.call_label(call))

    # earlier steps, read back on demand ------------------------------------------------------

    @on(Tree.NodeExpanded)
    def _expanded(self, event: Tree.NodeExpanded[NodeKey]) -> None:
        key = event.node.data
        if key is None or key[0] != "earlier":
            return
        node = self.view.job.runs.get(key[1])
        if node is None:
            return
        steps = read_earlier_steps(self.workspace, self.view.job, node)
        self.view.earlier[node.node_id] = {step.number: step for step in steps}
        event.node.remove_children()
        for step in steps:
            step_key: NodeKey = ("step", node.node_id, str(step.number), "earlier")
            step_node = event.node.add(self.view.step_label(step), data=step_key)
            step_node.allow_expand = bool(step.calls)
            for call in step.calls:
                call_key: NodeKey = ("call", node.node_id, call.call_id, "earlier")
                step_node.add(self.view.call_label(call), data=call_key, allow_expand=False)
        if not steps:
            event.node.add(Text("(not found in the stored events)", style="italic"), data=key)

    @on(Tree.NodeCollapsed)
    def _collapsed(self, event: Tree.NodeCollapsed[NodeKey]) -> None:
        key = event.node.data
        if key is not None and key[0] == "earlier":
            event.node.remove_children()
            event.node.allow_expand = True
            self.view.earlier.pop(key[1], None)
