"""MCP skills: servers started as child processes (stdio) or reached over HTTP (SSE, streamable).

One :class:`McpSkill` per ``mcpStdioSkill`` / ``mcpSseSkill`` / ``mcpStreamableHttpSkill`` table
(reference §1.4, §5.10). What this module guarantees:

* **One task owns each connection.** The MCP client and its transport are anyio context managers
  whose cancel scopes must be entered and exited by the same task. Each skill therefore runs its
  whole connection inside one dedicated *host task*: it enters the contexts, reports ready, waits
  for the close signal, and exits the contexts. Tool calls from any task go through the session
  (the SDK allows that); :meth:`McpSkill.close`, called from the run's exit stack, signals the
  host and waits for it. This is what lets skills start concurrently and start lazily (on a first
  tool call made from a tool-call task) without breaking anyio's rules.
* **A skill's stderr never reaches the terminal.** The child's stderr is a pipe we read; every
  chunk becomes a ``skillStderr`` event, and is echoed to our stderr only in verbose mode.
* **A skill's output is bounded** (:class:`OutputLimits`, per skill in perstack.toml). A tool
  result hands the model at most ``maxResultChars`` characters of text and
  ``maxResultBinaryBytes`` of images and files, plus a note saying what was left out; results
  are cut here, at the source, because every later copy (``resolveToolResults``, each
  checkpoint, the next prompts) repeats them. Stored stderr is split into events of at most
  ``maxStderrMessageBytes`` and stops after ``maxStderrBytes`` per run with one notice.
* **Failures the model can react to come back as error tool results** (§18.4): MCP ``isError``,
  protocol errors ("Error calling tool X: ..."), a server that crashed or did not answer within
  the per-call timeout. A dead skill emits ``skillDisconnected`` with a reason, and every later
  call to it returns an error result, so the run goes on and the model knows.
* **Exact child environment.** A stdio server gets the safe variables plus its ``requiredEnv``
  (:func:`runtime.config.env.skill_env`), nothing else.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import logging
import os
import re
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import anyio
import anyio.abc

from runtime.config.env import skill_env
from runtime.config.schema import (
    BASE_SKILL_NAME,
    DEFAULT_MAX_RESULT_BINARY_BYTES,
    DEFAULT_MAX_RESULT_CHARS,
    DEFAULT_MAX_STDERR_BYTES,
    DEFAULT_MAX_STDERR_MESSAGE_BYTES,
    McpSseSkill,
    McpStdioSkill,
    McpStreamableHttpSkill,
    SkillConfig,
    is_loopback_host,
    is_private_host,
)
from runtime.errors import ConfigError, SkillError
from runtime.schema.events import (
    PerstackEvent,
    ServerInfo,
    SkillConnected,
    SkillDisconnected,
    SkillStarting,
    SkillStderr,
)
from runtime.schema.messages import FileInlinePart, ImageInlinePart, TextPart
from runtime.skills.types import ResultPart, SkillKind, ToolDefinition, ToolOutcome
from runtime.version import __version__

if TYPE_CHECKING:
    # The MCP SDK (with httpx2 and the protocol models) takes ~0.4 s to import. It is imported
    # where it is used, so runs and commands without MCP servers never pay for it.
    import mcp_types as types
    from mcp import Client
    from mcp.client._transport import TransportStreams
    from mcp.shared.message import SessionMessage

    from runtime.sandbox import Sandbox

__all__ = [
    "DEFAULT_CALL_TIMEOUT_S",
    "DEFAULT_START_TIMEOUT_S",
    "McpSkill",
    "McpSkillConfig",
    "OutputLimits",
    "SkillRuntime",
    "convert_result",
    "is_bundled_base",
    "limit_result",
    "stdio_launch",
]

McpSkillConfig = McpStdioSkill | McpSseSkill | McpStreamableHttpSkill

DEFAULT_CALL_TIMEOUT_S = 60.0
"""Seconds a tool call may take before the skill is considered hung (§18.4)."""

DEFAULT_START_TIMEOUT_S = 120.0
"""Seconds a server may take from spawn to its tool list (``npx -y`` may download first)."""

_CLOSE_GRACE_S = 2.0
"""After stdin closes, how long a server may take to exit before it is terminated."""

_TERM_GRACE_S = 2.0
"""After SIGTERM, how long before SIGKILL."""

_STDERR_TAIL_LINES = 20
"""Stderr lines kept to explain a server that failed to start."""

_STDERR_TAIL_CHARS = 500
"""Characters kept of each of those lines."""

_MAX_RESULT_PARTS = 1000
"""Content parts of one tool result that reach the model (each costs storage, even if tiny)."""

_MAX_NOTE_MIME_TYPES = 5
"""Media types named in the note about omitted binary parts."""

_MAX_MIME_TYPE_CHARS = 255
"""Longest media type accepted on an image or file part (RFC 6838 allows 127 + 1 + 127)."""

_MAX_TOOL_PAGES = 100
"""Guard against a server whose tools/list pagination never ends."""

# The SDK logs transport failures (a server that went away) with tracebacks. With no logging
# configured, Python's last-resort handler would print them on the terminal, where the studio
# draws; the failure already reaches the user as an event and an error tool result.
logging.getLogger("mcp").addHandler(logging.NullHandler())

_PINNED_BASE = re.compile(re.escape(BASE_SKILL_NAME) + r"@\S+")
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _stderr_warning(message: str) -> None:
    print(f"perstack: warning: {message}", file=sys.stderr)


@dataclass(frozen=True)
class SkillRuntime:
    """What an MCP skill needs from whoever runs it (a job's run, or ``perstack install``).

    Attributes:
        env: The loaded environment (process env plus env files); ``requiredEnv`` and header
            ``${VAR}`` references are resolved against it.
        workspace: Working directory of stdio servers.
        publish: Receives the skill's runtime events (``skillStarting``, ``skillConnected``,
            ``skillStderr``, ``skillDisconnected``).
        job_id: Job id stamped on the events.
        run_id: Run id stamped on the events (the segment that opened the skill).
        verbose: Also echo the servers' stderr to our own stderr.
        warn: Operator diagnostics (stderr), e.g. a skill that failed at first use.
    """

    env: Mapping[str, str]
    workspace: Path
    publish: Callable[[PerstackEvent], None]
    job_id: str
    run_id: str
    verbose: bool = False
    warn: Callable[[str], None] = field(default=_stderr_warning)
    sandbox: Sandbox | None = None
    """When set, stdio servers are spawned inside it."""


def is_bundled_base(name: str, skill: SkillConfig, base_command: Sequence[str] | None) -> bool:
    """Whether the base skill runs in process (§1.5).

    That is the case for ``@perstack/base`` as a stdio skill without a pinned version and
    without ``perstackBaseSkillCommand``. A pinned version or an override command makes it an
    ordinary stdio MCP server; an SSE skill of that name stays an SSE skill.

    Args:
        name: The skill's key in the expert's ``skills`` table.
        skill: The skill's configuration.
        base_command: ``perstackBaseSkillCommand`` from perstack.toml, if set.

    Returns:
        True when the in-process base skill should be used.
    """
    if name != BASE_SKILL_NAME or not isinstance(skill, McpStdioSkill) or base_command:
        return False
    argv = [skill.package_name] if skill.package_name else skill.args
    return not any(_PINNED_BASE.fullmatch(arg or "") for arg in argv)


def _is_base_package(arg: str) -> bool:
    return arg == BASE_SKILL_NAME or arg.startswith(BASE_SKILL_NAME + "@")


def stdio_launch(
    name: str, config: McpStdioSkill, base_command: Sequence[str] | None = None
) -> tuple[str, list[str]]:
    """The command and arguments a stdio skill is spawned with (§1.4, §1.5).

    ``packageName`` becomes the only argument; ``npx`` gets ``-y`` prepended when absent
    (``uvx`` is run as is). With ``perstackBaseSkillCommand`` set, any ``npx`` skill whose
    package is ``@perstack/base`` runs that command instead.

    Args:
        name: The skill's name, for error messages.
        config: The skill's configuration.
        base_command: ``perstackBaseSkillCommand`` from perstack.toml, if set.

    Returns:
        ``(command, args)``.

    Raises:
        SkillError: Both or neither of ``packageName`` and ``args`` are given (Perstack's
            messages).
    """
    if config.package_name and config.args:
        raise SkillError(
            f"Skill {name} has both packageName and args. Please provide only one of them.",
            title="Invalid skill",
        )
    if not config.package_name and not config.args:
        raise SkillError(
            f"Skill {name} has no packageName or args. Please provide one of them.",
            title="Invalid skill",
        )
    args = [config.package_name] if config.package_name else list(config.args)
    is_npx = Path(config.command).name == "npx"
    if base_command and is_npx and any(_is_base_package(a) for a in args if a != "-y"):
        return base_command[0], list(base_command[1:])
    if is_npx and "-y" not in args:
        args = ["-y", *args]
    return config.command, args


def convert_result(
    tool_name: str, args: Mapping[str, Any], result: types.CallToolResult
) -> ToolOutcome:
    """Turn an MCP tool result into our tool outcome (§5.9, §18.4).

    ``text`` becomes a text part (empty text: "Error: No content"); ``image`` an inline image;
    an embedded ``resource`` a text part when it has text, else an inline file from its blob.
    ``audio`` and ``resource_link`` blocks are dropped (no model input for them). A result with
    no usable content says so, naming the tool and its arguments; when the server sent only
    ``structuredContent``, that JSON is used instead. MCP ``isError`` is kept (Perstack drops it).

    Args:
        tool_name: The tool that was called.
        args: The arguments it was called with.
        result: What the server returned.

    Returns:
        The outcome for the loop.
    """
    import mcp_types as types

    parts: list[ResultPart] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(TextPart(text=block.text or "Error: No content"))
        elif isinstance(block, types.ImageContent):
            if block.data and block.mime_type:
                parts.append(ImageInlinePart(encoded_data=block.data, mime_type=block.mime_type))
        elif isinstance(block, types.EmbeddedResource):
            resource = block.resource
            if isinstance(resource, types.TextResourceContents):
                parts.append(TextPart(text=resource.text or "Error: No content"))
            elif resource.blob and resource.mime_type:
                parts.append(
                    FileInlinePart(encoded_data=resource.blob, mime_type=resource.mime_type)
                )
    if not parts and result.structured_content is not None:
        parts.append(TextPart(text=json.dumps(result.structured_content, ensure_ascii=False)))
    if not parts:
        shown = json.dumps(dict(args), separators=(",", ":"), ensure_ascii=False)
        parts.append(TextPart(text=f"Tool {tool_name} returned nothing with arguments: {shown}"))
    return ToolOutcome(contents=parts, is_error=bool(result.is_error))


# Output limits ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputLimits:
    """How much of one MCP skill's output reaches the model and the job's storage.

    Attributes:
        result_chars: Characters of text in one tool result (``maxResultChars``).
        result_binary_bytes: Decoded bytes of images and embedded files in one tool result
            (``maxResultBinaryBytes``).
        stderr_bytes: Bytes of the server's stderr stored as ``skillStderr`` events while the
            skill is open, i.e. per run segment (``maxStderrBytes``).
        stderr_message_bytes: Bytes of one ``skillStderr`` event (``maxStderrMessageBytes``).
    """

    result_chars: int = DEFAULT_MAX_RESULT_CHARS
    result_binary_bytes: int = DEFAULT_MAX_RESULT_BINARY_BYTES
    stderr_bytes: int = DEFAULT_MAX_STDERR_BYTES
    stderr_message_bytes: int = DEFAULT_MAX_STDERR_MESSAGE_BYTES

    @classmethod
    def of(cls, config: McpSkillConfig) -> OutputLimits:
        """The limits a skill's table sets, with the defaults for the keys it leaves out."""

        def chosen(value: int | None, default: int) -> int:
            return default if value is None else value

        return cls(
            result_chars=chosen(config.max_result_chars, DEFAULT_MAX_RESULT_CHARS),
            result_binary_bytes=chosen(
                config.max_result_binary_bytes, DEFAULT_MAX_RESULT_BINARY_BYTES
            ),
            stderr_bytes=chosen(
                getattr(config, "max_stderr_bytes", None), DEFAULT_MAX_STDERR_BYTES
            ),
            stderr_message_bytes=chosen(
                getattr(config, "max_stderr_message_bytes", None), DEFAULT_MAX_STDERR_MESSAGE_BYTES
            ),
        )


