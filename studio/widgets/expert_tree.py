"""The team tree: the file's model, then each expert with its delegates and skills beneath it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from rich.style import Style
from rich.text import Text
from textual import on
from textual.binding import BindingType
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from studio.keys import bindings
from studio.session import SKILL_TYPES, TeamOutline

ItemKind = Literal["model", "expert", "delegate", "skill", "empty"]
TreeAction = Literal["edit", "add-expert", "add-skill", "rename", "delete"]


@dataclass(frozen=True)
class TreeItem:
    """What a node of the tree stands for."""

    kind: ItemKind
    expert: str = ""
    """The expert of the node (for a delegate or skill, the expert it belongs to)."""
    name: str = ""
    """The delegate's key, the skill's name, or the model."""
    detail: str = ""
    """Secondary text: version, skill type, delegate status."""
    problem: bool = False
    """The expert has an error."""
    line: int | None = None
    """Where the node's table starts in the text."""

    @property
    def node_key(self) -> tuple[str, str, str]:
        """Identity across rebuilds (keeps the cursor and expansion)."""
        if self.kind in ("model", "empty"):
            return (self.kind, "", "")
        return (self.kind, self.expert, self.name)


class ExpertTree(Tree[TreeItem]):
    """The team at a glance: experts with their delegates (→) and skills (⚙) beneath them.

    The parent sets the content with :meth:`show_outline` and handles
    :class:`ExpertTree.ActionInvoked` for the keys below.

    | Key | Action |
    | :- | :- |
    | e | Edit the selected expert, skill or model. |
    | a | Add an expert. |
    | s | Add a skill to the selected expert. |
    | r | Rename the selected expert. |
    | d, delete | Delete the selected expert or skill. |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        *bindings("tree-edit", "tree-add-expert", "tree-add-skill", "tree-rename", "tree-delete")
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "expert-tree--expert",
        "expert-tree--detail",
        "expert-tree--problem",
        "expert-tree--delegate",
        "expert-tree--remote",
        "expert-tree--missing",
        "expert-tree--skill",
        "expert-tree--model",
    }

    DEFAULT_CSS = """
    ExpertTree {
        border: round $border-blurred;
        border-title-color: $text-muted;
        padding: 0 1;
        &:focus { border: round $border; border-title-color: $text; }
        &.-stale { border-subtitle-color: $text-warning; }
        & > .expert-tree--expert { text-style: bold; }
        & > .expert-tree--detail { color: $text-muted; }
        & > .expert-tree--problem { color: $text-error; text-style: bold; }
        & > .expert-tree--delegate { color: $text; }
        & > .expert-tree--remote { color: $text-secondary; }
        & > .expert-tree--missing { color: $text-warning; }
        & > .expert-tree--skill { color: $text-accent; }
        & > .expert-tree--model { color: $text-primary; }
    }
    """

    @dataclass
    class ActionInvoked(Message):
        """A key asked for an edit of the selected item (or of the team, for ``add-expert``)."""

        tree: ExpertTree
        action: TreeAction
        item: TreeItem | None

        @property
        def control(self) -> ExpertTree:
            """The tree that sent the message."""
            return self.tree

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("team", id=id)
        self.show_root = False
        self.guide_depth = 3
        self._outline: TeamOutline | None = None
        self._problems: frozenset[str] = frozenset()
        self._user_moved = False
        self.border_title = "Team"

    @property
    def outline(self) -> TeamOutline | None:
        """What the tree shows."""
        return self._outline

    @property
    def selected_item(self) -> TreeItem | None:
        """The item under the cursor."""
        node = self.cursor_node
        return node.data if node is not None else None

    @property
    def selected_expert(self) -> str | None:
        """The expert under the cursor, or the expert of the delegate or skill under it."""
        item = self.selected_item
        return item.expert or None if item is not None else None

    def show_outline(
        self, outline: TeamOutline, problems: frozenset[str] = frozenset(), *, stale: bool = False
    ) -> None:
        """Show ``outline``, keeping the cursor and expanded nodes where they still exist.

        When only labels changed (a version, a problem mark, a pick list), the nodes are updated
        in place; the tree is rebuilt only when experts, delegates or skills come or go.

        Args:
            outline: The team to show.
            problems: Experts to mark as having errors.
            stale: The text no longer parses; the outline is its last valid version.
        """
        self.set_class(stale, "-stale")
        self.border_subtitle = "last valid version" if stale else ""
        if outline == self._outline and problems == self._problems:
            return
        self._outline, self._problems = outline, problems
        wanted = _items(outline, problems)
        current = [
            (node.data, [child.data for child in node.children]) for node in self.root.children
        ]
        if [
            (item.node_key, [child.node_key for child in children]) for item, children in wanted
        ] == [
            (
                item.node_key if item else None,
                [child.node_key if child else None for child in children],
            )
            for item, children in current
        ]:
            for node, (item, children) in zip(self.root.children, wanted, strict=True):
                self._update(node, item)
                for child, child_item in zip(node.children, children, strict=True):
                    self._update(child, child_item)
            return
        cursor = self.selected_item
        collapsed = {
            node.data.node_key
            for node in self._nodes_flat()
            if node.data is not None and node.allow_expand and not node.is_expanded
        }
        # The cursor moves while nodes are rebuilt (now or after the next refresh); those moves
        # are not the user's, so their NodeHighlighted messages are stopped (_node_highlighted).
        self._user_moved = False
        self.clear()
        for item, children in wanted:
            if not children:
                self.root.add_leaf(item.name, item)
                continue
            parent = self.root.add(item.name, item, expand=item.node_key not in collapsed)
            for child_item in children:
                parent.add_leaf(child_item.name, child_item)
        self._restore_cursor(cursor)

    def on_key(self) -> None:
        self._user_moved = True

    def on_click(self) -> None:
        self._user_moved = True

    @on(Tree.NodeHighlighted)
    def _node_highlighted(self, event: Tree.NodeHighlighted[TreeItem]) -> None:
        # Only the user's moves reach the screen (which moves the editor to follow them).
        if not self._user_moved:
            event.stop()

    @staticmethod
    def _update(node: TreeNode[TreeItem], item: TreeItem) -> None:
        if node.data != item:
            node.data = item
            node.set_label(item.name)

    def select_expert(self, key: str) -> None:
        """Move the cursor to the expert ``key`` (the editor follows, as for the user's moves)."""
        self._user_moved = True
        for node in self._nodes_flat():
            if node.data is not None and node.data.kind == "expert" and node.data.expert == key:
                self.move_cursor(node)
                return

    def _restore_cursor(self, previous: TreeItem | None) -> None:
        nodes = [node for node in self._nodes_flat() if node.data is not None]
        if not nodes:
            return
        target = nodes[1] if len(nodes) > 1 else nodes[0]
        if previous is not None:
            same = [node for node in nodes if node.data and node.data.node_key == previous.node_key]
            parent = [
                node
                for node in nodes
                if node.data and node.data.kind == "expert" and node.data.expert == previous.expert
            ]
            target = (same or parent or [target])[0]
        self.move_cursor(target, animate=False)

    def _nodes_flat(self) -> list[TreeNode[TreeItem]]:
        found: list[TreeNode[TreeItem]] = []
        stack = list(reversed(self.root.children))
        while stack:
            node = stack.pop()
            found.append(node)
            stack.extend(reversed(node.children))
        return found

    def render_label(self, node: TreeNode[TreeItem], base_style: Style, style: Style) -> Text:
        """Draw a node from its item, with the theme's colours."""
        item = node.data
        if item is None:
            return super().render_label(node, base_style, style)
        component = self.get_component_rich_style
        label = Text()
        if item.kind == "model":
            label.append("model ", component("expert-tree--detail"))
            label.append(item.name or "(default)", component("expert-tree--model"))
        elif item.kind == "expert":
            label.append(item.name, component("expert-tree--expert"))
            if item.detail:
                label.append(f" {item.detail}", component("expert-tree--detail"))
            if item.problem:
                label.append(" ✗", component("expert-tree--problem"))
        elif item.kind == "delegate":
            kind = {"": "expert-tree--delegate", "registry": "expert-tree--remote"}.get(
                item.detail, "expert-tree--missing"
            )
            label.append("→ ", component("expert-tree--detail"))
            label.append(item.name, component(kind))
            if item.detail:
                label.append(f" {item.detail}", component(kind))
        elif item.kind == "skill":
            label.append("⚙ ", component("expert-tree--detail"))
            label.append(item.name, component("expert-tree--skill"))
            if item.detail:
                label.append(f" {item.detail}", component("expert-tree--detail"))
        else:
            label.append("no experts yet: press a to add one", component("expert-tree--detail"))
        label.stylize(style)
        if node.allow_expand:
            icon = self.ICON_NODE_EXPANDED if node.is_expanded else self.ICON_NODE
            return Text.assemble((icon, base_style + Style(bold=True)), label)
        return label

    def _invoke(self, action: TreeAction) -> None:
        self.post_message(self.ActionInvoked(self, action, self.selected_item))

    def action_edit_item(self) -> None:
        """Edit the selected expert, skill or model."""
        self._invoke("edit")

    def action_add_expert(self) -> None:
        """Add an expert."""
        self._invoke("add-expert")

    def action_add_skill(self) -> None:
        """Add a skill to the selected expert."""
        self._invoke("add-skill")

    def action_rename_item(self) -> None:
        """Rename the selected expert."""
        self._invoke("rename")

    def action_delete_item(self) -> None:
        """Delete the selected expert or skill."""
        self._invoke("delete")


def _items(outline: TeamOutline, problems: frozenset[str]) -> list[tuple[TreeItem, list[TreeItem]]]:
    """The tree's top-level items, each with its children."""
    known = set(outline.expert_keys)
    model = outline.model or ""
    items: list[tuple[TreeItem, list[TreeItem]]] = [
        (
            TreeItem(
                "model", name=model, detail="" if model else "default", line=outline.model_line
            ),
            [],
        )
    ]
    for expert in outline.experts:
        children = [
            TreeItem(
                "delegate",
                expert=expert.key,
                name=delegate,
                detail=_delegate_status(delegate, known),
                line=expert.line,
            )
            for delegate in expert.delegates
        ]
        children += [
            TreeItem(
                "skill",
                expert=expert.key,
                name=skill.name,
                detail=_skill_detail(skill.type, skill.pick, skill.omit, skill.tools),
                line=skill.line or expert.line,
            )
            for skill in expert.skills
        ]
        item = TreeItem(
            "expert",
            expert=expert.key,
            name=expert.key,
            detail=f"v{expert.version}" if expert.version else "",
            problem=expert.key in problems,
            line=expert.line,
        )
        items.append((item, children))
    if not outline.experts:
        items.append((TreeItem("empty"), []))
    return items


def _delegate_status(delegate: str, known: set[str]) -> str:
    version_at = delegate.find("@", 1)
    name = delegate if version_at < 0 else delegate[:version_at]
    if delegate in known or name in known:
        return ""
    # Scoped keys not defined here are fetched from the registry when the team runs.
    return "registry" if delegate.startswith("@") else "not defined"


def _skill_detail(
    skill_type: str, pick: tuple[str, ...], omit: tuple[str, ...], tools: tuple[str, ...]
) -> str:
    parts = [SKILL_TYPES.get(skill_type, skill_type or "no type")]
    if pick:
        parts.append(f"pick {len(pick)}")
    if omit:
        parts.append(f"omit {len(omit)}")
    if tools:
        parts.append(f"{len(tools)} tool{'s' * (len(tools) != 1)}")
    return " · ".join(parts)
