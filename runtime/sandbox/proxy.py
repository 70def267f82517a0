"""The host-side allow-listing proxy, the only way out of a sandbox's network namespace.

A sandboxed process has no network interface but loopback. Its only way out is
``127.0.0.1:3128`` on that loopback, served by this proxy on the runtime's event loop: either
directly (:meth:`ProxyServer.serve`, a listener created inside the sandbox's network namespace,
see :mod:`runtime.sandbox.netns`) or, on the fallback, through the in-sandbox forwarder
(``forward.py``), which relays to a UNIX socket bind-mounted from the host
(:meth:`ProxyServer.listen`). It speaks the two forms HTTP clients use with ``HTTP_PROXY``:

* ``CONNECT host:port`` (HTTPS and any TLS), answered ``200`` and then tunnelled byte for byte;
* an absolute-URI request (``GET http://host/path``) for plain HTTP, forwarded in origin form
  with ``Connection: close``.

Each request is decided against the skill's :class:`~runtime.sandbox.policy.AllowList`, the
allowed ports and the resolved addresses (see :mod:`runtime.sandbox.policy`); every decision is
reported through ``on_access`` as a :class:`~runtime.sandbox.policy.ProxyDecision`. The upstream
connection goes to the address that was checked, never to a second resolution of the name, so
DNS rebinding between check and connect is not possible.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Iterable
from typing import Literal
from urllib.parse import urlsplit

from runtime.sandbox.policy import (
    AllowList,
    ProxyDecision,
    is_ip_literal,
    is_public_address,
    normalize_host,
)

__all__ = ["DEFAULT_ALLOWED_PORTS", "ProxyServer"]

DEFAULT_ALLOWED_PORTS: frozenset[int] = frozenset({80, 443})
"""Ports reachable by default: plain HTTP and HTTPS, as web APIs and package registries use."""

_HEAD_LIMIT = 64 * 1024
_HEAD_TIMEOUT_S = 30.0
_CONNECT_TIMEOUT_S = 10.0
_CHUNK = 64 * 1024
# Hop-by-hop headers the proxy consumes or replaces instead of forwarding.
_DROPPED_HEADERS = frozenset(
    {"proxy-connection", "proxy-authorization", "connection", "keep-alive"}
)

AccessCallback = Callable[[ProxyDecision], None]


class _Refused(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _split_authority(authority: str, default_port: int) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` into its parts; raises ValueError when malformed."""
    if authority.startswith("["):
        end = authority.index("]")
        host, rest = authority[1:end], authority[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError(authority)
    elif authority.count(":") == 1:
        host, port_text = authority.split(":")
    else:
        host, port_text = authority, ""
    port = int(port_text) if port_text else default_port
    if not host or not 0 < port < 65536:
        raise ValueError(authority)
    return host, port


class ProxyServer:
    """An allow-listing HTTP proxy on a socket, served by the running asyncio loop.

    Args:
        allowed_domains: Domain patterns the sandboxed process may reach.
        on_access: Called with every allow/block decision, on the event loop's thread.
        allowed_ports: Destination ports allowed; None allows any port.
        allow_private: Skip the address check (loopback, private, link-local): for tests that
            talk to a server on 127.0.0.1, never for real runs.
    """

    def __init__(
        self,
        allowed_domains: Iterable[str],
        *,
        on_access: AccessCallback | None = None,
        allowed_ports: Iterable[int] | None = DEFAULT_ALLOWED_PORTS,
        allow_private: bool = False,
    ) -> None:
        self._allow = AllowList(allowed_domains)
        self._on_access = on_access
        self._ports = None if allowed_ports is None else frozenset(allowed_ports)
        self._allow_private = allow_private
        self._server_task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._path: str | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def path(self) -> str | None:
        """The UNIX socket path, once :meth:`listen` was called."""
        return self._path

    def listen(self, path: str) -> None:
        """Bind and listen on ``path`` now, and serve it from the running loop.

        Synchronous on purpose: the socket accepts connections into its backlog from the moment
        this returns, so a sandbox started right after cannot race the server task's first run.

        Raises:
            RuntimeError: No asyncio loop is running in this thread.
            OSError: The socket cannot be created.
        """
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            # Only our own uid (the sandbox maps to it) may connect.
            os.chmod(path, 0o600)
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._path = path
        self._start(loop, sock, f"sandbox-proxy {path}", unix=True)

    def serve(self, sock: socket.socket) -> None:
        """Serve a socket that is already listening (e.g. in a sandbox's network namespace).

        The proxy owns ``sock`` from now on and closes it in :meth:`close`.

        Raises:
            RuntimeError: No asyncio loop is running in this thread.
        """
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        self._start(loop, sock, f"sandbox-proxy fd {sock.fileno()}", unix=False)

    def _start(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, name: str, *, unix: bool
    ) -> None:
        self._sock = sock
        self._loop = loop
        self._server_task = loop.create_task(self._serve(sock, unix=unix), name=name)

    async def _serve(self, sock: socket.socket, *, unix: bool) -> None:
        # start_serving=False: nothing awaits between registering the socket with the loop and
        # serve_forever, whose cancellation unregisters and closes it.
        if unix:
            server = await asyncio.start_unix_server(
                self._handle, sock=sock, limit=_HEAD_LIMIT, start_serving=False
            )
        else:
            server = await asyncio.start_server(
                self._handle, sock=sock, limit=_HEAD_LIMIT, start_serving=False
            )
        async with server:
            await server.serve_forever()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Stop listening and drop every open tunnel. Idempotent; safe from sync code.

        Called from another thread than the loop's, the stop is handed to the loop; with the
        loop already closed, the socket is closed right away.
        """
        if self._closed:
            return
        self._closed = True
        loop = self._loop
        if loop is None or loop.is_closed():
            if self._sock is not None:
                self._sock.close()
        else:
            try:
                running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop or (running is None and not loop.is_running()):
                self._stop(loop)
            else:
                with contextlib.suppress(RuntimeError):  # closed meanwhile
                    loop.call_soon_threadsafe(self._stop, loop)
        if self._path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._path)

    def _stop(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._server_task is not None:
            self._server_task.cancel()
        for task in list(self._handlers):
            task.cancel()
        if self._sock is not None:
            # After the server task has unwound (it closes the socket itself when it had
            # started); before that the socket was never registered, so closing it is all.
            loop.call_soon(self._sock.close)

    # Serving --------------------------------------------------------------------------------

    def _report(
        self, action: Literal["allowed", "blocked"], host: str, port: int, reason: str | None = None
    ) -> None:
        if self._on_access is not None:
            self._on_access(ProxyDecision(action=action, domain=host, port=port, reason=reason))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await self._handle_request(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client went away or stalled; nothing to report back
        finally:
            if task is not None:
                self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            async with asyncio.timeout(_HEAD_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.LimitOverrunError, ValueError):
            await _respond(writer, "431 Request Header Fields Too Large", "Request head too large")
            return
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            await _respond(writer, "400 Bad Request", "Malformed request line")
            return
        method, target, version = parts
        headers = [line for line in lines[1:] if line]
        try:
            if method.upper() == "CONNECT":
                host, port = _split_authority(target, 443)
                request = b""
            else:
                host, port, request = _origin_request(method, target, version, headers)
        except ValueError:
            await _respond(
                writer,
                "400 Bad Request",
                "The sandbox proxy needs CONNECT host:port or an absolute http:// URL",
            )
            return
        host = normalize_host(host)
        try:
            addresses = await self._decide(host, port)
        except _Refused as refused:
            self._report("blocked", host, port, refused.reason)
            await _respond(writer, refused.status, refused.reason)
            return
        self._report("allowed", host, port)
        upstream = await _connect(addresses, port)
        if upstream is None:
            await _respond(writer, "502 Bad Gateway", f"Cannot connect to {host}:{port}")
            return
        up_reader, up_writer = upstream
        try:
            if request:
                up_writer.write(request)
            else:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()

    async def _decide(self, host: str, port: int) -> list[str]:
        """The addresses to connect to, or :class:`_Refused` with the reason."""
        if self._ports is not None and port not in self._ports:
            allowed = ", ".join(str(p) for p in sorted(self._ports))
            raise _Refused("403 Forbidden", f"Port {port} not allowed (allowed: {allowed})")
        if is_ip_literal(host):
            if not self._allow.allows(host):
                raise _Refused("403 Forbidden", "IP address destinations are not allowed")
        elif not self._allow.allows(host):
            raise _Refused("403 Forbidden", "Domain not in allowlist")
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            raise _Refused("502 Bad Gateway", f"Cannot resolve {host}: {error}") from None
        addresses: list[str] = []
        for info in infos:
            address = str(info[4][0])
            if address not in addresses:
                addresses.append(address)
        if not self._allow_private:
            for address in addresses:
                if not is_public_address(address):
                    raise _Refused(
                        "403 Forbidden",
                        f"Resolves to a non-public address ({address}): loopback, private, "
                        "link-local and metadata addresses are blocked",
                    )
        if not addresses:
            raise _Refused("502 Bad Gateway", f"Cannot resolve {host}")
        return addresses


def _origin_request(
    method: str, target: str, version: str, headers: list[str]
) -> tuple[str, int, bytes]:
    """Check an absolute-URI request and rewrite it for the origin server."""
    if not target.lower().startswith("http://"):
        raise ValueError(target)
    url = urlsplit(target)
    host = url.hostname
    if not host:
        raise ValueError(target)
    port = url.port or 80
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    kept = [h for h in headers if h.split(":", 1)[0].strip().lower() not in _DROPPED_HEADERS]
    head = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""])
    return host, port, head.encode("latin-1")


async def _connect(
    addresses: list[str], port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    for address in addresses:
        try:
            async with asyncio.timeout(_CONNECT_TIMEOUT_S):
                return await asyncio.open_connection(address, port)
        except (OSError, TimeoutError):
            continue
    return None


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close so the other direction can finish on its own."""
    try:
        while chunk := await source.read(_CHUNK):
            sink.write(chunk)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
    except (ConnectionError, OSError):
        sink.close()


async def _respond(writer: asyncio.StreamWriter, status: str, message: str) -> None:
    body = f"Perstack sandbox proxy: {message}\n".encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + body)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