def _binary_size(part: ImageInlinePart | FileInlinePart) -> int:
    """Decoded size of the base64 payload."""
    data = part.encoded_data
    return len(data) * 3 // 4 - data[-2:].count("=")


def _plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def limit_result(outcome: ToolOutcome, limits: OutputLimits, skill_name: str) -> ToolOutcome:
    """Bound one tool result before anything stores it or shows it to the model.

    Text parts are kept in order until ``limits.result_chars`` characters, the part that
    crosses the limit is cut there, and later text is dropped. Images and embedded files are
    kept whole while they fit in ``limits.result_binary_bytes`` (a partial image is useless)
    and dropped otherwise. At most 1,000 parts are kept. When anything was left out, a last
    text part says what, and which key of the skill's table raises the limit, e.g. ``[truncated:
    20,000,000 characters, showing the first 100,000; raise maxResultChars on skill "files" to
    see more]``.

    Args:
        outcome: The converted result (or an error outcome carrying the server's message).
        limits: The skill's limits.
        skill_name: The skill, named in the note.

    Returns:
        ``outcome`` itself when it is within the limits, else the bounded outcome.
    """
    chars_left = limits.result_chars
    bytes_left = limits.result_binary_bytes
    total_chars = 0
    kept: list[ResultPart] = []
    omitted_types: list[str] = []
    omitted_bytes = 0
    extra_parts = 0
    for part in outcome.contents:
        if isinstance(part, TextPart):
            total_chars += len(part.text)
            if chars_left == 0:
                continue
            if len(kept) >= _MAX_RESULT_PARTS:
                extra_parts += 1
                continue
            if len(part.text) > chars_left:
                part = part.model_copy(update={"text": part.text[:chars_left]})
            chars_left -= len(part.text)
            kept.append(part)
            continue
        size = _binary_size(part)
        # A media type is a short name (RFC 6838); a longer one would be stored as sent.
        if size > bytes_left or len(part.mime_type) > _MAX_MIME_TYPE_CHARS:
            omitted_types.append(part.mime_type[:_MAX_MIME_TYPE_CHARS])
            omitted_bytes += size
            continue
        if len(kept) >= _MAX_RESULT_PARTS:
            extra_parts += 1
            continue
        bytes_left -= size
        kept.append(part)
    notes: list[str] = []
    if total_chars > limits.result_chars:
        notes.append(
            f"[truncated: {total_chars:,} characters, showing the first "
            f"{limits.result_chars - chars_left:,}; raise maxResultChars on skill "
            f'"{skill_name}" to see more]'
        )
    if omitted_types:
        kinds = sorted(set(omitted_types))
        named = ", ".join(kinds[:_MAX_NOTE_MIME_TYPES]) + (
            ", ..." if len(kinds) > _MAX_NOTE_MIME_TYPES else ""
        )
        count = _plural(len(omitted_types), "image or file", "images or files")
        notes.append(
            f"[omitted: {count} ({named}, {omitted_bytes:,} bytes), over the limit of "
            f"{limits.result_binary_bytes:,} bytes of images and files per result; raise "
            f'maxResultBinaryBytes on skill "{skill_name}" to receive them]'
        )
    if extra_parts:
        notes.append(
            f"[omitted: {_plural(extra_parts, 'more content part', 'more content parts')}; "
            f"at most {_MAX_RESULT_PARTS:,} parts of a result are shown]"
        )
    if not notes:
        return outcome
    return ToolOutcome(contents=[*kept, TextPart(text="\n".join(notes))], is_error=outcome.is_error)


