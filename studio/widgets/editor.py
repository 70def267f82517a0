"""The perstack.toml editor: a code-editing TextArea with TOML highlighting."""

from __future__ import annotations

from importlib.util import find_spec
from typing import ClassVar

from textual.binding import BindingType
from textual.widgets import TextArea

from studio.keys import binding


def toml_language() -> str | None:
    """``"toml"`` when the tree-sitter TOML grammar is installed, else ``None`` (plain text)."""
    if find_spec("tree_sitter") is None or find_spec("tree_sitter_toml") is None:
        return None
    return "toml"


class ConfigEditor(TextArea):
    """A TextArea set up for perstack.toml: line numbers, TOML colours, Tab indents.

    | Key | Action |
    | :- | :- |
    | escape | Move the focus to the team tree. |
    """

    BINDINGS: ClassVar[list[BindingType]] = [binding("editor-leave")]

    DEFAULT_CSS = """
    ConfigEditor {
        border: round $border-blurred;
        border-title-color: $text-muted;
        border-subtitle-color: $text-muted;
        &:focus {
            border: round $border;
            border-title-color: $text;
        }
        &.-dirty {
            border-subtitle-color: $text-warning;
        }
    }
    """

    def __init__(self, text: str = "", *, id: str | None = None) -> None:
        super().__init__(
            text,
            language=toml_language(),
            theme="css",
            soft_wrap=False,
            tab_behavior="indent",
            show_line_numbers=True,
            id=id,
        )
        self.indent_width = 2

    def go_to(self, line: int, column: int | None = None) -> None:
        """Put the cursor on a 1-based ``line`` (and column) and scroll it to the middle."""
        row = max(0, min(line - 1, self.document.line_count - 1))
        col = max(0, (column or 1) - 1)
        self.move_cursor((row, min(col, len(self.document.get_line(row)))), center=True)
