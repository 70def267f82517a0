"""The HTTP server and its request handler: routes, replies, streams and faults."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from .anthropic_wire import _anthropic_events, _anthropic_message
from .openai_wire import _completion_json, _openai_events
from .replies import (
    DelayReply,
    DisconnectReply,
    ErrorReply,
    MalformedStreamReply,
    RawReply,
    StreamErrorReply,
    TruncatedStreamReply,
    reply_from_json,
)
from .wire import (
    _DISCONNECT_TAIL,
    _JUNK,
    Api,
    _error_json,
    _partial_events,
    _route,
    _stream_error_event,
)

if TYPE_CHECKING:
    from .fake import FakeLLM

_BATCH_BYTES = 64 * 1024
"""Streamed events are written (and flushed) in batches of about this many bytes."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Reusing the address lets `--port N` restart at once after a crash.
    allow_reuse_address = True
    # socketserver's default backlog is 5: the 6th of ten parallel delegates connecting at once
    # waits for a SYN retry (1 s), which is the fake's delay, not the client's.
    request_queue_size = 128
    fake: FakeLLM

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout test, cancelled stream) is expected, not an error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.1 with "Connection: close" on every response: streams end at close, and clients
    # never reuse a connection the server is about to drop (no stale keep-alive races).
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        # Silent: the test output is not the place for an access log.
        pass

    # -- plumbing

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(body).encode(), "application/json", headers)

    def _send_bytes(
        self, status: int, data: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _send_error(
        self,
        api: Api,
        status: int,
        message: str,
        error_type: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._send_json(status, _error_json(api, status, message, error_type, code), headers)

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw or b"null")

    # -- routes

    def do_GET(self) -> None:
        self.close_connection = True  # one request per connection, whatever path we leave by
        fake = self.server.fake
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": "fake-model", "object": "model", "owned_by": "fakellm", "created": 0}
                    ],
                },
            )
        elif self.path == "/_fake/requests":
            self._send_json(200, fake.requests)
        elif self.path == "/_fake/health":
            self._send_json(200, {"ok": True, "pending": fake.pending})
        else:
            self._send_error("openai", 404, f"fake LLM: no route GET {self.path}")

    def do_POST(self) -> None:
        self.close_connection = True  # one request per connection, whatever path we leave by
        fake = self.server.fake
        api = _route(self.path)
        try:
            body = self._read_json()
        except (ValueError, UnicodeDecodeError) as exc:
            message = f"fake LLM: request body is not JSON: {exc}"
            self._send_error(api or "openai", 400, message, "invalid_request_error")
            return
        if self.path == "/_fake/script":
            fake.script(*(reply_from_json(item) for item in body))
            self._send_json(200, {"pending": fake.pending})
        elif self.path == "/_fake/reset":
            fake.reset()
            self._send_json(200, {"pending": 0})
        elif api is not None:
            self._model_call(api, body)
        else:
            self._send_error("openai", 404, f"fake LLM: no route POST {self.path}")

    def _model_call(self, api: Api, body: Any) -> None:
        fake = self.server.fake
        if not isinstance(body, dict):
            message = "fake LLM: body must be a JSON object"
            self._send_error(api, 400, message, "invalid_request_error")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = fake._next(body, headers, self.path)
        while isinstance(reply, DelayReply):
            # Waiting on the stop event lets close() end a pending delay at once.
            if fake._stopped.wait(reply.seconds):
                return
            reply = reply.then
        if isinstance(reply, ErrorReply):
            self._send_error(
                api, reply.status, reply.message, reply.error_type, reply.code, reply.headers
            )
            return
        if isinstance(reply, RawReply):
            self._send_bytes(reply.status, reply.body, reply.content_type, reply.headers)
            return
        model = str(body.get("model", "fake-model"))
        number = fake._ids.response()
        if isinstance(reply, DisconnectReply):
            self._disconnect(_partial_events(api, reply.text, model, number), _DISCONNECT_TAIL[api])
            return
        if isinstance(reply, TruncatedStreamReply | MalformedStreamReply | StreamErrorReply):
            events: Iterable[bytes] = _partial_events(api, reply.text, model, number)
            if isinstance(reply, MalformedStreamReply):
                junk = reply.junk if reply.junk is not None else _JUNK[api]
                events = itertools.chain(events, [junk])
            elif isinstance(reply, StreamErrorReply):
                events = itertools.chain(events, [_stream_error_event(api, reply)])
            self._start_sse()
            self._write_events(events)
            return
        stream = bool(body.get("stream"))
        if api == "anthropic":
            call_ids = [c.id or fake._ids.call("toolu_") for c in reply.tool_calls]
            mid, signature = f"msg_fake-{number}", f"sig-fake-{number}"
            if not stream:
                self._send_json(200, _anthropic_message(reply, model, mid, call_ids, signature))
                return
            events = _anthropic_events(reply, model, mid, call_ids, signature)
        else:
            call_ids = [c.id or fake._ids.call() for c in reply.tool_calls]
            cid = f"chatcmpl-fake-{number}"
            if not stream:
                self._send_json(200, _completion_json(reply, model, cid, call_ids))
                return
            options = body.get("stream_options") or {}
            include_usage = bool(options.get("include_usage"))
            events = _openai_events(reply, model, cid, call_ids, include_usage=include_usage)
        self._start_sse()
        self._write_events(events, reply.chunk_delay)

    # -- streams

    def _start_sse(self) -> None:
        # No Content-Length and no chunked framing: the body ends when the connection closes.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _write_events(self, events: Iterable[bytes], delay: float = 0.0) -> None:
        """Write SSE events: each after ``delay`` and flushed, or (no delay) batched."""
        if delay:
            stopped = self.server.fake._stopped
            for event in events:
                if stopped.wait(delay):
                    return
                self.wfile.write(event)
                self.wfile.flush()
            return
        batch: list[bytes] = []
        size = 0
        for event in events:
            batch.append(event)
            size += len(event)
            if size >= _BATCH_BYTES:
                self.wfile.write(b"".join(batch))
                batch.clear()
                size = 0
        if batch:
            self.wfile.write(b"".join(batch))
        self.wfile.flush()

    def _disconnect(self, events: Iterable[bytes], tail: bytes) -> None:
        # Chunked framing, abandoned mid-body: the client sees a truncated response (a protocol
        # error), not a stream that merely ended early.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        body = b"".join(b"%x\r\n%s\r\n" % (len(event), event) for event in events)
        self.wfile.write(body + tail)
        self.wfile.flush()
        self.close_connection = True
