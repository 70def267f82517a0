"""The base skill's exec tool: no shell, stream flags, exit codes, timeouts, a filtered
environment, a checked cwd, capped output, and close() killing what still runs (§6)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest

from runtime.skills.base import BaseSkill
from tests.runtime.base_skill_helpers import (  # noqa: F401 - the fixtures skill and ws
    fail,
    fail_message,
    ok,
    run_args,
    skill_fixture,
    text_of,
    ws_fixture,
)


async def test_exec_runs_without_a_shell(skill: BaseSkill) -> None:
    result = await ok(skill, "exec", **run_args("echo", "$HOME", "*", "a;b"))
    assert result == {"output": "$HOME * a;b\n"}


async def test_exec_stream_flags(skill: BaseSkill) -> None:
    script = "import sys; print('out'); print('err', file=sys.stderr)"
    both = await ok(skill, "exec", **run_args(sys.executable, "-c", script))
    assert both == {"output": "out\nerr\n"}
    only_out = await ok(skill, "exec", **run_args(sys.executable, "-c", script, stderr=False))
    assert only_out == {"output": "out\n"}
    only_err = await ok(skill, "exec", **run_args(sys.executable, "-c", script, stdout=False))
    assert only_err == {"output": "err\n"}


async def test_exec_without_output(skill: BaseSkill) -> None:
    assert await ok(skill, "exec", **run_args("true")) == {
        "output": "Command executed successfully, but produced no output."
    }


async def test_exec_non_zero_exit_has_the_exec_error_shape(skill: BaseSkill) -> None:
    args = run_args("sh", "-c", "echo partial; echo boom >&2; exit 3")
    result = await fail(skill, "exec", **args)
    assert result["error"].startswith("Command failed with exit code 3")
    assert (result["stdout"], result["stderr"]) == ("partial\n", "boom\n")
    result = await fail(skill, "exec", **{**args, "stdout": False})
    assert set(result) == {"error", "stderr"}


async def test_exec_timeout_kills_the_process_group(skill: BaseSkill) -> None:
    started = time.monotonic()
    # The background sleep holds the pipes open: only killing the whole group ends the call.
    args = run_args("sh", "-c", "echo started; sleep 30 & sleep 30", timeout=300)
    result = await fail(skill, "exec", **args)
    assert time.monotonic() - started < 10
    assert result["error"] == "Command timed out after 300ms."
    assert result["stdout"] == "started\n"


async def test_exec_env_is_filtered(skill: BaseSkill, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPER_SECRET_TOKEN", "hunter2")
    monkeypatch.setenv("LANG", "C.UTF-8")
    script = "import os, json; print(json.dumps(dict(os.environ)))"
    args = run_args(
        sys.executable,
        "-c",
        script,
        env={"GREETING": "hi", "PATH": "/nowhere", "LD_PRELOAD": "/evil.so", "HOME": "/tmp/x"},
    )
    env = json.loads((await ok(skill, "exec", **args))["output"])
    assert "SUPER_SECRET_TOKEN" not in env
    assert env["GREETING"] == "hi"
    assert env["PATH"] == os.environ["PATH"]
    assert env["HOME"] == os.environ["HOME"]
    assert env["LANG"] == "C.UTF-8"
    assert "LD_PRELOAD" not in env


async def test_exec_cwd_is_checked(skill: BaseSkill, ws: Path) -> None:
    (ws / "sub").mkdir()
    result = await ok(skill, "exec", **run_args("pwd", cwd="sub"))
    assert result == {"output": f"{ws / 'sub'}\n"}
    message = await fail_message(skill, "exec", **run_args("pwd", cwd=".."))
    assert message.startswith("Access denied - path outside allowed directories")
    message = await fail_message(skill, "exec", **run_args("pwd", cwd="missing"))
    assert message == "Directory missing does not exist."
    message = await fail_message(skill, "exec", **run_args("pwd", cwd="perstack"))
    assert message == "Access denied - perstack directory is not allowed"


async def test_exec_unknown_command(skill: BaseSkill) -> None:
    result = await fail(skill, "exec", **run_args("definitely-not-a-command-xyz"))
    assert result["error"].startswith("Failed to run definitely-not-a-command-xyz")


async def test_exec_output_is_capped(skill: BaseSkill) -> None:
    script = "import sys; sys.stdout.write('x' * (11 * 1024 * 1024))"
    result = await fail(skill, "exec", **run_args(sys.executable, "-c", script, stderr=False))
    assert result["error"].startswith("Command output exceeded 10 MB (stdout)")
    assert len(result["stdout"]) <= 10 * 1024 * 1024


async def test_close_kills_running_commands(skill: BaseSkill, ws: Path) -> None:
    task = asyncio.create_task(skill.call("exec", run_args("sh", "-c", "touch started; sleep 30")))
    async with asyncio.timeout(10):
        # Another process creates the file: there is no event to wait on, so poll.
        for _ in range(1000):
            if (ws / "started").exists():
                break
            await asyncio.sleep(0.01)
        await skill.close()
        outcome = await task  # within the timeout: the 30 s command did not run on
    assert outcome.is_error
    # Usually "killed by signal SIGKILL"; once, on a loaded CI machine, the shell reported exit
    # code 255 instead. Either way the command was stopped, which is what close() promises.
    error = json.loads(text_of(outcome))["error"]
    assert error.startswith(("Command killed by signal", "Command failed with exit code"))
    assert "sh -c touch started; sleep 30" in error
    assert not skill._exec.processes
