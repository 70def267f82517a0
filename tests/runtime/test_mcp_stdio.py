"""MCP skills over stdio with real server processes (§1.4, §5.9, §5.10): the base skill
server and the third-party ``mcp-server-time`` starting concurrently in a run, and the
results, errors, content types and environment of ``tests/mcp_servers/toy_server.py``.
Nothing here is mocked."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from runtime.config.env import SAFE_ENV_NAMES
from runtime.schema.events import SkillConnected, SkillStarting
from runtime.schema.messages import FileInlinePart, ImageInlinePart, TextPart
from runtime.skills.mcp import McpSkill
from runtime.testing import calls, reply
from tests.runtime.mcp_skill_helpers import (
    BASE,
    PY,
    direct_runtime,
    go,
    index_of,
    results,
    skill_events,
    toy,
)


async def test_base_server_and_mcp_server_time_start_concurrently_in_a_run(tmp_path: Path) -> None:
    toml = f"""
model = "scripted"
perstackBaseSkillCommand = [{json.dumps(PY)}, "-m", "runtime.skills.base_server"]

[experts."agent"]
instruction = "Keep time."
{BASE}omit = ["exec"]

[experts."agent".skills."time"]
type = "mcpStdioSkill"
command = {json.dumps(PY)}
args = ["-m", "mcp_server_time", "--local-timezone", "UTC"]
pick = ["get_current_time"]
lazyInit = true
"""
    checkpoint, events, model = await go(
        tmp_path,
        toml,
        [
            calls(
                ("writeTextFile", {"path": "notes/t.txt", "text": "tick"}),
                ("get_current_time", {"timezone": "UTC"}),
            ),
            reply("done"),
        ],
    )
    assert checkpoint.status == "completed"
    assert (tmp_path / "notes" / "t.txt").read_text() == "tick"
    offered = {tool.name for tool in model.requests[0].tools}
    assert {"writeTextFile", "get_current_time"} <= offered
    assert "exec" not in offered and "convert_time" not in offered
    # Both servers were spawned before either finished starting: they start concurrently.
    starting = [e for e in events if isinstance(e, SkillStarting)]
    assert {e.skill_name for e in starting} == {"@perstack/base", "time"}
    first_connected = index_of(events, "skillConnected")
    assert all(events.index(e) < first_connected for e in starting)
    base_start = next(e for e in starting if e.skill_name == "@perstack/base")
    assert (base_start.command, base_start.args) == (PY, ["-m", "runtime.skills.base_server"])
    connected = {e.skill_name: e for e in events if isinstance(e, SkillConnected)}
    assert connected["@perstack/base"].server_info is not None
    assert connected["@perstack/base"].server_info.name == "@perstack/base"
    assert connected["time"].server_info is not None
    assert connected["time"].server_info.name == "mcp-time"
    for event in connected.values():
        assert event.spawn_duration_ms is not None and event.handshake_duration_ms is not None
        assert event.tool_discovery_duration_ms is not None and event.total_duration_ms is not None
        assert event.connect_duration_ms == event.spawn_duration_ms + event.handshake_duration_ms
        assert event.total_duration_ms >= event.connect_duration_ms
    found = {tool: (text, error) for tool, text, error in results(events)}
    assert found["get_current_time"][1] is False
    assert json.loads(found["get_current_time"][0])["timezone"] == "UTC"
    assert found["writeTextFile"][1] is False
    # Skills are closed after the run ended, each once.
    complete = index_of(events, "completeRun")
    for name in ("@perstack/base", "time"):
        assert skill_events(events, name).count("skillDisconnected") == 1
        assert index_of(events, "skillDisconnected", name) > complete
    assert checkpoint.status == "completed"


async def test_tool_results_errors_and_content_from_a_real_server(tmp_path: Path) -> None:
    runtime, events = direct_runtime(
        tmp_path, {"SECRET_TOKEN": "s3cret", "NEEDED": "yes", "HOME": "/home/someone"}
    )
    skill = McpSkill("toy", toy(required_env=["NEEDED", "PYTHONPATH"]), runtime)
    async with asyncio.timeout(20):
        await skill.start()
        try:
            assert {"echo", "mixed", "environment", "fail"} <= {t.name for t in skill.tools()}
            echo = await skill.call("echo", {"text": "hi"})
            assert echo.contents[0] == TextPart(id=echo.contents[0].id, text="hi")
            assert not echo.is_error
            failed = await skill.call("fail", {"message": "nope"})
            assert failed.is_error and failed.contents[0].text == "nope"  # type: ignore[union-attr]
            protocol = await skill.call("protocol_error", {})
            assert protocol.is_error
            assert protocol.contents[0].text == (  # type: ignore[union-attr]
                "Error calling tool protocol_error: the arguments are not acceptable"
            )
            mixed = await skill.call("mixed", {})
            kinds = [type(p).__name__ for p in mixed.contents]
            assert kinds == [
                "TextPart",
                "TextPart",
                "ImageInlinePart",
                "TextPart",
                "FileInlinePart",
            ]
            image = mixed.contents[2]
            assert isinstance(image, ImageInlinePart) and image.mime_type == "image/png"
            pdf = mixed.contents[4]
            assert isinstance(pdf, FileInlinePart) and pdf.mime_type == "application/pdf"
            empty = await skill.call("empty", {"flag": True})
            assert empty.contents[0].text == (  # type: ignore[union-attr]
                'Tool empty returned nothing with arguments: {"flag":true}'
            )
            structured = await skill.call("structured", {})
            assert json.loads(structured.contents[0].text) == {"answer": 42}  # type: ignore[union-attr]
            # Only the safe variables and requiredEnv reach the server (§5.10); PYTHONPATH is
            # protected and never passed. LC_CTYPE may be added by Python itself (PEP 538).
            env_text = (await skill.call("environment", {})).contents[0].text  # type: ignore[union-attr]
            child_env = json.loads(env_text)
            assert child_env["NEEDED"] == "yes"
            assert child_env["HOME"] == "/home/someone"
            assert "SECRET_TOKEN" not in child_env and "PYTHONPATH" not in child_env
            assert set(child_env) <= {*SAFE_ENV_NAMES, "NEEDED", "LC_CTYPE"}
            cwd = (await skill.call("whereami", {})).contents[0].text  # type: ignore[union-attr]
            assert cwd == str(tmp_path)  # pytest hands out resolved paths
        finally:
            await skill.close()
    assert [e.type for e in events if e.type != "skillStderr"] == [
        "skillStarting",
        "skillConnected",
        "skillDisconnected",
    ]
    after = await skill.call("echo", {"text": "closed"})
    assert after.is_error