def _cut_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits in ``max_bytes``."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


class _StderrBudget:
    """Turns a server's stderr into bounded messages and stops storing it at a total."""

    def __init__(self, skill_name: str, limits: OutputLimits) -> None:
        self._skill_name = skill_name
        self._per_message = limits.stderr_message_bytes
        self._total = limits.stderr_bytes
        self._left = limits.stderr_bytes
        self.exhausted = False
        """The total was reached and the notice given: nothing more is stored."""

    def messages(self, text: str) -> list[str]:
        """The messages to store for one (stripped, non-empty) chunk of stderr."""
        if self.exhausted:
            return []
        found: list[str] = []
        for message in self._split(text):
            size = len(message.encode("utf-8"))
            if size <= self._left:
                self._left -= size
                found.append(message)
                continue
            head = _cut_utf8(message, self._left).rstrip()
            if head:
                found.append(head)
            found.append(
                f'[stderr truncated: skill "{self._skill_name}" wrote more than '
                f"{self._total:,} bytes of stderr in this run; the rest is not stored. Raise "
                f'maxStderrBytes on skill "{self._skill_name}" to keep more]'
            )
            self.exhausted = True
            break
        return found

    def _split(self, text: str) -> list[str]:
        """Split at line ends into messages of at most the per-message size; cut longer lines."""
        limit = self._per_message
        if len(text.encode("utf-8")) <= limit:
            return [text]
        found: list[str] = []
        lines: list[str] = []
        size = 0

        def flush() -> None:
            nonlocal size
            message = "\n".join(lines).strip()
            if message:
                found.append(message)
            lines.clear()
            size = 0

        for line in text.split("\n"):
            line_size = len(line.encode("utf-8"))
            if line_size > limit:
                flush()
                head = _cut_utf8(line, limit)
                rest = line_size - len(head.encode("utf-8"))
                found.append(
                    f"{head} [... {rest:,} more bytes of this line not stored; raise "
                    f'maxStderrMessageBytes on skill "{self._skill_name}" to keep more]'
                )
                continue
            if lines and size + 1 + line_size > limit:
                flush()
            size += line_size + (1 if lines else 0)
            lines.append(line)
        flush()
        return found


