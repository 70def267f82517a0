"""The MCP skill: one server's connection, owned by one host task, from start to close.

The MCP client and its transport are anyio context managers whose cancel scopes must be entered
and exited by the same task. Each skill therefore runs its whole connection inside one dedicated
*host task*: it enters the contexts, reports ready, waits for the close signal, and exits the
contexts. Tool calls from any task go through the session (the SDK allows that);
:meth:`McpSkill.close`, called from the run's exit stack, signals the host and waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from runtime.config.env import skill_env
from runtime.config.schema import McpStdioSkill
from runtime.errors import ConfigError, SkillError
from runtime.schema.events import (
    PerstackEvent,
    ServerInfo,
    SkillConnected,
    SkillDisconnected,
    SkillStarting,
    SkillStderr,
)
from runtime.skills.mcp.context import McpSkillConfig, SkillRuntime
from runtime.skills.mcp.failures import command_line, describe, start_failure
from runtime.skills.mcp.launch import stdio_launch
from runtime.skills.mcp.remote import remote_transport
from runtime.skills.mcp.results import OutputLimits, convert_result, limit_result
from runtime.skills.mcp.stderr import StderrCapture
from runtime.skills.mcp.stdio import ProcessWatch, stdio_transport
from runtime.skills.types import SkillKind, ToolDefinition, ToolOutcome
from runtime.version import __version__

if TYPE_CHECKING:
    # The MCP SDK (with httpx2 and the protocol models) takes ~0.4 s to import. It is imported
    # where it is used, so runs and commands without MCP servers never pay for it.
    from mcp import Client
    from mcp.client._transport import TransportStreams

__all__ = ["DEFAULT_CALL_TIMEOUT_S", "DEFAULT_START_TIMEOUT_S", "McpSkill"]

DEFAULT_CALL_TIMEOUT_S = 60.0
"""Seconds a tool call may take before the skill is considered hung (§18.4)."""

DEFAULT_START_TIMEOUT_S = 120.0
"""Seconds a server may take from spawn to its tool list (``npx -y`` may download first)."""

_MAX_TOOL_PAGES = 100
"""Guard against a server whose tools/list pagination never ends."""

# The SDK logs transport failures (a server that went away) with tracebacks. With no logging
# configured, Python's last-resort handler would print them on the terminal, where the studio
# draws; the failure already reaches the user as an event and an error tool result.
logging.getLogger("mcp").addHandler(logging.NullHandler())


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


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
        self._stderr = StderrCapture(name, self.limits, self._store_stderr, echo=runtime.verbose)
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
        self._launch: tuple[str, list[str]] | None = None
        self._watch: ProcessWatch | None = None
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
            return ToolOutcome.error(f"Error calling tool {tool_name}: {describe(error)}")
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

    def _transport(self, watch: ProcessWatch) -> AbstractAsyncContextManager[TransportStreams]:
        """Resolve the configuration into a transport (and emit ``skillStarting`` for stdio)."""
        config = self.config
        if not isinstance(config, McpStdioSkill):
            return remote_transport(self.name, config, self._runtime.env)
        command, args = stdio_launch(self.name, config, self._base_command)
        try:
            env = skill_env(config.required_env, self._runtime.env, self.name)
        except ConfigError as error:
            raise SkillError(error.message, title="Missing environment variable") from None
        self._launch = (command, args)
        self._publish(
            SkillStarting(**self._fields(), skill_name=self.name, command=command, args=args)
        )
        return stdio_transport(
            command,
            args,
            env,
            runtime=self._runtime,
            allowed_domains=config.allowed_domains or [],
            watch=watch,
        )

    def _launch_host(self) -> None:
        """Resolve the transport (emitting ``skillStarting``) and start the host task."""
        started = time.perf_counter()
        self._deadline = asyncio.get_running_loop().time() + self._start_timeout
        watch = ProcessWatch(
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
                + self._stderr.hint(),
                title="Skill failed to start",
            ) from None
        errors = self._host_errors
        if errors or self._client is None:
            raise start_failure(
                self.name,
                errors[0] if errors else None,
                launch=self._launch,
                exit_code=self._exit_code,
                context=self._where() + self._stderr.hint(),
            )
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
        watch: ProcessWatch,
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
                self._lose(f"the connection failed: {describe(error)}")
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
            return f" (command: {command_line(self._launch)})"
        endpoint = getattr(self.config, "endpoint", None)
        return f" (endpoint: {endpoint})" if endpoint else ""

    # Failures while running -----------------------------------------------------------------

    def _on_stderr(self, text: str) -> None:
        self._stderr.feed(text)

    def _store_stderr(self, message: str) -> None:
        self._publish(SkillStderr(**self._fields(), skill_name=self.name, message=message))

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
