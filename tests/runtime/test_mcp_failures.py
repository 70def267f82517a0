"""MCP skills that fail (§1.4): servers that crash or hang during a run become error
results, and a missing required variable, a command that does not exist or a server that
exits before the handshake stop the start with a SkillError that says why. Real server
processes, nothing mocked."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from runtime import RunSetting, parse_config, run
from runtime.errors import SkillError
from runtime.schema.events import PerstackEvent, SkillDisconnected, SkillStarting, SkillStderr
from runtime.skills.mcp import McpSkill
from runtime.skills.mcp import skill as mcp_skill_module
from runtime.testing import ScriptedModel, call, reply
from tests.runtime.mcp_skill_helpers import (
    BASE,
    direct_runtime,
    go,
    index_of,
    results,
    toy,
    toy_table,
)


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