def _leaf(error: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups from anyio task groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _describe(error: BaseException) -> str:
    from mcp.shared.exceptions import MCPError

    error = _leaf(error)
    if isinstance(error, MCPError):
        return error.message
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


# stdio transport ------------------------------------------------------------------------------


@dataclass
class _ProcessWatch:
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
async def _stdio_transport(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    watch: _ProcessWatch,
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


# The skill ------------------------------------------------------------------------------------


@dataclass
class _Timings:
    spawn_ms: int | None = None
    handshake_ms: int = 0
    discovery_ms: int = 0
    total_ms: int = 0


class McpSkill:
    """An MCP server as a skill: stdio child process, legacy SSE or streamable HTTP.

    Create it, then either :meth:`start` it (connect and list tools now) or give it
    ``cached_tools`` (from perstack.lock): it then advertises those and connects on the first
    tool call. Always :meth:`close` it, from the task that owns the run.

    Args:
        name: The skill's key in the expert's ``skills`` table.
        config: Its configuration.
        runtime: Environment, workspace and event sink of the owning run.
        base_command: ``perstackBaseSkillCommand`` from perstack.toml, if set.
        call_timeout: Seconds a tool call may take before the server is considered hung and
            stopped; :data:`DEFAULT_CALL_TIMEOUT_S` when None.
        start_timeout: Seconds from spawn (or connect) to the tool list;
            :data:`DEFAULT_START_TIMEOUT_S` when None.
        cached_tools: Tool definitions recorded by ``perstack install``; when given, the skill
            starts on its first call instead of in :meth:`start`.
        limits: Bounds on its results and stored stderr; by default those its table sets
            (:meth:`OutputLimits.of`).
    """

    kind: SkillKind = "mcp"

    def __init__(
        self,
        name: str,
        config: McpSkillConfig,
        runtime: SkillRuntime,
        *,
        base_command: Sequence[str] | None = None,
        call_timeout: float | None = None,
        start_timeout: float | None = None,
        cached_tools: Sequence[ToolDefinition] | None = None,
        limits: OutputLimits | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.limits = OutputLimits.of(config) if limits is None else limits
        """Bounds on what reaches the model and the job's storage."""
        self._stderr_budget = _StderrBudget(name, self.limits)
        self._runtime = runtime
        self._base_command = list(base_command) if base_command else None
        # Read at construction (not bound as defaults) so the module constants configure runs.
        self._call_timeout = DEFAULT_CALL_TIMEOUT_S if call_timeout is None else call_timeout
        self._start_timeout = DEFAULT_START_TIMEOUT_S if start_timeout is None else start_timeout
        self._deferred = cached_tools is not None
        self._tools: list[ToolDefinition] = list(cached_tools or [])
        self._client: Client | None = None
        self._host: asyncio.Task[None] | None = None
        self._scope: anyio.CancelScope | None = None
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._start_lock = asyncio.Lock()
        self._start_error: SkillError | None = None
        self._connected = False
        self._failure: str | None = None
        """Why the skill can no longer be called (crash, hang, closed); None while usable."""
        self._kill_on_close = False
        self._exit_code: int | None = None
        self._stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
        self._launch: tuple[str, list[str]] | None = None
        self._watch: _ProcessWatch | None = None
        self._deadline = 0.0
        self._host_errors: list[BaseException] = []
        self.server_info: ServerInfo | None = None
        """Name and version the server reported, once connected."""
        self.timings: _Timings | None = None
        """Start-up timings, once connected."""

    # Skill protocol ---------------------------------------------------------------------------

    @property
    def deferred(self) -> bool:
        """True when the tools came from perstack.lock and the server starts on first use."""
        return self._deferred

    @property
    def connected(self) -> bool:
        """True while the server is connected and usable."""
        return self._client is not None and self._failure is None

    @property
    def pid(self) -> int | None:
        """Process id of a spawned stdio server (None for remote servers or before start)."""
        return self._watch.pid if self._watch is not None else None

    def tools(self) -> list[ToolDefinition]:
        """Every tool the server offers (pick/omit are applied by the caller)."""
        return list(self._tools)

    async def start(self) -> None:
        """Spawn or connect, perform the MCP handshake and list the tools.

        Emits ``skillStarting`` (stdio only) before spawning and ``skillConnected`` with the
        timings after the tool list. Calling it again after success does nothing.

        Raises:
            SkillError: The configuration cannot be started (``packageName``/``args``, a
                missing ``requiredEnv`` variable or header variable, a non-public endpoint),
                the command does not exist, the server exited or failed during the handshake,
                or it did not answer within the start timeout.
        """
        async with self._start_lock:
            if self._start_error is not None:
                raise self._start_error
            if self._connected:
                return
            if self._failure is not None:
                raise SkillError(f'Skill "{self.name}" is not available: {self._failure}')
            try:
                if self._host is None:
                    self._launch_host()
                # Also reached when an earlier start() was cancelled while the host went on.
                await self._await_host()
            except SkillError as error:
                self._start_error = error
                raise

    async def call(self, tool_name: str, args: dict[str, Any]) -> ToolOutcome:
        """Call one tool; every failure is returned as an error outcome, never raised.

        A deferred skill connects first. A server that crashes, or does not answer within the
        call timeout, is stopped: ``skillDisconnected`` is emitted with the reason and every
        later call returns an error outcome. The result, like an error message from the server,
        is bounded by :attr:`limits` (:func:`limit_result`).

        Args:
            tool_name: The tool to call.
            args: Its arguments.

        Returns:
            The converted result, or an error outcome the model can read.
        """
        outcome = await self._call(tool_name, args)
        return limit_result(outcome, self.limits, self.name)

    async def _call(self, tool_name: str, args: dict[str, Any]) -> ToolOutcome:
        if self._client is None and self._failure is None:
            try:
                await self.start()
            except SkillError as error:
                if self._failure is None:
                    self._failure = f"it could not be started: {error}"
                    self._runtime.warn(str(error))
        client = self._client
        if self._failure is not None or client is None:
            return ToolOutcome.error(
                f"Error calling tool {tool_name}: skill {self.name!r} is not available "
                f"({self._failure or 'not started'}). Its tools cannot be used in this run."
            )
        import httpx2
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        try:
            async with asyncio.timeout(self._call_timeout):
                result = await client.call_tool(tool_name, args)
        except TimeoutError:
            return self._hung(tool_name)
        except MCPError as error:
            if error.code == REQUEST_TIMEOUT:
                return self._hung(tool_name)
            if error.code == CONNECTION_CLOSED:
                return self._crashed(tool_name)
            return ToolOutcome.error(f"Error calling tool {tool_name}: {error.message}")
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, httpx2.TransportError):
            return self._crashed(tool_name)
        except Exception as error:
            # A result that does not match its schema, an output-schema violation, a transport
            # hiccup: the model is told, and the skill stays up for the next call.
            if self._failure is not None:
                return self._crashed(tool_name)
            return ToolOutcome.error(f"Error calling tool {tool_name}: {_describe(error)}")
        return convert_result(tool_name, args, result)

    async def close(self) -> None:
        """Stop the server (or disconnect) and emit ``skillDisconnected`` if it was connected.

        Runs the shutdown in the skill's host task and waits for it; safe to call twice, and on
        a skill that was never started (nothing happens then).
        """
        host = self._host
        if host is None:
            return
        if not host.done():
            if self._ready.is_set():
                self._closing.set()
            elif self._scope is not None:
                self._scope.cancel()
            try:
                await asyncio.wait([host])
            except asyncio.CancelledError:
                # Our own task is being cancelled while waiting: still never leak the server.
                self._kill_on_close = True
                self._closing.set()
                raise
        if self._connected and self._failure is None:
            self._failure = "the skill was closed"
            self._publish(SkillDisconnected(**self._fields(), skill_name=self.name))

    # Start-up ---------------------------------------------------------------------------------

    def _fields(self) -> dict[str, Any]:
        return {"job_id": self._runtime.job_id, "run_id": self._runtime.run_id}

    def _publish(self, event: PerstackEvent) -> None:
        self._runtime.publish(event)

    def _command_text(self) -> str:
        if self._launch is None:
            return ""
        command, args = self._launch
        return " ".join([command, *args])

    def _transport(self, watch: _ProcessWatch) -> AbstractAsyncContextManager[TransportStreams]:
        """Resolve the configuration into a transport (and emit ``skillStarting`` for stdio)."""
        config = self.config
        if isinstance(config, McpStdioSkill):
            command, args = stdio_launch(self.name, config, self._base_command)
            try:
                env = skill_env(config.required_env, self._runtime.env, self.name)
            except ConfigError as error:
                raise SkillError(error.message, title="Missing environment variable") from None
            self._launch = (command, args)
            self._publish(
                SkillStarting(**self._fields(), skill_name=self.name, command=command, args=args)
            )
            argv: list[str] = [command, *args]
            cleanup: Callable[[], None] | None = None
            if self._runtime.sandbox is not None:
                from runtime.sandbox import registry_domains

                domains = [*(config.allowed_domains or []), *registry_domains(command)]
                wrapped = self._runtime.sandbox.wrap(
                    argv, env=env, cwd=self._runtime.workspace, allowed_domains=domains
                )
                argv, env, cleanup = list(wrapped.argv), dict(wrapped.env), wrapped.cleanup
            return _stdio_transport(argv, env, self._runtime.workspace, watch, cleanup=cleanup)
        endpoint = config.endpoint
        parsed = urlparse(endpoint)
        # Re-checked at connect time (Perstack does too): the config may come from elsewhere.
        public_https = parsed.scheme == "https" and not is_private_host(parsed.hostname)
        loopback = parsed.scheme in ("http", "https") and is_loopback_host(parsed.hostname)
        if not (public_https or loopback):
            raise SkillError(
                f'Skill "{self.name}": endpoint {endpoint!r} must be a public HTTPS URL '
                "(or a loopback URL for testing)",
                title="Invalid skill endpoint",
            )
        if isinstance(config, McpStreamableHttpSkill):
            headers = {key: self._expand(key, value) for key, value in config.headers.items()}
            return _streamable_transport(endpoint, headers)
        from mcp.client.sse import sse_client

        return sse_client(endpoint, timeout=30.0)

    def _expand(self, header: str, value: str) -> str:
        def replace(match: re.Match[str]) -> str:
            variable = match.group(1)
            found = self._runtime.env.get(variable)
            if not found:
                raise SkillError(
                    f'Skill "{self.name}": header {header!r} uses ${{{variable}}}, but '
                    f"environment variable {variable} is not set. Set it in the environment "
                    "or in .env.",
                    title="Missing environment variable",
                )
            return found

        return _ENV_REFERENCE.sub(replace, value)

    def _launch_host(self) -> None:
        """Resolve the transport (emitting ``skillStarting``) and start the host task."""
        started = time.perf_counter()
        self._deadline = asyncio.get_running_loop().time() + self._start_timeout
        watch = _ProcessWatch(
            on_stderr=self._on_stderr,
            on_exit=self._on_exit,
            kill_on_close=lambda: self._kill_on_close,
        )
        self._watch = watch
        transport = self._transport(watch)
        self._scope = anyio.CancelScope()
        self._host = asyncio.create_task(
            self._run_host(transport, self._scope, watch, started, self._host_errors),
            name=f"mcp-skill:{self.name}",
        )

    async def _await_host(self) -> None:
        """Wait until the host is connected (then emit ``skillConnected``) or has failed."""
        assert self._host is not None and self._scope is not None
        try:
            async with asyncio.timeout_at(self._deadline):
                await self._ready.wait()
        except TimeoutError:
            self._scope.cancel()
            await asyncio.wait([self._host])
            raise SkillError(
                f'Skill "{self.name}" did not finish starting within {self._start_timeout:g} s'
                + self._where()
                + self._stderr_hint(),
                title="Skill failed to start",
            ) from None
        errors = self._host_errors
        if errors or self._client is None:
            raise self._start_failure(errors[0] if errors else None)
        assert self.timings is not None
        self._connected = True
        self._publish(
            SkillConnected(
                **self._fields(),
                skill_name=self.name,
                server_info=self.server_info,
                spawn_duration_ms=self.timings.spawn_ms,
                handshake_duration_ms=self.timings.handshake_ms,
                tool_discovery_duration_ms=self.timings.discovery_ms,
                connect_duration_ms=(self.timings.spawn_ms or 0) + self.timings.handshake_ms,
                total_duration_ms=self.timings.total_ms,
            )
        )

    async def _run_host(
        self,
        transport: AbstractAsyncContextManager[TransportStreams],
        scope: anyio.CancelScope,
        watch: _ProcessWatch,
        started: float,
        errors: list[BaseException],
    ) -> None:
        """Own the connection: enter the contexts, report ready, wait for close, exit them."""
        import mcp_types as types
        from mcp import Client

        try:
            with scope:
                client = Client(
                    transport,
                    # The initialize handshake every server understands; the 2026 "auto"
                    # probe costs a round trip and some older servers never answer it.
                    mode="legacy",
                    cache=None,
                    client_info=types.Implementation(name="perstack-runtime", version=__version__),
                )
                async with client:
                    connected = time.perf_counter()
                    tools = await self._list_tools(client)
                    listed = time.perf_counter()
                    info = client.server_info
                    if info is not None:
                        self.server_info = ServerInfo(name=info.name, version=info.version)
                    spawn = watch.spawn_seconds if self._launch is not None else None
                    handshake = connected - started - (spawn or 0.0)
                    self.timings = _Timings(
                        spawn_ms=_ms(spawn) if spawn is not None else None,
                        handshake_ms=max(0, _ms(handshake)),
                        discovery_ms=_ms(listed - connected),
                        total_ms=_ms(listed - started),
                    )
                    if not self._deferred:
                        self._tools = tools
                    self._client = client
                    self._ready.set()
                    await self._closing.wait()
        except Exception as error:
            if not self._ready.is_set():
                errors.append(error)
            elif not self._closing.is_set():
                self._lose(f"the connection failed: {_describe(error)}")
            # else: a failure while shutting down changes nothing for the run.
        finally:
            self._client = None
            self._ready.set()

    async def _list_tools(self, client: Client) -> list[ToolDefinition]:
        definitions: list[ToolDefinition] = []
        cursor: str | None = None
        for _ in range(_MAX_TOOL_PAGES):
            page = await client.list_tools(cursor=cursor)
            definitions.extend(
                ToolDefinition(
                    skill_name=self.name,
                    name=tool.name,
                    description=tool.description or "",
                    input_schema=dict(tool.input_schema),
                )
                for tool in page.tools
            )
            cursor = page.next_cursor
            if cursor is None:
                break
        return definitions

    def _where(self) -> str:
        if self._launch is not None:
            return f" (command: {self._command_text()})"
        endpoint = getattr(self.config, "endpoint", None)
        return f" (endpoint: {endpoint})" if endpoint else ""

    def _stderr_hint(self) -> str:
        if not self._stderr_tail:
            return ""
        return "\nLast lines of its stderr:\n  " + "\n  ".join(self._stderr_tail)

    def _start_failure(self, error: BaseException | None) -> SkillError:
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED

        leaf = _leaf(error) if error is not None else None
        if isinstance(leaf, SkillError):
            return leaf
        if isinstance(leaf, FileNotFoundError) and self._launch is not None:
            command = self._launch[0]
            return SkillError(
                f'Skill "{self.name}": command {command!r} not found (tried to run: '
                f"{self._command_text()}). Install it, or fix the skill's command in "
                "perstack.toml.",
                title="Skill command not found",
            )
        if isinstance(leaf, PermissionError) and self._launch is not None:
            return SkillError(
                f'Skill "{self.name}": command {self._launch[0]!r} cannot be executed '
                f"({leaf.strerror or leaf}).",
                title="Skill failed to start",
            )
        if self._exit_code is not None or (
            isinstance(leaf, MCPError) and leaf.code == CONNECTION_CLOSED
        ):
            code = f" with code {self._exit_code}" if self._exit_code is not None else ""
            return SkillError(
                f'Skill "{self.name}" exited{code} before completing the MCP handshake'
                + self._where()
                + self._stderr_hint(),
                title="Skill failed to start",
            )
        reason = _describe(leaf) if leaf is not None else "unknown error"
        return SkillError(
            f'Skill "{self.name}" failed to start: {reason}' + self._where() + self._stderr_hint(),
            title="Skill failed to start",
        )

    # Failures while running -----------------------------------------------------------------

    def _on_stderr(self, text: str) -> None:
        for line in text.splitlines():
            if line.strip():
                self._stderr_tail.append(line.rstrip()[:_STDERR_TAIL_CHARS])
        message = text.strip()
        if message:
            for stored in self._stderr_budget.messages(message):
                self._publish(SkillStderr(**self._fields(), skill_name=self.name, message=stored))
        if self._runtime.verbose:
            for line in text.splitlines():
                print(f"[{self.name}] {line}", file=sys.stderr)

    def _on_exit(self, code: int | None) -> None:
        self._exit_code = code
        if self._connected:
            detail = f" with code {code}" if code is not None else ""
            self._lose(f"the server process exited{detail}")

    def _lose(self, reason: str, *, kill: bool = False) -> None:
        """Mark the skill dead (once), emit ``skillDisconnected`` and let the host shut down."""
        if self._failure is not None:
            return
        self._failure = reason
        self._kill_on_close = kill
        if self._connected:
            self._publish(SkillDisconnected(**self._fields(), skill_name=self.name, reason=reason))
        self._closing.set()

    def _hung(self, tool_name: str) -> ToolOutcome:
        reason = f"tool {tool_name!r} did not answer within {self._call_timeout:g} s"
        self._lose(reason, kill=True)
        return ToolOutcome.error(
            f"Error calling tool {tool_name}: skill {self.name!r} did not answer within "
            f"{self._call_timeout:g} s, so it was stopped. Its tools cannot be used in this run."
        )

    def _crashed(self, tool_name: str) -> ToolOutcome:
        self._lose("the connection to the server was lost")
        return ToolOutcome.error(
            f"Error calling tool {tool_name}: skill {self.name!r} stopped ({self._failure}). "
            "Its tools cannot be used in this run."
        )


@asynccontextmanager
async def _streamable_transport(
    endpoint: str, headers: Mapping[str, str]
) -> AsyncIterator[TransportStreams]:
    # Our own HTTP client so the headers apply to every request; the transport does not close
    # a client it was given, so it is closed here, in the same task.
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    timeout = httpx2.Timeout(30.0, read=300.0)
    async with httpx2.AsyncClient(headers=dict(headers), timeout=timeout) as http:
        async with streamable_http_client(endpoint, http_client=http) as streams:
            yield streams
