"""The base tool ``exec``: run one program, without a shell, inside the workspace.

The program gets the skills' safe environment plus the variables the model passes (never ones
that change what runs, such as ``PATH`` or ``LD_PRELOAD``), its output is capped, and it runs in
its own session so a timeout, a cancelled run or :meth:`ExecTool.close` ends everything it
started. With a sandbox (``--sandbox``) every command runs inside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runtime.config.env import PROTECTED_ENV_NAMES, SAFE_ENV_NAMES
from runtime.skills.base.tool import Param, ShapedFailure, Tool, ToolFailure, os_message
from runtime.skills.base.workspace import MB, Workspace

if TYPE_CHECKING:
    from runtime.sandbox import Sandbox

__all__ = ["ExecTool"]

_MAX_EXEC_OUTPUT = 10 * MB
_DEFAULT_EXEC_TIMEOUT_MS = 60_000

# What a command inherits from our own environment: the skills' safe minimum (§5.10) plus LANG,
# so tools print text in the user's encoding. Nothing that could carry a secret.
_INHERITED_ENV = (*SAFE_ENV_NAMES, "LANG")


def _kill_group(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    # The command runs in its own session, so this also ends anything it started.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()


class ExecTool:
    """``exec`` over one workspace, and the commands it still has running.

    Args:
        workspace: Where the working directory must be.
        sandbox: When given, every command runs inside it.
        allowed_domains: Domains a sandboxed command may reach; ignored without ``sandbox``.
    """

    def __init__(
        self, workspace: Workspace, *, sandbox: Sandbox | None, allowed_domains: Sequence[str]
    ) -> None:
        self._ws = workspace
        self._sandbox = sandbox
        self._allowed_domains = tuple(allowed_domains)
        self.processes: set[asyncio.subprocess.Process] = set()
        """Commands started and not yet finished."""

    def tools(self) -> list[Tool]:
        """The ``exec`` tool."""
        return [
            Tool(
                "exec",
                "Run a program directly (no shell: no pipes, globbing, redirection or $VAR "
                "expansion; run `sh` with `-c` yourself if you need one). The working directory "
                "must be inside the workspace. The program gets PATH, HOME, SHELL, TERM, LANG "
                "and proxy settings plus the env you pass; PATH, HOME, SHELL, LD_PRELOAD, "
                "LD_LIBRARY_PATH, NODE_OPTIONS, PYTHONPATH and similar loader variables cannot "
                "be overridden and are ignored. stdout/stderr choose which streams are "
                "returned. Output is capped at 10 MB; the process is killed after timeout ms.",
                (
                    Param("command", "string", "Program to run, e.g. `python` or `ls`."),
                    Param("args", "string[]", "Arguments, one array item per argument."),
                    Param("env", "string{}", "Extra environment variables (may be {})."),
                    Param("cwd", "string", "Working directory, e.g. `.` for the workspace."),
                    Param("stdout", "boolean", "Return what the program wrote to stdout."),
                    Param("stderr", "boolean", "Return what the program wrote to stderr."),
                    Param(
                        "timeout",
                        "integer",
                        "Milliseconds before the program is killed (default 60000).",
                        required=False,
                    ),
                ),
                self._exec,
            ),
        ]

    async def close(self) -> None:
        """Kill the commands still running and wait (briefly) for them to exit."""
        for process in list(self.processes):
            _kill_group(process)
        for process in list(self.processes):
            with contextlib.suppress(TimeoutError, ProcessLookupError):
                async with asyncio.timeout(2):
                    await process.wait()
        self.processes.clear()

    def _exec_env(self, given: dict[str, str]) -> dict[str, str]:
        env = {name: os.environ[name] for name in _INHERITED_ENV if name in os.environ}
        for name, value in given.items():
            if name.upper() not in PROTECTED_ENV_NAMES:
                env[name] = value
        return env

    async def _exec(self, args: dict[str, Any]) -> dict[str, Any]:
        command: str = args["command"]
        timeout_ms: int = args.get("timeout", _DEFAULT_EXEC_TIMEOUT_MS)
        if not command:
            raise ToolFailure("command must not be empty")
        if timeout_ms <= 0:
            raise ToolFailure("timeout must be a positive number of milliseconds")
        cwd = self._ws.directory(args["cwd"])
        argv = [command, *args["args"]]
        env = self._exec_env(args["env"])
        if self._sandbox is None:
            return await self._run(args, argv, env, cwd)
        sandboxed = self._sandbox.wrap(
            argv, env=env, cwd=cwd, allowed_domains=self._allowed_domains
        )
        try:
            return await self._run(args, sandboxed.argv, sandboxed.env, cwd)
        finally:
            # Stops the command's proxy (if it had allowed domains) once it has exited.
            sandboxed.cleanup()

    async def _run(
        self, args: dict[str, Any], argv: list[str], env: dict[str, str], cwd: str
    ) -> dict[str, Any]:
        command: str = args["command"]
        want_stdout: bool = args["stdout"]
        want_stderr: bool = args["stderr"]
        timeout_ms: int = args.get("timeout", _DEFAULT_EXEC_TIMEOUT_MS)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                # Never our stdin: under the MCP server it carries the protocol.
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as error:
            message = f"Failed to run {command}: {os_message(error)}"
            raise ShapedFailure({"error": message}) from None

        buffers = {"stdout": bytearray(), "stderr": bytearray()}
        overflow: list[str] = []

        async def pump(stream: asyncio.StreamReader | None, label: str) -> None:
            if stream is None:
                return
            buffer = buffers[label]
            while chunk := await stream.read(64 * 1024):
                if len(buffer) + len(chunk) > _MAX_EXEC_OUTPUT:
                    overflow.append(label)
                    _kill_group(process)
                    return
                buffer += chunk

        def shaped(error: str) -> dict[str, Any]:
            payload: dict[str, Any] = {"error": error}
            if want_stdout:
                payload["stdout"] = buffers["stdout"].decode("utf-8", "replace")
            if want_stderr:
                payload["stderr"] = buffers["stderr"].decode("utf-8", "replace")
            return payload

        self.processes.add(process)
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                await asyncio.gather(pump(process.stdout, "stdout"), pump(process.stderr, "stderr"))
                returncode = await process.wait()
        except TimeoutError:
            _kill_group(process)
            await process.wait()
            raise ShapedFailure(shaped(f"Command timed out after {timeout_ms}ms.")) from None
        finally:
            # Also reached on cancellation: a cancelled run must not leave the command behind.
            _kill_group(process)
            self.processes.discard(process)

        cmdline = " ".join([command, *args["args"]])
        if overflow:
            raise ShapedFailure(
                shaped(f"Command output exceeded 10 MB ({overflow[0]}); the process was killed.")
            )
        if returncode < 0:
            raise ShapedFailure(
                shaped(f"Command killed by signal {signal.Signals(-returncode).name}: {cmdline}")
            )
        if returncode != 0:
            raise ShapedFailure(shaped(f"Command failed with exit code {returncode}: {cmdline}"))
        output = ""
        if want_stdout:
            output += buffers["stdout"].decode("utf-8", "replace")
        if want_stderr:
            output += buffers["stderr"].decode("utf-8", "replace")
        if not output.strip():
            output = "Command executed successfully, but produced no output."
        return {"output": output}
