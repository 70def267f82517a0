"""toolCallMode = "text": tool calls a weak model wrote as JSON text become real calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime import RunSetting, parse_config, run
from runtime.engine.text_calls import parse_text_tool_calls
from runtime.errors import ConfigError
from runtime.schema.checkpoint import Checkpoint
from runtime.schema.events import PerstackEvent
from runtime.testing import Reply, ScriptedModel, reply

NATIVE = """
[experts."writer"]
instruction = "Write what you are asked to."
"""

TEXT = (
    """
[provider]
providerName = "openai"
[provider.setting]
toolCallMode = "text"
"""
    + NATIVE
)

WRITE = {"path": "a.txt", "text": "hi"}
KNOWN = {"writeTextFile", "readTextFile", "attemptCompletion"}


@pytest.fixture(autouse=True)
def _no_mode_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERSTACK_TOOL_CALL_MODE", raising=False)


async def go(
    workspace: Path, replies: list[Reply], *, toml: str = TEXT
) -> tuple[Checkpoint, list[PerstackEvent]]:
    events: list[PerstackEvent] = []
    setting = RunSetting(expert_key="writer", query="write a.txt", workspace=workspace)
    checkpoint = await run(
        setting,
        events.append,
        model=ScriptedModel(replies),
        config=parse_config(toml, path=workspace / "perstack.toml"),
    )
    return checkpoint, events


def call_json(name: str = "writeTextFile", args: Any = WRITE) -> str:
    return json.dumps({"name": name, "arguments": args})


WRITTEN_AS_TEXT = {
    "bare": call_json(),
    "fenced": f"```json\n{call_json()}\n```",
    "qwen tags": f"<tool_call>\n{call_json()}\n</tool_call>",
    "tag left open": f"<tool_call>\n{call_json()}",
    "tool/parameters": json.dumps({"tool": "writeTextFile", "parameters": WRITE}),
    "openai function": json.dumps(
        {"type": "function", "function": {"name": "writeTextFile", "arguments": json.dumps(WRITE)}}
    ),
    "list": f"[{call_json()}]",
    "tool_calls wrapper": json.dumps({"tool_calls": [{"name": "writeTextFile", "args": WRITE}]}),
}


@pytest.mark.parametrize("text", WRITTEN_AS_TEXT.values(), ids=WRITTEN_AS_TEXT.keys())
async def test_text_mode_runs_a_call_written_as_text(tmp_path: Path, text: str) -> None:
    checkpoint, events = await go(tmp_path, [reply(text), reply("Wrote a.txt.")])
    call_tools = next(e for e in events if e.type == "callTools")
    [called] = call_tools.tool_calls
    assert (called.tool_name, called.args, called.skill_name) == (
        "writeTextFile",
        WRITE,
        "@perstack/base",
    )
    assert called.id.startswith("call_")
    # The text was the call, not an answer: only the call stays in the conversation.
    assert [p.type for p in call_tools.new_message.contents] == ["toolCallPart"]
    assert (tmp_path / "a.txt").read_text() == "hi"
    assert checkpoint.status == "completed"
    assert events[-2].type == "completeRun"
    assert events[-2].text == "Wrote a.txt."


async def test_text_mode_runs_several_calls(tmp_path: Path) -> None:
    second = call_json("writeTextFile", {"path": "b.txt", "text": "ho"})
    text = f"<tool_call>\n{call_json()}\n</tool_call>\n<tool_call>\n{second}\n</tool_call>"
    _, events = await go(tmp_path, [reply(text), reply("Both written.")])
    call_tools = next(e for e in events if e.type == "callTools")
    assert [c.args["path"] for c in call_tools.tool_calls] == ["a.txt", "b.txt"]
    assert len({c.id for c in call_tools.tool_calls}) == 2
    assert (tmp_path / "b.txt").read_text() == "ho"


async def test_attempt_completion_written_as_text_asks_for_the_result(tmp_path: Path) -> None:
    checkpoint, events = await go(
        tmp_path, [reply(call_json("attemptCompletion", {})), reply("All done.")]
    )
    assert "attemptCompletion" in [e.type for e in events]
    assert checkpoint.status == "completed"
    assert events[-2].text == "All done."


async def test_native_mode_keeps_the_text_as_the_result(tmp_path: Path) -> None:
    checkpoint, events = await go(tmp_path, [reply(call_json())], toml=NATIVE)
    assert "callTools" not in [e.type for e in events]
    assert events[-2].type == "completeRun"
    assert events[-2].text == call_json()
    assert not (tmp_path / "a.txt").exists()
    assert checkpoint.status == "completed"


@pytest.mark.parametrize(
    "text",
    [
        call_json("teleport", {"to": "mars"}),
        '{"name": "writeTextFile", "arguments": {"path": "a.txt"',
        f"I will call it now:\n{call_json()}",
        f"[{call_json()}, {call_json('teleport', {})}]",
        call_json(args=["a.txt"]),
    ],
    ids=["unknown tool", "malformed JSON", "prose around", "one unknown in a list", "bad args"],
)
async def test_text_mode_leaves_other_text_alone(tmp_path: Path, text: str) -> None:
    checkpoint, events = await go(tmp_path, [reply(text)])
    assert "callTools" not in [e.type for e in events]
    assert events[-2].text == text
    assert checkpoint.status == "completed"


async def test_environment_overrides_the_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSTACK_TOOL_CALL_MODE", "native")
    _, events = await go(tmp_path, [reply(call_json())], toml=TEXT)
    assert "callTools" not in [e.type for e in events]
    monkeypatch.setenv("PERSTACK_TOOL_CALL_MODE", "text")
    _, events = await go(tmp_path, [reply(call_json()), reply("ok")], toml=NATIVE)
    assert "callTools" in [e.type for e in events]


async def test_invalid_environment_value_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSTACK_TOOL_CALL_MODE", "json")
    with pytest.raises(ConfigError, match="PERSTACK_TOOL_CALL_MODE must be native or text"):
        await go(tmp_path, [reply("x")])


def test_parser_accepts_missing_or_null_arguments() -> None:
    for text in ('{"name": "attemptCompletion"}', '{"name": "attemptCompletion", "input": null}'):
        [chunk] = parse_text_tool_calls(text, KNOWN) or []
        assert (chunk.name, chunk.arguments) == ("attemptCompletion", "{}")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Hello",
        "{}",
        "[]",
        "42",
        '{"name": "readTextFile", "arguments": {}, "extra": 1}',
        '{"name": "readTextFile", "tool": "writeTextFile", "arguments": {}}',
        '{"name": "readTextFile", "arguments": "{not json"}',
        '<tool_call>{"name": "readTextFile", "arguments": {}}</tool_call> and more',
    ],
)
def test_parser_rejects(text: str) -> None:
    assert parse_text_tool_calls(text, KNOWN) is None
