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
