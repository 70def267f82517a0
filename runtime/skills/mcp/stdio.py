"""The stdio transport: a server spawned as a child process, speaking JSON-RPC over its pipes.

Unlike the SDK's ``stdio_client``, the child gets exactly the environment it is given (the safe
variables plus its ``requiredEnv``, :func:`runtime.config.env.skill_env`), its stderr is a pipe we
read chunk by chunk, an unexpected exit is reported as it happens, and a hung server can be
killed at once instead of after the grace periods. It runs in its own session, inside the run's
sandbox when there is one, so stopping it stops what it spawned.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from runtime.skills.mcp.context import SkillRuntime

if TYPE_CHECKING:
    from mcp.client._transport import TransportStreams
    from mcp.shared.message import SessionMessage

__all__ = ["ProcessWatch", "stdio_transport"]

_CLOSE_GRACE_S = 2.0
"""After stdin closes, how long a server may take to exit before it is terminated."""

_TERM_GRACE_S = 2.0
"""After SIGTERM, how long before SIGKILL."""


@dataclass
class ProcessWatch:
    """What the stdio transport reports back to its skill."""

    on_stderr: Callable[[str], None]
    on_exit: Callable[[int | None], None]
    kill_on_close: Callable[[], bool]
    spawn_seconds: float = 0.0
    pid: int | None = None


def _parse_line(line: bytes) -> SessionMessage | Exception:
    import mcp_types as types
    from mcp.shared.message import SessionMessage

    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as error:
        # Handed to the session as a value, as the SDK's own stdio transport does.
        return error


async def _wait_exit(process: anyio.abc.Process, seconds: float) -> bool:
    # Polls returncode: Process.wait() also waits for pipe EOF, which a grandchild holding the
    # pipes can delay forever.
    deadline = anyio.current_time() + seconds
    while process.returncode is None:
        if anyio.current_time() >= deadline:
            return False
        await anyio.sleep(0.01)
    return True


def _signal_group(process: anyio.abc.Process, signum: int) -> None:
    # The server was started in its own session, so its pid is its process group: signalling
    # the group also stops what it spawned (npx → node, uvx → python).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if sys.platform == "win32":  # pragma: no cover - not a supported platform for skills
            process.kill()
        else:
            os.killpg(process.pid, signum)


async def _stop_process(process: anyio.abc.Process, *, kill: bool) -> None:
    """Stop the server: close stdin and let it exit, else SIGTERM, else SIGKILL (all bounded)."""
    if kill:
        _signal_group(process, signal.SIGKILL)
    else:
        if process.stdin is not None:
            with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                await process.stdin.aclose()
        if not await _wait_exit(process, _CLOSE_GRACE_S):
            _signal_group(process, signal.SIGTERM)
            if not await _wait_exit(process, _TERM_GRACE_S):
                _signal_group(process, signal.SIGKILL)
    await _wait_exit(process, _TERM_GRACE_S)
    with anyio.move_on_after(_TERM_GRACE_S):
        # Closes the pipe transports too, so nothing is left for the garbage collector to warn
        # about.
        await process.aclose()


@asynccontextmanager
async def _process_transport(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    watch: ProcessWatch,
    *,
    cleanup: Callable[[], None] | None = None,
) -> AsyncIterator[TransportStreams]:
    """Spawn ``argv`` and speak newline-delimited JSON-RPC over its stdin/stdout.

    Unlike the SDK's ``stdio_client``, the child gets exactly ``env`` (no extra inherited
    variables), its stderr is a pipe we read chunk by chunk, an unexpected exit is reported as
    it happens, and a hung server can be killed at once instead of after the grace periods.
    """
    from mcp.shared.message import SessionMessage

    started = time.perf_counter()
    try:
        process = await anyio.open_process(
            list(argv), env=dict(env), cwd=str(cwd), start_new_session=True
        )
    except BaseException:
        if cleanup is not None:
            cleanup()
        raise
    watch.spawn_seconds = time.perf_counter() - started
    watch.pid = process.pid
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    shutting_down = False
    writer_done = anyio.Event()

    async def read_stdout() -> None:
        assert process.stdout is not None
        # A line can be megabytes long: collect its chunks and join once, at its end.
        pending = bytearray()
        delivering = True
        async with read_writer:
            with contextlib.suppress(
                anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError
            ):
                async for chunk in process.stdout:
                    if not delivering:
                        continue  # drain, so a server flushing output can still exit
                    *complete, rest = chunk.split(b"\n")
                    for piece in complete:
                        pending += piece
                        line = bytes(pending)
                        pending.clear()
                        if not line.strip():
                            continue
                        try:
                            await read_writer.send(_parse_line(line))
                        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                            delivering = False
                            break
                    pending += rest
            if not shutting_down:
                # The server closed stdout on its own: it crashed or exited. Report it (with
                # its exit code when it comes quickly) before the session sees the end of the
                # stream, so a pending call can already tell the model why.
                await _wait_exit(process, 0.5)
                watch.on_exit(process.returncode)

    async def write_stdin() -> None:
        assert process.stdin is not None
        try:
            async with write_reader:
                async for message in write_reader:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await process.stdin.send((data + "\n").encode("utf-8"))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            # The server stopped reading: end the session's stream rather than letting a
            # request wait forever.
            await read_writer.aclose()
        finally:
            writer_done.set()

    async def read_stderr() -> None:
        assert process.stderr is not None
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        with contextlib.suppress(
            anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError
        ):
            async for chunk in process.stderr:
                text = decoder.decode(chunk)
                if text:
                    watch.on_stderr(text)

    async with anyio.create_task_group() as group:
        group.start_soon(read_stdout)
        group.start_soon(write_stdin)
        group.start_soon(read_stderr)
        try:
            yield read_stream, write_stream
        finally:
            shutting_down = True
            # Shielded and bounded: a cancelled caller must neither leak the process nor hang.
            with anyio.CancelScope(shield=True):
                read_stream.close()
                write_stream.close()
                with anyio.move_on_after(0.5):
                    await writer_done.wait()
                await _stop_process(process, kill=watch.kill_on_close())
                if cleanup is not None:
                    cleanup()  # the sandbox's proxy and socket outlive the process otherwise
                for stream in (read_stream, write_stream, read_writer, write_reader):
                    await stream.aclose()
            group.cancel_scope.cancel()


def stdio_transport(
    command: str,
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    runtime: SkillRuntime,
    allowed_domains: Sequence[str],
    watch: ProcessWatch,
) -> AbstractAsyncContextManager[TransportStreams]:
    """The transport to a stdio server, spawned in the workspace (and the run's sandbox).

    Args:
        command: The program, as :func:`~runtime.skills.mcp.launch.stdio_launch` resolved it.
        args: Its arguments.
        env: Its whole environment.
        runtime: The owning run: workspace and sandbox.
        allowed_domains: Domains a sandboxed server may reach besides its package registry.
        watch: Receives the server's stderr, its exit and its pid.

    Returns:
        A context manager that spawns the server on entry and stops it on exit.
    """
    argv: list[str] = [command, *args]
    cleanup: Callable[[], None] | None = None
    if runtime.sandbox is not None:
        from runtime.sandbox import registry_domains

        domains = [*allowed_domains, *registry_domains(command)]
        wrapped = runtime.sandbox.wrap(
            argv, env=env, cwd=runtime.workspace, allowed_domains=domains
        )
        argv, env, cleanup = list(wrapped.argv), dict(wrapped.env), wrapped.cleanup
    return _process_transport(argv, env, runtime.workspace, watch, cleanup=cleanup)
