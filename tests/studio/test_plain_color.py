"""`perstack start --no-tui` colours like `perstack log`: on a terminal, and never with NO_COLOR."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import runtime.cli
import runtime.log.render
from runtime import RunSetting, run
from runtime.testing import ScriptedModel, call, reply
from studio.plain import PlainView

TOML = '[experts."solo"]\ninstruction = "Write files."\n'


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


async def view_of_a_run(workspace: Path) -> str:
    (workspace / "perstack.toml").write_text(TOML)
    model = ScriptedModel([call("writeTextFile", path="a.txt", text="x"), reply("done")])
    out = Terminal()
    await run(
        RunSetting(expert_key="solo", query="go", workspace=workspace), PlainView(out), model=model
    )
    return out.getvalue()


async def test_no_color_on_a_terminal_prints_no_escape_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    text = await view_of_a_run(tmp_path)
    assert "▶ solo" in text and "✔ solo done" in text
    assert "\x1b" not in text


async def test_a_terminal_without_no_color_is_coloured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert "\x1b[" in await view_of_a_run(tmp_path)
    assert PlainView(io.StringIO()).color is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert PlainView(Terminal(), color=True).color is True  # an explicit choice still wins


def test_one_colour_rule_for_log_and_start() -> None:
    assert runtime.cli.use_color is runtime.log.render.use_color


def no_color_restored_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset NO_COLOR now and whatever --no-color sets is undone after the test.

    (``delenv`` of an unset variable records nothing to restore, so set it first.)
    """
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("NO_COLOR")


@pytest.mark.parametrize(
    ("argv", "left"),
    [
        (["--no-color", "log", "--job", "x"], ["log", "--job", "x"]),
        (["log", "--no-color"], ["log"]),
        (["run", "solo", "q", "--", "--no-color"], ["run", "solo", "q", "--", "--no-color"]),
    ],
)
def test_no_color_flag_anywhere_before_double_dash_sets_no_color(
    argv: list[str], left: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_color_restored_after(monkeypatch)
    assert runtime.take_no_color(argv) == left
    import os

    assert (os.environ.get("NO_COLOR") == "1") is ("--no-color" not in left)


def test_perstack_log_no_color_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`perstack --no-color log` on a terminal: plain text, as under NO_COLOR."""
    import asyncio

    from studio.__main__ import main

    no_color_restored_after(monkeypatch)
    monkeypatch.chdir(tmp_path)
    asyncio.run(view_of_a_run(tmp_path))
    out = Terminal()
    monkeypatch.setattr("sys.stdout", out)
    assert main(["log", "--no-color"]) == 0
    assert "Job:" in out.getvalue() and "\x1b" not in out.getvalue()
