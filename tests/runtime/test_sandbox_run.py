"""`sandbox = true` / RunSetting(sandbox=True) puts the base skill's exec inside the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime import RunSetting, parse_config, run
from runtime.events import PerstackEvent
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
