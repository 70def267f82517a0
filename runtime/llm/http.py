"""The HTTP plumbing of the native model clients: one connection pool, SSE, failures.

Built on httpx (the connection pool, proxies from the environment, TLS) and httpx-sse (the event
stream parser). A model client owns one :class:`httpx.AsyncClient` for its lifetime, which is
one run: every step and every delegate of the run reuses its connections.

:class:`EventStream` sends one request and yields its server-sent events. Every way a call can
fail becomes a :class:`~runtime.errors.ModelError` through :mod:`runtime.llm.failures`: an error
status with the provider's own message, a refused connection, a stream cut off or malformed, a
200 answer that is not an event stream (an HTML page from a wrong base URL), and the
generation's deadline.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

if "httpx" not in sys.modules:
    # httpx imports its command-line client (rich, click, pygments: ~30 ms) when those happen to
    # be installed; a None entry makes that optional import fail fast, as httpx expects it may.
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError

from runtime.errors import ModelError
from runtime.llm.failures import (
    broken_stream_error,
    connection_error,
    invalid_response_error,
    status_error,
    timeout_error,
)

__all__ = ["Endpoint", "EventStream", "new_client", "prewarm"]

_ERROR_BODY_LIMIT = 64 * 1024
"""Bytes of an error answer read for its message; a larger body is cut."""
_WHOLE_BODY_LIMIT = 64 * 1024 * 1024
"""Bytes of a 200 answer that is not a stream (a whole completion from a server that ignores
``stream``); a larger one is cut and then fails to parse."""
_SHOWN_BODY = 200
"""Characters of an unexpected body quoted in a message."""


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs tens of milliseconds: once per process, shared by all clients.
    return httpx.create_ssl_context()


def prewarm(url: str) -> None:
    """Do ahead of time what the first request to ``url`` needs (e.g. in a thread).

    The TLS context for an https URL, and a first client: httpx loads parts of itself on the
    first client it makes.
    """
    new_client(url)


def new_client(url: str) -> httpx.AsyncClient:
    """A connection pool for one run whose requests go to ``url``.

    No overall timeout here: each generation has its own deadline (:class:`EventStream`).
    Proxy variables (``HTTPS_PROXY``, ``NO_PROXY``...) are honoured, as by litellm. A plain-http
    endpoint (a local server) gets no certificate store: loading it is the slowest part of a
    first request there.
    """
    secure = url.startswith("https:")
    return httpx.AsyncClient(
        verify=_ssl_context() if secure else False,
        timeout=httpx.Timeout(None, connect=30.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )


@dataclass(frozen=True)
class Endpoint:
    """Where a native client sends its requests, and what its errors should name.

    Attributes:
        provider: The provider as the user named it (``openai``, ``fireworks``...).
        model: The model as the user named it.
        url: The full URL of the generation endpoint.
        headers: Request headers, authentication included. Left out of ``repr``.
        key_env: The API key's variable, named in the fix for 401/403.
        secret: The API key, masked in every message. Left out of ``repr``.
        where: The endpoint as messages name it (the base URL or "the <provider> API").
    """

    provider: str
    model: str
    url: str
    headers: Mapping[str, str]
    key_env: str | None
    secret: str | None
    where: str

    def __repr__(self) -> str:
        return f"Endpoint({self.provider!r}, {self.model!r}, {self.url!r})"


def _reason(exc: BaseException) -> str:
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, socket.gaierror):
            return "host name not found"
        current = current.__cause__ or current.__context__
    return str(exc) or type(exc).__name__


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN_BODY else text[:_SHOWN_BODY] + "…"


ErrorParser = Callable[[Any], tuple[str | None, str | None]]
"""From a decoded JSON error body: (message, error type), each None when absent."""


def openai_error(body: Any) -> tuple[str | None, str | None]:
    """The message and type of an OpenAI-style ``{"error": {...}}`` body."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            kind = error.get("type") or error.get("code")
            return (str(message) if message else None, str(kind) if kind else None)
        if isinstance(error, str):
            return error, None
        for key in ("message", "detail"):
            if isinstance(body.get(key), str):
                return str(body[key]), None
    return None, None


