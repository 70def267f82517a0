"""Fast start: what a run loads, which client it uses, and that a timed-out generation is retried.

The speed itself is measured in ``benchmarks/cli_run.py``; these tests hold the mechanisms that
make it: a native-path run never imports litellm (nor the studio's UI libraries, nor the MCP
client without MCP skills), the client can be forced either way, and a retry after a timeout
really reaches the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime import RunSetting, run
from tests.fakellm import FakeLLM, reply_delay, reply_text, reply_tool_calls

ROOT = Path(__file__).resolve().parents[1]
TOML = '[experts."solo"]\ninstruction = "Do the task."\n'

# Runs `perstack run` in this interpreter, then reports which heavy packages the run loaded.
CHILD = """
import gc, json, sys
from runtime.cli import lean_start, main
lean_start()  # as the perstack entry point does in a process of its own
code = main(sys.argv[1:])
heavy = ["litellm", "openai", "aiohttp", "textual", "rich", "tomlkit", "mcp", "watchfiles", "h2",
         "tree_sitter", "opentelemetry", "runtime.jobs.api", "runtime.telemetry"]
report = {
    "code": code,
    "loaded": [m for m in heavy if sys.modules.get(m) is not None],
    "gc": [gc.isenabled(), gc.get_freeze_count() > 0],
}
print(json.dumps(report), file=sys.stderr)
"""


def child_run(
    workspace: Path, env: dict[str, str], *args: str, report: dict[str, object] | None = None
) -> tuple[int, list[str], str]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, "solo", "go", "--provider", "openai", "--model", "gpt-4.1"]
        + list(args),
        cwd=workspace,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = json.loads(out.stderr.strip().splitlines()[-1])
    if report is not None:
        report.update(found)
    return int(found["code"]), list(found["loaded"]), out.stdout


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "perstack.toml").write_text(TOML)
    return tmp_path


def test_a_native_run_loads_no_litellm_no_ui_and_no_mcp_client(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        reply_tool_calls([("writeTextFile", {"path": "a.txt", "text": "x"})]),
        reply_tool_calls([("attemptCompletion", {})]),
        reply_text("done"),
    )
    report: dict[str, object] = {}
    code, loaded, stdout = child_run(workspace, fake_llm.env(), report=report)
    assert code == 0
    assert json.loads(stdout.splitlines()[-2])["type"] == "completeRun"
    assert loaded == [], "nothing the run does not use (h2: HTTP/2, which it does not speak)"
    # Collection was off during start-up, and back on (start-up's objects frozen) once the
    # model had answered: a long run's garbage is still collected.
    assert report["gc"] == [True, True]
    assert (workspace / "a.txt").read_text() == "x"


def test_the_litellm_client_can_be_forced(workspace: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_text("through litellm"))
    code, loaded, stdout = child_run(
        workspace, {**fake_llm.env(), "PERSTACK_MODEL_CLIENT": "litellm"}
    )
    assert code == 0
    assert "litellm" in loaded
    assert "through litellm" in stdout


def test_a_bad_client_name_is_a_usage_error_before_the_run(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    code, _, stdout = child_run(workspace, {**fake_llm.env(), "PERSTACK_MODEL_CLIENT": "fast"})
    assert code == 2
    assert stdout == ""
    assert fake_llm.requests == []


@pytest.mark.parametrize("client", ["native", "litellm"])
async def test_a_timed_out_generation_is_really_retried(
    workspace: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch, client: str
) -> None:
    for name, value in {**fake_llm.env(), "PERSTACK_MODEL_CLIENT": client}.items():
        monkeypatch.setenv(name, value)
    fake_llm.script(reply_delay(30), reply_text("second time lucky"))
    events: list[str] = []
    checkpoint = await run(
        RunSetting(
            expert_key="solo",
            query="go",
            workspace=workspace,
            provider="openai",
            model="gpt-4.1",
            timeout=1000,
            max_retries=2,
            retry_base_delay_ms=0,
        ),
        lambda event: events.append(event.type),
    )
    assert checkpoint.status == "completed"
    assert events.count("retry") == 1
    # Two attempts, two requests: the retry reached the server.
    assert len(fake_llm.requests) == 2
