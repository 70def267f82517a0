"""Every key binding is declared once, in the registry; a moved key is shown where it is now."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import Markdown

import studio
from studio.app import make_app
from studio.keys import BY_ID, Keymap
from studio.screens.help import HelpScreen
from studio.screens.main import MainScreen
from tests.studio.helpers import SIZE, fixed_now, wait_until

STUDIO = Path(studio.__file__).parent
REGISTRY = STUDIO / "keys.py"


def binding_calls(source: str) -> list[int]:
    """Lines where ``source`` constructs a ``Binding`` (by name, or as an attribute)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name == "Binding":
            lines.append(node.lineno)
    return lines


def test_the_scan_sees_a_binding() -> None:
    assert binding_calls('from textual.binding import Binding\nBinding("a", "b")') == [2]
    assert binding_calls('import textual\n\n\ntextual.binding.Binding("a", "b")') == [4]
    assert binding_calls('"""Binding("a", "b") in a docstring is no binding."""') == []


def test_bindings_are_constructed_only_in_the_registry() -> None:
    outside = [
        f"{path.relative_to(STUDIO.parent)}:{line}"
        for path in sorted(STUDIO.rglob("*.py"))
        if path != REGISTRY
        for line in binding_calls(path.read_text(encoding="utf-8"))
    ]
    assert outside == [], "declare these in studio/keys.py and bind them with bindings(...)"


def test_the_keymap_knows_only_registry_ids() -> None:
    keymap = Keymap({"save-file": "ctrl+w"})
    assert keymap.key("save-file") == "ctrl+w"
    assert keymap.key("reload-file") == BY_ID["reload-file"].key
    with pytest.raises(ValueError, match="'save-fiel'"):
        Keymap({"save-fiel": "ctrl+w"})


async def test_help_shows_a_remapped_key(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("minimal.toml")
    app = make_app(
        cwd=path.parent,
        now=fixed_now,
        watch=False,
        cursor_blink=False,
        keymap={"help": "f9", "save-file": "ctrl+w"},
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.editor.insert("# moved keys\n", (0, 0))
        await wait_until(pilot, lambda: screen.dirty)
        await pilot.press("ctrl+w")  # the team tree has the focus: the screen saves
        await wait_until(pilot, lambda: not screen.dirty)
        assert path.read_text().startswith("# moved keys\n")

        await pilot.press("f1")  # moved away: F1 does nothing now
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("f9")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        source = app.screen.query_one("#help-keys", Markdown).source
        assert "| `^w` | Save |" in source
        assert "| `f9` | Help |" in source
        assert "| `^s` | Save |" not in source
        assert "| `^s` | Apply |" in source  # other bindings keep their keys