class EventStream:
    """One streaming request: ``async with EventStream(...) as stream: async for event in stream``.

    The deadline covers the whole generation (connecting, waiting, every event), like Perstack's
    ``AbortSignal.timeout``; it is applied to our own awaits only, never across a yield to the
    consumer. Leaving the block closes the response, so a consumer that stops early frees the
    connection.

    Args:
        client: The run's connection pool.
        endpoint: Where to send it.
        body: The JSON request body.
        timeout_ms: The generation's deadline, from now.
        parse_error: Reads the provider's message out of an error body.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        endpoint: Endpoint,
        body: Mapping[str, Any],
        *,
        timeout_ms: int,
        parse_error: ErrorParser = openai_error,
    ) -> None:
        self._client = client
        self._endpoint = endpoint
        self._body = body
        self._timeout_ms = timeout_ms
        self._parse_error = parse_error
        self._deadline = asyncio.get_running_loop().time() + timeout_ms / 1000
        self._response: httpx.Response | None = None
        self.received = False
        """Whether any event arrived (a failure after one is a broken-off response)."""
        self.whole_body: Any = None
        """A complete JSON answer the server sent instead of a stream (some servers ignore
        ``stream``); the client turns it into chunks."""

    # -- failures

    def _timeout(self) -> ModelError:
        ep = self._endpoint
        return timeout_error(ep.provider, ep.model, self._timeout_ms)

    def _transport(self, exc: BaseException) -> ModelError:
        ep = self._endpoint
        if isinstance(exc, httpx.TimeoutException):
            return self._timeout()
        return connection_error(ep.where, _reason(exc), received=self.received, secret=ep.secret)

    async def _read_limited(self, response: httpx.Response, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
        return b"".join(chunks)[:limit]

    def _status_failure(self, status: int, raw: bytes) -> ModelError:
        ep = self._endpoint
        text = raw.decode("utf-8", errors="replace")
        message: str | None = None
        try:
            message, _ = self._parse_error(json.loads(text))
        except ValueError:
            pass
        if message is None:
            message = _shorten(text) or httpx.codes.get_reason_phrase(status) or "no message"
        return status_error(ep.provider, status, message, key_env=ep.key_env, secret=ep.secret)

    def _not_a_stream(self, content_type: str, raw: bytes) -> ModelError:
        ep = self._endpoint
        shown = _shorten(raw.decode("utf-8", errors="replace")) or "(empty)"
        kind = content_type or "no content type"
        return invalid_response_error(
            ep.where,
            f"HTTP 200 with a {kind} body instead of an event stream ({ep.url}): {shown!r}",
            secret=ep.secret,
        )

    # -- the request

    async def __aenter__(self) -> EventStream:
        ep = self._endpoint
        request = self._client.build_request(
            "POST",
            ep.url,
            json=self._body,
            headers={**ep.headers, "Accept": "text/event-stream"},
        )
        try:
            async with asyncio.timeout_at(self._deadline):
                response = await self._client.send(request, stream=True)
        except TimeoutError as exc:
            raise self._timeout() from exc
        except httpx.HTTPError as exc:
            raise self._transport(exc) from exc
        self._response = response
        try:
            content_type = response.headers.get("content-type", "").partition(";")[0].strip()
            if response.status_code >= 400 or content_type != "text/event-stream":
                async with asyncio.timeout_at(self._deadline):
                    failed = response.status_code >= 400
                    raw = await self._read_limited(
                        response, _ERROR_BODY_LIMIT if failed else _WHOLE_BODY_LIMIT
                    )
                if response.status_code >= 400:
                    raise self._status_failure(response.status_code, raw)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                if not isinstance(body, dict):
                    raise self._not_a_stream(content_type, raw)
                message, _ = self._parse_error(body)
                if message is not None and not ("choices" in body or "content" in body):
                    # An error wrapped in a 200 (some proxies answer so).
                    raise self._status_failure(response.status_code, raw)
                self.whole_body = body
        except TimeoutError as exc:
            await response.aclose()
            raise self._timeout() from exc
        except httpx.HTTPError as exc:
            await response.aclose()
            raise self._transport(exc) from exc
        except BaseException:
            await response.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._response is not None:
            await self._response.aclose()

    def __aiter__(self) -> AsyncIterator[ServerSentEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[ServerSentEvent]:
        if self.whole_body is not None or self._response is None:
            return
        events = EventSource(self._response).aiter_sse()
        try:
            while True:
                try:
                    async with asyncio.timeout_at(self._deadline):
                        event = await anext(events)
                except StopAsyncIteration:
                    return
                except TimeoutError as exc:
                    raise self._timeout() from exc
                except SSEError as exc:
                    raise broken_stream_error(
                        self._endpoint.where, str(exc), secret=self._endpoint.secret
                    ) from exc
                except httpx.HTTPError as exc:
                    raise self._transport(exc) from exc
                self.received = True
                yield event
        finally:
            await events.aclose()

    def broken(self, what: str) -> ModelError:
        """A broken-stream error for a problem the client found in the events."""
        return broken_stream_error(self._endpoint.where, what, secret=self._endpoint.secret)


def json_data(stream: EventStream, event: ServerSentEvent) -> Any:
    """The JSON payload of an event; a data line that is not JSON is a broken stream."""
    try:
        return json.loads(event.data)
    except ValueError:
        raise stream.broken(f"an event's data is not JSON: {_shorten(event.data)!r}") from None
