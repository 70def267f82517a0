"""The base skill served over MCP stdio, driven by the mcp 2.x client as a real subprocess."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import mcp_types as types
from mcp import Client, StdioServerParameters, stdio_client

from runtime.skills.base import BaseSkill
from runtime.skills.base_server import build_server, main

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30  # seconds; a cold interpreter start plus imports, with room for a slow CI machine


@asynccontextmanager
async def served(workspace: Path, errlog: Path) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "runtime.skills.base_server", "--workspace", str(workspace)],
        cwd=ROOT,
    )
    # The server's stderr goes to a file so the test output stays clean and can be inspected.
    with errlog.open("w", encoding="utf-8") as log:
        async with Client(stdio_client(params, errlog=log)) as client:
            yield client


def text(result: types.CallToolResult) -> str:
    [block] = result.content
    assert isinstance(block, types.TextContent)
    return block.text


async def test_serves_the_base_tools_over_stdio(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    errlog = tmp_path / "server.log"
    async with asyncio.timeout(TIMEOUT), served(workspace, errlog) as client:
        assert client.server_info is not None
        assert client.server_info.name == "@perstack/base"

        listed = await client.list_tools()
        assert len(listed.tools) == 17
        schemas = {tool.name: tool.input_schema for tool in listed.tools}
        expected = {d.name: d.input_schema for d in BaseSkill(workspace).tools()}
        assert schemas == expected

        written = await client.call_tool(
            "writeTextFile", {"path": "notes/hello.txt", "text": "hello\nworld"}
        )
        assert not written.is_error
        real = workspace.resolve()
        assert json.loads(text(written)) == {
            "path": str(real / "notes/hello.txt"),
            "text": "hello\nworld",
        }
        assert (workspace / "notes/hello.txt").read_text(encoding="utf-8") == "hello\nworld"

        read = await client.call_tool("readTextFile", {"path": "notes/hello.txt", "from": 1})
        assert not read.is_error
        assert json.loads(text(read)) == {
            "path": str(real / "notes/hello.txt"),
            "content": "world",
            "from": 1,
            "to": 2,
        }

        escaped = await client.call_tool("readTextFile", {"path": "../../etc/passwd"})
        assert escaped.is_error
        error = json.loads(text(escaped))
        assert error["error"] == "Error"
        assert error["message"].startswith("Access denied - path outside allowed directories")

        invalid = await client.call_tool("writeTextFile", {"path": "x.txt"})
        assert invalid.is_error
        assert '"text" is required' in json.loads(text(invalid))["message"]

        done = await client.call_tool("attemptCompletion", {})
        assert (done.is_error, text(done)) == (False, "{}")


async def test_in_process_server_matches_the_skill(tmp_path: Path) -> None:
    skill = BaseSkill(tmp_path)
    async with asyncio.timeout(TIMEOUT), Client(build_server(skill)) as client:
        todo = await client.call_tool("todo", {"newTodos": ["a"]})
        assert json.loads(text(todo)) == {"todos": [{"id": 0, "title": "a", "completed": False}]}
        remaining = await client.call_tool("attemptCompletion", {})
        assert json.loads(text(remaining))["remainingTodos"][0]["title"] == "a"
    # The server delegates to this very instance: the todo list is the skill's.
    assert not (await skill.call("attemptCompletion", {})).is_error
    await skill.close()


def test_main_refuses_a_missing_workspace(tmp_path: Path) -> None:
    assert main(["--workspace", str(tmp_path / "missing")]) == 2
