"""`perstack run` as a user runs it: a real process, real litellm, a local fake OpenAI server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fakellm import FakeLLM, reply_error, reply_text, reply_tool_calls

TOML = """
[experts."my-expert"]
description = "Helps"
instruction = "Help the user."

[experts."asker"]
instruction = "Ask first."
[experts."asker".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
[experts."asker".skills."ask"]
type = "interactiveSkill"
[experts."asker".skills."ask".tools."askName"]
inputJsonSchema = '{"type": "object", "properties": {"q": {"type": "string"}}}'
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "perstack.toml").write_text(TOML)
    return tmp_path


def perstack(
    *args: str, cwd: Path, env: dict[str, str] | None = None, drop: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in drop and not k.endswith("_API_KEY")}
    environ.update(env or {})
    environ.pop("PERSTACK_STORAGE_PATH", None)
    return subprocess.run(
        [sys.executable, "-m", "studio", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_gpt41(
    expert: str, query: str, *extra: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``perstack run EXPERT QUERY EXTRA... --provider openai --model gpt-4.1``."""
    return perstack(
        "run", expert, query, *extra, "--provider", "openai", "--model", "gpt-4.1", cwd=cwd, env=env
    )


def events(out: str) -> list[dict[str, Any]]:
    lines = out.splitlines()
    parsed = [json.loads(line) for line in lines]  # every stdout line is one JSON event
    assert all("\n" not in line for line in lines)
    return parsed


def test_run_prints_one_json_event_per_line(workspace: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        reply_tool_calls([("writeTextFile", {"path": "out/hello.txt", "text": "hi"})]),
        reply_tool_calls([("attemptCompletion", {})]),
        reply_text("Wrote out/hello.txt"),
    )
    result = run_gpt41("my-expert", "write hello", cwd=workspace, env=fake_llm.env())
    assert result.returncode == 0, result.stderr
    stream = events(result.stdout)
    kinds = [e["type"] for e in stream if not e["type"].startswith("stream")]
    assert kinds == [
        "initializeRuntime",
        "skillConnected",
        "startRun",
        "startGeneration",
        "callTools",
        "resolveToolResults",
        "finishToolCall",
        "continueToNextStep",
        "startGeneration",
        "callTools",
        "attemptCompletion",
        "startStreamingRunResult",
        "completeStreamingRunResult",
        "completeRun",
        "skillDisconnected",
    ]
    assert stream[-2]["text"] == "Wrote out/hello.txt"
    assert stream[0]["model"] == "gpt-4.1"
    assert (workspace / "out/hello.txt").read_text() == "hi"
    # The real request reached the fake server with the tools and the system prompt.
    first = fake_llm.requests[0]
    assert first["model"] == "gpt-4.1"
    assert first["messages"][0]["role"] == "system"
    assert "Help the user." in first["messages"][0]["content"]
    assert any(t["function"]["name"] == "writeTextFile" for t in first["tools"])
    assert "Traceback" not in result.stderr


def test_config_is_found_in_a_parent_directory(workspace: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_text("hello from below"))
    nested = workspace / "a" / "b"
    nested.mkdir(parents=True)
    result = run_gpt41("my-expert", "hi", cwd=nested, env=fake_llm.env())
    assert result.returncode == 0, result.stderr
    assert events(result.stdout)[-2]["text"] == "hello from below"


def test_text_tool_call_mode_runs_a_call_written_as_text(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    written = json.dumps({"name": "writeTextFile", "arguments": {"path": "a.txt", "text": "hi"}})
    fake_llm.script(reply_text(f"<tool_call>\n{written}\n</tool_call>"), reply_text("Wrote a.txt"))
    env = {**fake_llm.env(), "PERSTACK_TOOL_CALL_MODE": "text"}
    result = run_gpt41("my-expert", "write a.txt", cwd=workspace, env=env)
    assert result.returncode == 0, result.stderr
    stream = events(result.stdout)
    call_tools = next(e for e in stream if e["type"] == "callTools")
    assert call_tools["toolCalls"][0]["toolName"] == "writeTextFile"
    assert (workspace / "a.txt").read_text() == "hi"
    assert stream[-2]["text"] == "Wrote a.txt"
    # Never tool_choice "required": it hangs llama-server; the default is "auto".
    assert all("tool_choice" not in request for request in fake_llm.requests)


def test_any_litellm_provider_name_is_accepted(workspace: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_text("kimi says hi"))
    result = perstack(
        "run",
        "my-expert",
        "hi",
        "--provider",
        "fireworks",
        "--model",
        "accounts/fireworks/models/kimi-k2p5",
        cwd=workspace,
        env={
            "FIREWORKS_API_KEY": "fw-test",
            "FIREWORKS_BASE_URL": fake_llm.base_url,
            **{k: v for k, v in fake_llm.env().items() if "PROXY" in k.upper()},
        },
    )
    assert result.returncode == 0, result.stderr
    assert events(result.stdout)[-2]["text"] == "kimi says hi"
    assert fake_llm.requests[0]["model"] == "accounts/fireworks/models/kimi-k2p5"


def test_missing_api_key_names_the_variable(workspace: Path) -> None:
    result = run_gpt41("my-expert", "hi", cwd=workspace)
    assert result.returncode == 2
    assert "OPENAI_API_KEY is not set" in result.stderr
    assert ".env" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_api_key_from_dotenv(workspace: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_text("from dotenv"))
    (workspace / ".env").write_text(
        f"OPENAI_API_KEY=sk-dotenv\nOPENAI_BASE_URL={fake_llm.base_url}\n"
    )
    proxy = {k: v for k, v in fake_llm.env().items() if "PROXY" in k.upper()}
    result = run_gpt41("my-expert", "hi", cwd=workspace, env=proxy)
    assert result.returncode == 0, result.stderr
    assert fake_llm.request_headers[0]["authorization"] == "Bearer sk-dotenv"


def test_provider_rejection_stops_by_error(workspace: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        reply_error(404, "The model `gpt-nope` does not exist", error_type="invalid_request_error")
    )
    result = perstack(
        "run",
        "my-expert",
        "hi",
        "--provider",
        "openai",
        "--model",
        "gpt-nope",
        cwd=workspace,
        env=fake_llm.env(),
    )
    assert result.returncode == 1
    stop = events(result.stdout)[-2]
    assert stop["type"] == "stopRunByError"
    assert "does not exist" in stop["error"]["message"]
    assert stop["error"]["isRetryable"] is False
    assert "does not exist" in result.stderr


def test_unreachable_base_url(workspace: Path) -> None:
    result = run_gpt41(
        "my-expert",
        "hi",
        "--max-retries",
        "0",
        cwd=workspace,
        env={"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
    )
    assert result.returncode == 1
    stop = events(result.stdout)[-2]
    assert stop["type"] == "stopRunByError"
    assert "127.0.0.1:9" in stop["error"]["message"]


def test_unwritable_storage_is_a_clear_error(workspace: Path, fake_llm: FakeLLM) -> None:
    """Jobs cannot be stored (here a file is in the way; elsewhere permissions or a full disk)."""
    (workspace / "perstack").write_text("not a directory")
    fake_llm.script(reply_text("never asked"))
    result = run_gpt41("my-expert", "hi", cwd=workspace, env=fake_llm.env())
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"Cannot write {workspace / 'perstack' / 'jobs'}" in result.stderr
    assert "PERSTACK_STORAGE_PATH" in result.stderr
    assert (workspace / "perstack").read_text() == "not a directory"
    assert fake_llm.requests == []


def test_max_steps_exits_3(workspace: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_tool_calls([("todo", {"newTodos": ["a"]})]))
    result = run_gpt41("my-expert", "hi", "--max-steps", "1", cwd=workspace, env=fake_llm.env())
    assert result.returncode == 3
    assert events(result.stdout)[-2]["type"] == "stopRunByExceededMaxSteps"


def test_interactive_stop_then_answer(workspace: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_tool_calls([("askName", {"q": "Your name?"})]))
    first = run_gpt41("asker", "greet me", cwd=workspace, env=fake_llm.env())
    assert first.returncode == 0, first.stderr
    assert events(first.stdout)[-2]["type"] == "stopRunByInteractiveTool"
    fake_llm.script(reply_text("Hello, Ada!"))
    second = run_gpt41("asker", "Ada", "--continue", "-i", cwd=workspace, env=fake_llm.env())
    assert second.returncode == 0, second.stderr
    assert events(second.stdout)[-2]["text"] == "Hello, Ada!"
    tool_messages = [m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert tool_messages[-1]["content"] == "Ada"


@pytest.mark.parametrize(
    ("toml", "args", "expected"),
    [
        (None, ["run", "my-expert", "hi"], "perstack.toml not found"),
        (
            '[experts."w"]\ndescription = "x"\n',
            ["run", "w", "hi"],
            'perstack.toml:1 experts."w".instruction: field required',
        ),
        ("[experts\n", ["run", "w", "hi"], "perstack.toml:1"),
        (TOML, ["run", "nobody", "hi"], 'Expert "nobody" not found'),
        (TOML, ["run", "my-expert", "hi", "--max-steps", "zero"], "expected a whole number"),
        (
            TOML,
            ["run", "my-expert", "hi", "--resume-from", "x", "--provider", "openai"],
            "--resume-from requires --continue-job",
        ),
        (TOML, ["run", "my-expert", "hi", "-i", "--provider", "openai"], "no pending interactive"),
        (
            TOML,
            ["run", "my-expert", "hi", "--continue-job", "nojob", "--provider", "openai"],
            "nojob",
        ),
    ],
)
def test_bad_input_exits_2_without_traceback(
    tmp_path: Path, toml: str | None, args: list[str], expected: str
) -> None:
    if toml is not None:
        (tmp_path / "perstack.toml").write_text(toml)
    result = perstack(*args, cwd=tmp_path, env={"OPENAI_API_KEY": "k"})
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_version_and_help(tmp_path: Path) -> None:
    version = perstack("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("perstack ")
    help_text = perstack("run", "--help", cwd=tmp_path)
    assert help_text.returncode == 0 and "--reasoning-budget" in help_text.stdout


def test_runtime_warnings_reach_stderr_in_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from runtime.cli import log_warnings_to_stderr

    runtime_logger = logging.getLogger("runtime")
    before = list(runtime_logger.handlers)
    try:
        log_warnings_to_stderr()
        log_warnings_to_stderr()  # idempotent: one line per warning
        runtime_logger.warning('perstack.lock has no up-to-date entry for skill "x"')
        assert capsys.readouterr().err.splitlines() == [
            'perstack: warning: perstack.lock has no up-to-date entry for skill "x"'
        ]
    finally:
        runtime_logger.handlers[:] = before


def test_a_bare_perstack_is_a_usage_error_and_base_names_itself(tmp_path: Path) -> None:
    bare = perstack(cwd=tmp_path)
    assert bare.returncode == 2 and bare.stdout == ""
    assert "usage: perstack" in bare.stderr and "start" in bare.stderr
    base = perstack("base", "--help", cwd=tmp_path)
    assert base.returncode == 0 and base.stdout.startswith("usage: perstack base")
