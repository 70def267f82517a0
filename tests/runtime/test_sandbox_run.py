"""`sandbox = true` / RunSetting(sandbox=True) puts the base skill's exec inside the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime import RunSetting, parse_config, run
from runtime.schema.events import PerstackEvent
from runtime.testing import call, reply

TOML = '[experts."box"]\ninstruction = "Run commands."\n'


def exec_args(script: str) -> dict[str, object]:
    return {
        "command": "sh",
        "args": ["-c", script],
        "env": {},
        "cwd": ".",
        "stdout": True,
        "stderr": True,
    }


@pytest.mark.parametrize("source", ["setting", "toml"])
async def test_exec_runs_sandboxed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    from runtime.testing import ScriptedModel

    monkeypatch.setenv("SANDBOX_TEST_SECRET", "hunter2")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    workspace = tmp_path
    script = (
        f"echo secret=$SANDBOX_TEST_SECRET; touch {outside}/escaped 2>&1 || echo write-blocked; "
        "echo inside > inside.txt"
    )
    toml = ("sandbox = true\n" if source == "toml" else "") + TOML
    events: list[PerstackEvent] = []
    checkpoint = await run(
        RunSetting(expert_key="box", query="q", workspace=workspace, sandbox=(source == "setting")),
        events.append,
        model=ScriptedModel([call("exec", **exec_args(script)), reply("done")]),
        config=parse_config(toml, path=workspace / "perstack.toml"),
    )
    assert checkpoint.status == "completed"
    result = next(e for e in events if e.type == "resolveToolResults").tool_results[0]
    output = json.loads(result.result[0].text)["output"]
    assert "secret=\n" in output or output.startswith("secret=\n")
    assert "hunter2" not in output
    assert "write-blocked" in output
    assert not (outside / "escaped").exists()
    assert (workspace / "inside.txt").read_text() == "inside\n"


async def test_stdio_mcp_server_and_proxy_decisions_in_a_sandboxed_run(tmp_path: Path) -> None:
    import sys

    from runtime.testing import ScriptedModel

    toml = f"""
sandbox = true

[experts."box"]
instruction = "Use tools."
[experts."box".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
allowedDomains = ["allowed.example"]
[experts."box".skills."time"]
type = "mcpStdioSkill"
command = "{sys.executable}"
args = ["-m", "mcp_server_time", "--local-timezone", "UTC"]
"""
    fetch = (
        "import urllib.request\n"
        "try:\n"
        "    urllib.request.urlopen('http://blocked.example/', timeout=5)\n"
        "except Exception as error:\n"
        "    print('refused:', error)\n"
    )
    events: list[PerstackEvent] = []
    checkpoint = await run(
        RunSetting(expert_key="box", query="q", workspace=tmp_path),
        events.append,
        model=ScriptedModel(
            [
                call("get_current_time", timezone="UTC"),
                call("exec", **exec_args(f'{sys.executable} -c "{fetch}"')),
                reply("done"),
            ]
        ),
        config=parse_config(toml, path=tmp_path / "perstack.toml"),
    )
    assert checkpoint.status == "completed"
    results = [r for e in events if e.type == "resolveToolResults" for r in e.tool_results]
    # The MCP server ran inside the sandbox and answered.
    assert results[0].is_error is None
    assert '"timezone": "UTC"' in results[0].result[0].text
    # The request to a host outside allowedDomains was refused by the proxy, and reported.
    assert "refused" in json.loads(results[1].result[0].text)["output"]
    decisions = [e for e in events if e.type == "proxyAccess"]
    assert [(d.action, d.domain) for d in decisions] == [("blocked", "blocked.example")]


async def test_run_closes_its_sandbox_when_its_skills_are_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox's proxies and network namespaces go with the run, not with the collector."""
    from runtime.sandbox import Sandbox
    from runtime.testing import ScriptedModel

    closed: list[Sandbox] = []
    original = Sandbox.close

    def close(self: Sandbox) -> None:
        closed.append(self)
        original(self)

    monkeypatch.setattr(Sandbox, "close", close)
    checkpoint = await run(
        RunSetting(expert_key="box", query="q", workspace=tmp_path, sandbox=True),
        None,
        model=ScriptedModel([call("exec", **exec_args("echo hi")), reply("done")]),
        config=parse_config(TOML, path=tmp_path / "perstack.toml"),
    )
    assert checkpoint.status == "completed"
    assert len(closed) == 1
    with pytest.raises(RuntimeError):
        closed[0].wrap(["true"], env={}, allowed_domains=["example.com"])
