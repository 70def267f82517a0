"""MCP skills with real server processes: stdio, SSE and streamable HTTP (§1.4, §1.5, §5.9, §5.10).

Servers used: the project's base skill served over stdio (``perstackBaseSkillCommand``), the
third-party ``mcp-server-time`` from PyPI, and ``tests/mcp_servers/toy_server.py`` (crash, hang,
isError, every content type, env echo) over all three transports. Nothing here is mocked.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest

from runtime import RunSetting, parse_config, run
from runtime.config.env import SAFE_ENV_NAMES
from runtime.config.schema import McpSseSkill, McpStdioSkill
from runtime.engine.context import JobContext
from runtime.engine.skillset import open_skills
from runtime.errors import ConfigError, SkillError
from runtime.schema.checkpoint import Checkpoint, Job
from runtime.schema.events import (
    PerstackEvent,
    ResolveToolResults,
    SkillConnected,
    SkillDisconnected,
    SkillStarting,
    SkillStderr,
    now_ms,
)
from runtime.schema.messages import FileInlinePart, ImageInlinePart, TextPart
from runtime.skills.lockfile import LockedExpert, LockedTool, Lockfile, skill_definition_hash
from runtime.skills.mcp import (
    McpSkill,
    OutputLimits,
    SkillRuntime,
    convert_result,
    is_bundled_base,
    limit_result,
    stdio_launch,
)
from runtime.skills.mcp import skill as mcp_skill_module
from runtime.skills.types import ToolOutcome
from runtime.testing import Reply, ScriptedModel, call, calls, reply

PY = sys.executable
TOY = str(Path(__file__).resolve().parents[1] / "mcp_servers" / "toy_server.py")


# Helpers ---------------------------------------------------------------------------------------


async def go(
    workspace: Path, toml: str, replies: list[Reply], *, expert: str = "agent", **overrides: Any
) -> tuple[Checkpoint, list[PerstackEvent], ScriptedModel]:
    events: list[PerstackEvent] = []
    model = ScriptedModel(replies)
    setting = RunSetting(
        expert_key=expert, query="go", workspace=workspace, retry_base_delay_ms=0, **overrides
    )
    async with asyncio.timeout(30):
        checkpoint = await run(
            setting,
            events.append,
            model=model,
            config=parse_config(toml, path=workspace / "perstack.toml"),
        )
    return checkpoint, events, model


def skill_events(events: list[PerstackEvent], skill: str) -> list[str]:
    return [e.type for e in events if getattr(e, "skill_name", None) == skill]


def results(events: list[PerstackEvent]) -> list[tuple[str, str, bool]]:
    """(tool, text, is_error) for every tool result, in order."""
    found = []
    for event in events:
        if isinstance(event, ResolveToolResults):
            for result in event.tool_results:
                text = "".join(p.text for p in result.result if isinstance(p, TextPart))
                found.append((result.tool_name, text, bool(result.is_error)))
    return found


def index_of(events: list[PerstackEvent], kind: str, skill: str | None = None) -> int:
    for position, event in enumerate(events):
        if event.type == kind and (skill is None or getattr(event, "skill_name", None) == skill):
            return position
    raise AssertionError(f"no {kind} event for {skill}")


def direct_runtime(
    workspace: Path, env: dict[str, str] | None = None, *, verbose: bool = False
) -> tuple[SkillRuntime, list[PerstackEvent]]:
    events: list[PerstackEvent] = []
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    runtime = SkillRuntime(
        env={**base_env, **(env or {})},
        workspace=workspace,
        publish=events.append,
        job_id="job",
        run_id="run",
        verbose=verbose,
    )
    return runtime, events


def toy(*extra: str, **fields: Any) -> McpStdioSkill:
    return McpStdioSkill(type="mcpStdioSkill", command=PY, args=[TOY, *extra], **fields)


def toy_table(expert: str, name: str, *lines: str) -> str:
    body = "\n".join(lines)
    return f"""
