"""Shared fixtures and helpers of the base skill tests (tests/runtime/test_base_skill_*.py).

The fixtures ``ws`` (an empty workspace) and ``skill`` (a BaseSkill on it) are defined under
those names; a test module imports ``ws_fixture`` and ``skill_fixture`` to use them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime.schema.messages import TextPart
from runtime.skills.base import BaseSkill
from runtime.skills.types import ToolOutcome


@pytest.fixture(name="ws")
def ws_fixture(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    return workspace.resolve()


@pytest.fixture(name="skill")
def skill_fixture(ws: Path) -> BaseSkill:
    return BaseSkill(ws)


def text_of(outcome: ToolOutcome) -> str:
    assert len(outcome.contents) == 1
    part = outcome.contents[0]
    assert isinstance(part, TextPart)
    return part.text


async def ok(skill: BaseSkill, tool: str, **args: Any) -> Any:
    outcome = await skill.call(tool, args)
    assert not outcome.is_error, text_of(outcome)
    return json.loads(text_of(outcome))


async def fail(skill: BaseSkill, tool: str, **args: Any) -> dict[str, Any]:
    outcome = await skill.call(tool, args)
    assert outcome.is_error, text_of(outcome)
    result: dict[str, Any] = json.loads(text_of(outcome))
    return result


async def fail_message(skill: BaseSkill, tool: str, **args: Any) -> str:
    result = await fail(skill, tool, **args)
    assert set(result) == {"error", "message"}
    message: str = result["message"]
    return message


def run_args(command: str, *args: str, **overrides: Any) -> dict[str, Any]:
    call: dict[str, Any] = {
        "command": command,
        "args": list(args),
        "env": {},
        "cwd": ".",
        "stdout": True,
        "stderr": True,
    }
    call.update(overrides)
    return call
