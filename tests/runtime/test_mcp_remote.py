"""Remote MCP skills over legacy SSE and streamable HTTP (§1.4): endpoint rules at load
and connect time, and the toy server of tests/mcp_servers served on loopback ports in a
real run, with headers taking variables from the environment."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import parse_config
from runtime.config.schema import McpSseSkill
from runtime.errors import ConfigError, SkillError
from runtime.schema.events import SkillConnected
from runtime.skills.mcp import McpSkill
from runtime.testing import calls, reply
from tests.runtime.mcp_skill_helpers import BASE, PY, TOY, direct_runtime, go, results, skill_events


def test_sse_endpoint_must_be_public_https_or_loopback(tmp_path: Path) -> None:
    def toml(endpoint: str) -> str:
        return f"""
[experts."agent"]
instruction = "x"
[experts."agent".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
[experts."agent".skills."remote"]
type = "mcpSseSkill"
endpoint = "{endpoint}"
"""

    for bad in ("http://example.com/sse", "https://10.0.0.8/sse", "https://192.168.1.2/sse"):
        with pytest.raises(ConfigError, match="SSE endpoint must be a public HTTPS URL"):
            parse_config(toml(bad))
    for good in ("https://example.com/sse", "http://127.0.0.1:9/sse", "http://localhost:9/sse"):
        parse_config(toml(good))


async def test_endpoint_is_checked_again_at_connect_time(tmp_path: Path) -> None:
    runtime, events = direct_runtime(tmp_path)
    # Built without validation, as a config from another source could be.
    config = McpSseSkill.model_construct(type="mcpSseSkill", endpoint="http://example.com/sse")
    skill = McpSkill("remote", config, runtime)
    with pytest.raises(SkillError, match="must be a public HTTPS URL"):
        await skill.start()
    await skill.close()
    assert events == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def http_servers() -> Iterator[dict[str, int]]:
    """The toy server over legacy SSE and over streamable HTTP, on loopback ports."""
    ports = {"sse": _free_port(), "streamable-http": _free_port()}
    processes = [
        subprocess.Popen(
            [PY, TOY, "--transport", transport, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for transport, port in ports.items()
    ]
    try:
        deadline = time.monotonic() + 20
        for port in ports.values():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        yield ports
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)


async def test_sse_and_streamable_http_servers_in_a_run(
    tmp_path: Path, http_servers: dict[str, int]
) -> None:
    (tmp_path / ".env").write_text("API_TOKEN=abc123\n")
    toml = f"""
model = "scripted"
[experts."agent"]
instruction = "x"
{BASE}
[experts."agent".skills."legacy"]
type = "mcpSseSkill"
endpoint = "http://127.0.0.1:{http_servers["sse"]}/sse"
pick = ["echo"]

[experts."agent".skills."modern"]
type = "mcpStreamableHttpSkill"
endpoint = "http://127.0.0.1:{http_servers["streamable-http"]}/mcp"
headers = {{ Authorization = "Bearer ${{API_TOKEN}}" }}
pick = ["header", "fail"]
"""
    checkpoint, events, _ = await go(
        tmp_path,
        toml,
        [
            calls(
                ("echo", {"text": "over sse"}),
                ("header", {"name": "Authorization"}),
                ("fail", {"message": "bad input"}),
            ),
            reply("done"),
        ],
    )
    assert checkpoint.status == "completed"
    assert results(events) == [
        ("echo", "over sse", False),
        ("header", "Bearer abc123", False),
        ("fail", "bad input", True),
    ]
    for name in ("legacy", "modern"):
        assert skill_events(events, name) == ["skillConnected", "skillDisconnected"]
        connected = next(
            e for e in events if isinstance(e, SkillConnected) and e.skill_name == name
        )
        assert connected.spawn_duration_ms is None  # nothing is spawned for a remote server
        assert connected.server_info is not None and connected.server_info.version == "9.9.9"


async def test_header_variable_must_be_set(tmp_path: Path) -> None:
    toml = f"""
[experts."agent"]
instruction = "x"
{BASE}
[experts."agent".skills."modern"]
type = "mcpStreamableHttpSkill"
endpoint = "http://127.0.0.1:9/mcp"
headers = {{ Authorization = "Bearer ${{PERSTACK_TEST_UNSET_TOKEN}}" }}
"""
    with pytest.raises(SkillError, match="PERSTACK_TEST_UNSET_TOKEN"):
        await go(tmp_path, toml, [reply("never")])