[experts."{expert}".skills."{name}"]
type = "mcpStdioSkill"
command = {json.dumps(PY)}
args = [{json.dumps(TOY)}]
{body}
"""


BASE = """
[experts."agent".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
"""


# Launch rules ----------------------------------------------------------------------------------


def test_package_name_and_args_rules() -> None:
    both = McpStdioSkill(type="mcpStdioSkill", command="npx", package_name="x", args=["y"])
    with pytest.raises(SkillError, match="Skill gh has both packageName and args"):
        stdio_launch("gh", both)
    neither = McpStdioSkill(type="mcpStdioSkill", command="npx")
    with pytest.raises(SkillError, match="Skill gh has no packageName or args"):
        stdio_launch("gh", neither)
    package = McpStdioSkill(type="mcpStdioSkill", command="npx", package_name="@org/server")
    assert stdio_launch("gh", package) == ("npx", ["-y", "@org/server"])
    already = McpStdioSkill(type="mcpStdioSkill", command="npx", args=["-y", "pkg", "--flag"])
    assert stdio_launch("gh", already) == ("npx", ["-y", "pkg", "--flag"])
    uvx = McpStdioSkill(type="mcpStdioSkill", command="uvx", package_name="mcp-server-time")
    assert stdio_launch("time", uvx) == ("uvx", ["mcp-server-time"])


def test_base_skill_transport_choice() -> None:
    unpinned = McpStdioSkill(type="mcpStdioSkill", command="npx", package_name="@perstack/base")
    pinned = McpStdioSkill(
        type="mcpStdioSkill", command="npx", args=["-y", "@perstack/base@0.0.34"]
    )
    assert is_bundled_base("@perstack/base", unpinned, None)
    assert not is_bundled_base("@perstack/base", pinned, None)
    assert stdio_launch("@perstack/base", pinned) == ("npx", ["-y", "@perstack/base@0.0.34"])
    override = [PY, "-m", "runtime.skills.base_server"]
    assert not is_bundled_base("@perstack/base", unpinned, override)
    # Any npx skill whose package is @perstack/base runs the override command (§1.5).
    assert stdio_launch("files", unpinned, override) == (PY, ["-m", "runtime.skills.base_server"])
    assert stdio_launch("@perstack/base", pinned, override)[0] == PY
    other = McpStdioSkill(type="mcpStdioSkill", command="npx", package_name="@org/other")
    assert stdio_launch("x", other, override) == ("npx", ["-y", "@org/other"])


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


# Result conversion (§5.9) ----------------------------------------------------------------------


def test_convert_result_rules() -> None:
    png = "iVBORw0KGgo="
    result = types.CallToolResult(
        content=[
            types.TextContent(text="a"),
            types.TextContent(text=""),
            types.ImageContent(data=png, mime_type="image/png"),
            types.EmbeddedResource(resource=types.TextResourceContents(uri="x:a", text="doc")),
            types.EmbeddedResource(
                resource=types.BlobResourceContents(
                    uri="x:b", blob=png, mime_type="application/pdf"
                )
            ),
            types.AudioContent(data=png, mime_type="audio/wav"),
            types.ResourceLink(uri="x:c", name="c"),
        ]
    )
    outcome = convert_result("t", {}, result)
    assert not outcome.is_error
    assert [type(p) for p in outcome.contents] == [
        TextPart,
        TextPart,
        ImageInlinePart,
        TextPart,
        FileInlinePart,
    ]
    texts = [p.text for p in outcome.contents if isinstance(p, TextPart)]
    assert texts == ["a", "Error: No content", "doc"]
    empty = convert_result("lookup", {"q": "é", "n": 1}, types.CallToolResult(content=[]))
    assert empty.contents[0] == TextPart(
        id=empty.contents[0].id, text='Tool lookup returned nothing with arguments: {"q":"é","n":1}'
    )
    flagged = convert_result("t", {}, types.CallToolResult(content=[], is_error=True))
    assert flagged.is_error


# Real servers over stdio -----------------------------------------------------------------------


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


async def test_crashed_and_hung_servers_become_error_results_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(mcp_skill_module, "DEFAULT_CALL_TIMEOUT_S", 1.0)
    toml = (
        'model = "scripted"\n[experts."agent"]\ninstruction = "x"\n'
        + BASE
        + toy_table("agent", "crasher", 'pick = ["crash", "echo"]')
        + toy_table("agent", "hanger", 'pick = ["hang", "shout"]')
    )
    started = time.perf_counter()
    checkpoint, events, _ = await go(
        tmp_path,
        toml,
        [
            call("crash"),
            call("echo", text="still there?"),
            call("hang"),
            call("shout", text="hello"),
            reply("I could not use those tools."),
        ],
    )
    assert time.perf_counter() - started < 15
    assert checkpoint.status == "completed"
    tool_results = results(events)
    assert [(tool, error) for tool, _, error in tool_results] == [
        ("crash", True),
        ("echo", True),
        ("hang", True),
        ("shout", True),
    ]
    assert "exited with code 3" in tool_results[0][1]
    assert "crasher" in tool_results[1][1] and "not available" in tool_results[1][1]
    assert "did not answer within 1 s" in tool_results[2][1]
    assert "not available" in tool_results[3][1]
    crash = [e for e in events if isinstance(e, SkillDisconnected) and e.skill_name == "crasher"]
    hang = [e for e in events if isinstance(e, SkillDisconnected) and e.skill_name == "hanger"]
    assert len(crash) == 1 and crash[0].reason == "the server process exited with code 3"
    assert len(hang) == 1 and hang[0].reason is not None and "did not answer" in hang[0].reason
    # Both were reported while the run was still going, not at shutdown.
    assert events.index(crash[0]) < index_of(events, "completeRun")
    assert events.index(hang[0]) < index_of(events, "completeRun")
    stderr = [e.message for e in events if isinstance(e, SkillStderr)]
    assert "about to crash" in stderr
    # The children's stderr went to events only, never to our terminal.
    assert "about to crash" not in capfd.readouterr().err


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


async def test_missing_required_env_names_skill_and_variable(tmp_path: Path) -> None:
    runtime, events = direct_runtime(tmp_path)
    skill = McpSkill("github", toy(required_env=["GITHUB_TOKEN"]), runtime)
    with pytest.raises(
        SkillError, match='Skill "github" requires environment variable GITHUB_TOKEN'
    ):
        await skill.start()
    await skill.close()
    assert events == []  # nothing was spawned


async def test_nonexistent_command_fails_the_run_after_skill_starting(tmp_path: Path) -> None:
    toml = (
        'model = "scripted"\n[experts."agent"]\ninstruction = "x"\n'
        + BASE
        + """
[experts."agent".skills."ghost"]
type = "mcpStdioSkill"
command = "perstack-no-such-command"
args = ["--serve"]
"""
    )
    events: list[PerstackEvent] = []
    with pytest.raises(SkillError) as raised:
        await run(
            RunSetting(expert_key="agent", query="go", workspace=tmp_path),
            events.append,
            model=ScriptedModel([reply("never")]),
            config=parse_config(toml, path=tmp_path / "perstack.toml"),
        )
    message = str(raised.value)
    assert '"ghost"' in message and "perstack-no-such-command" in message
    assert raised.value.title == "Skill command not found"
    starting = [e for e in events if isinstance(e, SkillStarting)]
    assert [(e.skill_name, e.command, e.args) for e in starting] == [
        ("ghost", "perstack-no-such-command", ["--serve"])
    ]
    assert "startRun" not in [e.type for e in events]


async def test_server_that_exits_before_the_handshake(tmp_path: Path) -> None:
    runtime, events = direct_runtime(tmp_path)
    skill = McpSkill("broken", toy("--exit-before-handshake", "4"), runtime)
    with pytest.raises(SkillError) as raised:
        async with asyncio.timeout(20):
            await skill.start()
    await skill.close()
    message = str(raised.value)
    assert 'Skill "broken" exited with code 4 before completing the MCP handshake' in message
    assert "toy server: refusing to start" in message  # the stderr tail explains why
    assert [e.type for e in events if e.type != "skillStderr"] == ["skillStarting"]
    # A skill that failed to start answers calls with an error instead of retrying.
    assert (await skill.call("echo", {"text": "x"})).is_error


async def test_verbose_echoes_server_stderr(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    runtime, events = direct_runtime(tmp_path, verbose=True)
    skill = McpSkill("loud", toy(), runtime)
    async with asyncio.timeout(20):
        await skill.start()
        await skill.call("shout", {"text": "from the server"})
        await skill.close()
    err = capfd.readouterr().err
    assert "[loud] from the server" in err
    assert "from the server" in [e.message for e in events if isinstance(e, SkillStderr)]


# Remote servers --------------------------------------------------------------------------------


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


# Lifecycle in the run's task ---------------------------------------------------------------------


def job_context(workspace: Path, events: list[PerstackEvent]) -> JobContext:
    return JobContext(
        job=Job(id="job", status="running", coordinator_expert_key="agent", started_at=now_ms()),
        model=ScriptedModel([]),
        workspace=workspace,
        max_steps=10,
        max_retries=0,
        timeout_ms=60_000,
        reasoning_budget="low",
        retry_base_delay_ms=0,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        storage=None,
        listener=events.append,
    )


def processes_with(marker: str) -> list[int]:
    """Live processes whose command line contains ``marker`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().split(") ", 1)[1][:1]
        except OSError:
            continue
        if marker in command and state != "Z":
            found.append(int(entry.name))
    return found


async def test_cancelling_the_run_task_stops_every_server(tmp_path: Path) -> None:
    events: list[PerstackEvent] = []
    job = job_context(tmp_path, events)
    skills: dict[str, Any] = {
        "a": toy(pick=["echo"]),
        "b": toy(pick=["shout"]),
    }
    opened = asyncio.Event()
    found: dict[str, McpSkill] = {}

    async def run_task() -> None:
        async with AsyncExitStack() as stack:
            index = await open_skills(job, stack, skills, run_id="run", coordinator=True)
            for skill, _ in index.values():
                assert isinstance(skill, McpSkill)
                found[skill.name] = skill
            opened.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(run_task())
    async with asyncio.timeout(20):
        await opened.wait()
    pids = [skill.pid for skill in found.values()]
    assert len(pids) == 2 and all(pids)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for pid in pids:
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert sorted(e.skill_name for e in events if isinstance(e, SkillDisconnected)) == ["a", "b"]


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc")
async def test_a_failed_start_stops_the_servers_that_were_starting(tmp_path: Path) -> None:
    marker = f"marker-{os.getpid()}-{time.monotonic_ns()}"
    events: list[PerstackEvent] = []
    job = job_context(tmp_path, events)
    skills: dict[str, Any] = {
        "good": toy("--name", marker),
        # Fails once Python is up, while "good" is still starting (or just started).
        "broken": toy("--exit-before-handshake", "5"),
    }
    with pytest.raises(SkillError, match="exited with code 5"):
        async with asyncio.timeout(20), AsyncExitStack() as stack:
            await open_skills(job, stack, skills, run_id="run", coordinator=True)
    assert processes_with(marker) == []
    # Whether or not "good" had connected when "broken" failed, it was closed.
    connected = {e.skill_name for e in events if isinstance(e, SkillConnected)}
    disconnected = {e.skill_name for e in events if isinstance(e, SkillDisconnected)}
    assert connected == disconnected


# Output limits ---------------------------------------------------------------------------------


def text_of(outcome: ToolOutcome) -> str:
    return "".join(p.text for p in outcome.contents if isinstance(p, TextPart))


def stderr_messages(events: list[PerstackEvent], skill: str) -> list[str]:
    return [e.message for e in events if isinstance(e, SkillStderr) and e.skill_name == skill]


class Recorder:
    """Collects a skill runtime's events and wakes whoever waits for one."""

    def __init__(self) -> None:
        self.events: list[PerstackEvent] = []
        self._arrived = asyncio.Event()

    def publish(self, event: PerstackEvent) -> None:
        self.events.append(event)
        self._arrived.set()

    async def stderr_containing(self, skill: str, marker: str) -> list[str]:
        """The skill's stored stderr once a message containing ``marker`` has arrived.

        A tool that writes stderr can answer before the last chunk of its pipe has been read.
        """
        async with asyncio.timeout(10):
            while not any(marker in m for m in stderr_messages(self.events, skill)):
                self._arrived.clear()
                await self._arrived.wait()
        return stderr_messages(self.events, skill)


def test_limit_result_cuts_text_drops_binary_and_says_so() -> None:
    png = base64.b64encode(b"\x89PNG" + b"\0" * 596).decode()  # 600 bytes decoded
    image = ImageInlinePart(encoded_data=png, mime_type="image/png")
    pdf = FileInlinePart(encoded_data=png, mime_type="application/pdf")
    limits = OutputLimits(result_chars=10, result_binary_bytes=1300)
    small = ToolOutcome(contents=[TextPart(text="0123456789"), image, image])
    assert limit_result(small, limits, "s") is small  # within the limits: untouched
    outcome = ToolOutcome(
        contents=[TextPart(text="abcdef"), image, TextPart(text="ghijkl"), image, pdf, image],
        is_error=True,
    )
    limited = limit_result(outcome, limits, "files")
    assert limited.is_error
    assert [type(p).__name__ for p in limited.contents] == [
        "TextPart",
        "ImageInlinePart",
        "TextPart",
        "ImageInlinePart",
        "TextPart",
    ]
    assert [p.text for p in limited.contents if isinstance(p, TextPart)][:2] == ["abcdef", "ghij"]
    # The cut part keeps its id: it is the same part, shorter.
    assert limited.contents[2].id == outcome.contents[2].id
    note = limited.contents[-1]
    assert isinstance(note, TextPart)
    assert note.text.splitlines() == [
        '[truncated: 12 characters, showing the first 10; raise maxResultChars on skill "files" '
        "to see more]",
        "[omitted: 2 images or files (application/pdf, image/png, 1,200 bytes), over the limit "
        "of 1,300 bytes of images and files per result; raise maxResultBinaryBytes on skill "
        '"files" to receive them]',
    ]
    many = ToolOutcome(contents=[TextPart(text="x") for _ in range(1005)])
    bounded = limit_result(many, OutputLimits(), "chatty")
    assert len(bounded.contents) == 1001
    assert bounded.contents[-1].text == (  # type: ignore[union-attr]
        "[omitted: 5 more content parts; at most 1,000 parts of a result are shown]"
    )


def test_stderr_is_split_at_line_ends_long_lines_are_cut_and_the_total_is_bounded(
    tmp_path: Path,
) -> None:
    runtime, events = direct_runtime(tmp_path)
    limits = OutputLimits(stderr_bytes=200, stderr_message_bytes=30)
    skill = McpSkill("noisy", toy(), runtime, limits=limits)
    # One chunk as the pipe delivers it: short lines, then a line longer than a message.
    skill._on_stderr("line one\nline two\nline three\nline four\n" + "x" * 50 + "\nafter\n")
    # 175 bytes stored so far (markers count); of 28 more, the 25 bytes left of the total fit.
    skill._on_stderr("é" * 14)
    skill._on_stderr("never stored")
    assert stderr_messages(events, "noisy") == [
        "line one\nline two\nline three",
        "line four",
        "x" * 30 + " [... 20 more bytes of this line not stored; raise maxStderrMessageBytes on "
        'skill "noisy" to keep more]',
        "after",
        "é" * 12,
        '[stderr truncated: skill "noisy" wrote more than 200 bytes of stderr in this run; the '
        'rest is not stored. Raise maxStderrBytes on skill "noisy" to keep more]',
    ]


def test_limit_keys_are_known_validated_and_leave_the_lockfile_entry_alone() -> None:
    toml = f"""
[experts."agent"]
instruction = "x"
{BASE}
[experts."agent".skills."toy"]
type = "mcpStdioSkill"
command = "python"
args = ["server.py"]
maxResultChars = 5000
maxResultBinaryBytes = 100000
maxStderrBytes = 20000
maxStderrMessageBytes = 1000

[experts."agent".skills."remote"]
type = "mcpSseSkill"
endpoint = "https://example.com/sse"
maxResultChars = 5000
maxStderrBytes = 20000
"""
    loaded = parse_config(toml)
    assert [str(w) for w in loaded.warnings] == [
        'perstack.toml:23 experts."agent".skills."remote".maxStderrBytes: unknown key (ignored; '
        "maxStderrBytes applies to mcpStdioSkill skills only)"
    ]
    skills = loaded.config.experts["agent"].skills
    stdio, remote = skills["toy"], skills["remote"]
    assert isinstance(stdio, McpStdioSkill) and isinstance(remote, McpSseSkill)
    assert OutputLimits.of(stdio) == OutputLimits(5000, 100_000, 20_000, 1000)
    assert OutputLimits.of(remote) == OutputLimits(result_chars=5000)
    for bad in ("0", '"big"', "1.5"):
        with pytest.raises(ConfigError, match="maxResultChars"):
            parse_config(toml.replace("maxResultChars = 5000", f"maxResultChars = {bad}", 1))
    # Limits decide neither the server nor its tools: perstack.lock stays valid when they change.
    plain = McpStdioSkill(type="mcpStdioSkill", command="python", args=["server.py"])
    assert skill_definition_hash("toy", stdio) == skill_definition_hash("toy", plain)


async def test_default_limits_and_raising_them_per_skill(tmp_path: Path) -> None:
    recorder = Recorder()
    runtime = dataclasses.replace(direct_runtime(tmp_path)[0], publish=recorder.publish)
    default = McpSkill("toy", toy(), runtime)
    raised = McpSkill("roomy", toy(max_result_chars=200_000, max_stderr_bytes=300_000), runtime)
    small = McpSkill("tight", toy(max_stderr_bytes=50_000), runtime)
    async with asyncio.timeout(30):
        try:
            await asyncio.gather(default.start(), raised.start(), small.start())
            capped = await default.call("big", {"size": 150_000, "parts": 3})
            assert len(capped.contents) == 3  # two whole parts of 50,000, then the note
            assert text_of(capped).endswith(
                "0123456789[truncated: 150,000 characters, showing the first 100,000; raise "
                'maxResultChars on skill "toy" to see more]'
            )
            whole = await raised.call("big", {"size": 150_000, "parts": 3})
            assert len(text_of(whole)) == 150_000 and len(whole.contents) == 3
            # 6 MiB of images: the default 5 MiB keeps the first two of three.
            images = await default.call("images", {"count": 3, "size": 2 * 1024 * 1024})
            kinds = [type(p).__name__ for p in images.contents]
            assert kinds == ["ImageInlinePart", "ImageInlinePart", "TextPart", "TextPart"]
            assert "[omitted: 1 image or file (image/png, 2,097,152 bytes)" in text_of(images)
            # 200 kB of stderr: stored in full under the default 1 MiB, in events of at most
            # 16 KiB split at line ends; a skill with a smaller total gets one notice.
            for skill in (default, raised, small):
                assert text_of(await skill.call("spew", {"size": 200_000})) == "spewed"
            stored = await recorder.stderr_containing("tight", "[stderr truncated")
            notice = (
                '[stderr truncated: skill "tight" wrote more than 50,000 bytes of stderr in this '
                'run; the rest is not stored. Raise maxStderrBytes on skill "tight" to keep more]'
            )
            assert stored[-1] == notice
            assert sum(len(m.encode()) for m in stored[:-1]) <= 50_000
            # stderr is one pipe, read in order: once "the end" is stored, so is the spew.
            await default.call("shout", {"text": "the end"})
            await raised.call("shout", {"text": "the end"})
            for name in ("toy", "roomy"):
                messages = await recorder.stderr_containing(name, "the end")
                lines = "\n".join(messages).splitlines()
                assert lines.count("e" * 999) == 200
                assert all(len(m.encode()) <= 16 * 1024 for m in messages)
        finally:
            await asyncio.gather(default.close(), raised.close(), small.close())


async def test_huge_results_and_stderr_stay_small_in_events_and_storage(tmp_path: Path) -> None:
    toml = (
        'model = "scripted"\n[experts."agent"]\ninstruction = "x"\n'
        + BASE
        + toy_table(
            "agent",
            "toy",
            "maxResultChars = 20000",
            "maxResultBinaryBytes = 50000",
            "maxStderrBytes = 65536",
            "maxStderrMessageBytes = 4096",
        )
    )
    five_mb = 5_000_000
    checkpoint, events, model = await go(
        tmp_path,
        toml,
        [
            call("big", size=five_mb),
            call("images", count=3, size=20_000),
            call("spew", size=five_mb, long=100_000),
            reply("done"),
        ],
    )
    assert checkpoint.status == "completed"
    found = results(events)
    big_text = found[0][1]
    assert big_text.startswith("0123456789")
    assert big_text.endswith(
        "[truncated: 5,000,000 characters, showing the first 20,000; raise maxResultChars on "
        'skill "toy" to see more]'
    )
    assert len(big_text) < 20_200
    assert "[omitted: 1 image or file (image/png, 20,000 bytes)" in found[1][1]
    # What the model was sent next is the bounded result.
    prompt = json.dumps([m.to_dict() for m in model.requests[1].messages])
    assert "[truncated: 5,000,000 characters" in prompt and len(prompt) < 30_000
    stored = stderr_messages(events, "toy")
    notices = [m for m in stored if m.startswith("[stderr truncated")]
    assert len(notices) == 1 and stored[-1] == notices[0]
    assert sum(len(m.encode()) for m in stored[:-1]) <= 65536
    assert all(len(m.encode()) <= 4096 + 200 for m in stored)
    # Every event the run emitted (what `perstack run` prints) and everything it stored is
    # small; without limits each would hold the 5 MB result several times over.
    emitted = sum(len(event.to_json()) for event in events)
    assert emitted < 1_500_000
    on_disk = sum(f.stat().st_size for f in (tmp_path / "perstack").rglob("*") if f.is_file())
    assert on_disk < 1_000_000


# lazyInit --------------------------------------------------------------------------------------


async def test_lazy_init_without_a_lockfile_starts_at_once_and_warns_once_per_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[PerstackEvent] = []
    job = job_context(tmp_path, events)
    skills: dict[str, Any] = {"lazy": toy(lazy_init=True, pick=["echo"])}
    with caplog.at_level(logging.WARNING, logger="runtime"):
        for run_id in ("run-1", "run-2"):  # a second segment of the job (a delegate, a resume)
            async with asyncio.timeout(20), AsyncExitStack() as stack:
                index = await open_skills(job, stack, skills, run_id=run_id, coordinator=True)
                # Started before open_skills returned: the first model call can offer its tools.
                assert list(index) == ["echo"]
                skill = index["echo"][0]
                assert isinstance(skill, McpSkill) and skill.connected
    assert [e.type for e in events if e.type != "skillStderr"] == [
        "skillStarting",
        "skillConnected",
        "skillDisconnected",
    ] * 2
    warnings = [r.getMessage() for r in caplog.records if r.name == "runtime"]
    assert warnings == [
        'skill "lazy" has lazyInit = true, but without perstack.lock its tools are unknown until '
        "it starts, so it starts now, before the first model call. Run `perstack install` to "
        "record its tools; it then starts on its first tool call."
    ]


async def test_lazy_init_with_a_lockfile_starts_on_the_first_tool_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[PerstackEvent] = []
    job = job_context(tmp_path, events)
    config = toy(lazy_init=True)
    job.lockfile = Lockfile(
        version="1",
        generated_at=0,
        config_path="perstack.toml",
        experts={
            "agent": LockedExpert(
                key="agent",
                name="agent",
                version="1.0.0",
                instruction="x",
                tool_definitions=[LockedTool(skill_name="lazy", name="echo")],
                skill_hashes={"lazy": skill_definition_hash("lazy", config)},
            )
        },
    )
    with caplog.at_level(logging.WARNING, logger="runtime"):
        async with asyncio.timeout(20), AsyncExitStack() as stack:
            index = await open_skills(job, stack, {"lazy": config}, run_id="run", coordinator=True)
            assert list(index) == ["echo"]
            assert events == []  # nothing started yet
            skill = index["echo"][0]
            outcome = await skill.call("echo", {"text": "now"})
            assert text_of(outcome) == "now"
            started = [e for e in skill_events(events, "lazy") if e != "skillStderr"]
            assert started == ["skillStarting", "skillConnected"]
    assert not [r for r in caplog.records if r.name == "runtime"]
