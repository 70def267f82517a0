"""An 80-column terminal (issue 16, bugs 7 and 8): the footer keeps Ctrl+Q, F1 and Ctrl+T (New
team) in view, and the run view's tree takes the whole width so its lines keep tokens and cost."""

from __future__ import annotations

from pathlib import Path

from textual.widgets._footer import FooterKey

from studio.app import make_app
from studio.run_app import make_run_app
from studio.screens.run import RunScreen
from tests.studio.helpers import fixed_now
from tests.studio.test_run_view import finished

TEAM = '[experts."lead"]\ninstruction = "Lead."\ndelegates = ["coder"]\n'
TEAM += '[experts."coder"]\ndescription = "Codes"\ninstruction = "Code."\n'


def visible_keys(app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Footer keys drawn wholly inside the screen: key → description."""
    width = app.size.width
    return {
        key.key_display: key.description
        for key in app.screen.query(FooterKey)
        if key.region.width and key.region.right <= width
    }


async def test_the_author_footer_fits_80_columns(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text(TEAM)
    app = make_app(tmp_path / "perstack.toml", now=fixed_now, watch=False, cursor_blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        keys = visible_keys(app)
        assert keys["^q"] == "Quit" and keys["f1"] == "Help"
        assert keys["^t"] == "New team" and keys["^s"] == "Save"
        assert "r" not in keys  # Rename: in the palette, the help screen and at 100+ columns
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        await pilot.pause()
        keys = visible_keys(app)
        assert keys["r"] == "Rename" and keys["^n"] == "New expert"
        assert keys["^q"] == "Quit" and keys["f1"] == "Help" and keys["^t"] == "New team"


async def test_the_run_tree_takes_the_width_of_a_narrow_terminal() -> None:
    app = make_run_app(demo=True, cursor_blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await finished(pilot)
        assert isinstance(screen, RunScreen) and screen.has_class("-narrow")
        tree = screen.step_tree
        assert tree.region.width == 80
        widest = max(
            tree.process_label(node.label).cell_len + 4 * depth for depth, node in _lines(tree)
        )
        assert widest <= tree.scrollable_content_region.width
        keys = visible_keys(app)
        assert keys["^q"] == "Quit" and keys["f1"] == "Help"
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert not screen.has_class("-narrow")


def _lines(tree):  # type: ignore[no-untyped-def]
    """The run and job lines of the tree (their labels end with tokens and cost)."""
    out = []

    def walk(node, depth):  # type: ignore[no-untyped-def]
        if "tok" in str(node.label):
            out.append((depth, node))
        for child in node.children:
            walk(child, depth + 1)

    walk(tree.root, 0)
    return out
