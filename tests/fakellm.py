"""A scripted fake of the OpenAI chat-completions API on 127.0.0.1, for tests.

It is a real HTTP server, so the code under test goes through its whole HTTP stack (litellm, the
OpenAI SDK, httpx/aiohttp) and a ``perstack run`` subprocess can reach it through
``OPENAI_BASE_URL``. It runs in a daemon thread of the test process (stdlib ``ThreadingHTTPServer``:
no event loop to share, starts in about a millisecond), or as its own process::

    # prints the base URL, then serves until killed
    python -m tests.fakellm --port 0 --script replies.json

Usage from a test::

    fake.script(reply_tool_calls([("readTextFile", {"path": "a.txt"})]), reply_text("done"))
    ...  # point the code at fake.base_url with provider "openai" and any API key
    assert fake.requests[0]["messages"][0]["role"] == "system"

Every request pops the next scripted reply (``default`` when the queue is empty, else a 500 that
says the script is exhausted). Replies are plain data built by the ``reply_*`` helpers, or a
callable ``(request_body) -> Reply`` for replies that depend on the request.

A server in another process is driven over HTTP: ``POST /_fake/script`` with a JSON list of reply
objects (see :func:`reply_from_json`), ``GET /_fake/requests``, ``POST /_fake/reset``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeAlias

__all__ = [
    "ChatReply",
    "DelayReply",
    "DisconnectReply",
    "ErrorReply",
    "FakeLLM",
    "no_proxy_env",
    "Reply",
    "ScriptItem",
    "reply_delay",
    "reply_disconnect",
    "reply_error",
    "reply_from_json",
    "reply_length",
    "reply_text",
    "reply_tool_calls",
]


# Replies ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeToolCall:
    name: str
    arguments: str
    """Raw JSON text (may be deliberately invalid)."""
    id: str | None = None


@dataclass(frozen=True)
class ChatReply:
    """A successful completion."""

    text: str | None = None
    reasoning: str | None = None
    tool_calls: tuple[FakeToolCall, ...] = ()
    finish_reason: str = "stop"
    usage: Mapping[str, int] | None = None
    """prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens (missing: defaults)."""
    chunk_size: int = 4
    """Characters per streamed text/reasoning/arguments delta, so streams really are split."""
    chunk_delay: float = 0.0
    """Seconds to wait between streamed chunks (slow-stream tests)."""


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error in OpenAI's error shape."""

    status: int
    message: str
    error_type: str | None = None
    code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DelayReply:
    """Wait, then answer ``then`` (if the client is still there)."""

    seconds: float
    then: Reply


@dataclass(frozen=True)
class DisconnectReply:
    """Stream ``text`` as content deltas, then drop the connection without finishing."""

    text: str = ""


Reply: TypeAlias = ChatReply | ErrorReply | DelayReply | DisconnectReply
ScriptItem: TypeAlias = Reply | Callable[[dict[str, Any]], Reply]
"""A reply, or a function of the request body returning one."""

_DEFAULT_USAGE = {"prompt_tokens": 10, "completion_tokens": 5}


def _tool_call(spec: Sequence[Any]) -> FakeToolCall:
    name, args, *rest = spec
    arguments = args if isinstance(args, str) else json.dumps(args)
    return FakeToolCall(name=name, arguments=arguments, id=rest[0] if rest else None)


def reply_text(
    text: str,
    reasoning: str | None = None,
    usage: Mapping[str, int] | None = None,
    *,
    finish_reason: str = "stop",
    chunk_size: int = 4,
    chunk_delay: float = 0.0,
) -> ChatReply:
    """A text answer, optionally preceded by reasoning (streamed as ``reasoning_content``).

    Args:
        text: The answer.
        reasoning: Reasoning text streamed before the answer.
        usage: Token counts: prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens.
        finish_reason: OpenAI's finish reason.
        chunk_size: Characters per streamed delta.
        chunk_delay: Seconds between streamed chunks.
    """
    return ChatReply(
        text=text,
        reasoning=reasoning,
        usage=usage,
        finish_reason=finish_reason,
        chunk_size=chunk_size,
        chunk_delay=chunk_delay,
    )


def reply_tool_calls(
    calls: Iterable[Sequence[Any]],
    text: str | None = None,
    *,
    reasoning: str | None = None,
    usage: Mapping[str, int] | None = None,
    finish_reason: str = "tool_calls",
    chunk_size: int = 4,
) -> ChatReply:
    """One or more (parallel) tool calls.

    Args:
        calls: ``(name, args)`` or ``(name, args, call_id)``; ``args`` is a dict (sent as JSON) or
            a raw string sent verbatim (to test invalid JSON). Ids default to ``call_<n>``.
        text: Text streamed before the calls.
        reasoning: Reasoning streamed first.
        usage: Token counts, as for :func:`reply_text`.
        finish_reason: OpenAI's finish reason.
        chunk_size: Characters per streamed delta; arguments are split across chunks too.
    """
    return ChatReply(
        text=text,
        reasoning=reasoning,
        tool_calls=tuple(_tool_call(call) for call in calls),
        usage=usage,
        finish_reason=finish_reason,
        chunk_size=chunk_size,
    )


def reply_error(
    status: int,
    message: str,
    error_type: str | None = None,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ErrorReply:
    """An HTTP error with OpenAI's ``{"error": {"message", "type", "code"}}`` body."""
    if error_type is None:
        error_type = {
            400: "invalid_request_error",
            401: "invalid_request_error",
            403: "permission_error",
            404: "not_found_error",
            429: "rate_limit_exceeded",
        }.get(status, "server_error")
    return ErrorReply(status, message, error_type, code, dict(headers or {}))


def reply_delay(seconds: float, then: Reply | None = None) -> DelayReply:
    """Answer only after ``seconds`` (for timeouts); ``then`` defaults to a short text reply."""
    return DelayReply(seconds, then if then is not None else reply_text("late"))


def reply_length(text: str = "This answer was cut off befo", **kwargs: Any) -> ChatReply:
    """A text answer that stopped at the token limit (finish_reason ``length``)."""
    return reply_text(text, finish_reason="length", **kwargs)


def reply_disconnect(text: str = "") -> DisconnectReply:
    """Start streaming ``text``, then close the connection mid-stream."""
    return DisconnectReply(text)


def reply_from_json(obj: Mapping[str, Any]) -> Reply:
    """Build a reply from JSON, for a server in another process.

    Shapes: ``{"text": ..., "reasoning": ..., "usage": {...}, "finishReason": ...}``,
    ``{"toolCalls": [{"name": ..., "arguments": {...} or "raw", "id": ...}], "text": ...}``,
    ``{"error": {"status": 401, "message": ..., "type": ...}}``,
    ``{"delay": 5, "then": {...}}``, ``{"disconnect": "partial text"}``.
    """
    if "error" in obj:
        err = obj["error"]
        return reply_error(int(err["status"]), str(err["message"]), err.get("type"))
    if "delay" in obj:
        then = obj.get("then")
        return reply_delay(float(obj["delay"]), reply_from_json(then) if then else None)
    if "disconnect" in obj:
        return reply_disconnect(str(obj["disconnect"]))
    finish = obj.get("finishReason")
    if "toolCalls" in obj:
        calls = [
            (c["name"], c.get("arguments", {}), *([c["id"]] if "id" in c else []))
            for c in obj["toolCalls"]
        ]
        return reply_tool_calls(
            calls,
            obj.get("text"),
            reasoning=obj.get("reasoning"),
            usage=obj.get("usage"),
            finish_reason=finish or "tool_calls",
        )
    return reply_text(
        str(obj.get("text", "")),
        obj.get("reasoning"),
        obj.get("usage"),
        finish_reason=finish or "stop",
    )


# Wire format ------------------------------------------------------------------------------------


def _usage_json(usage: Mapping[str, int] | None) -> dict[str, Any]:
    u = {**_DEFAULT_USAGE, **(usage or {})}
    prompt, completion = int(u["prompt_tokens"]), int(u["completion_tokens"])
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(u.get("total_tokens", prompt + completion)),
        "prompt_tokens_details": {"cached_tokens": int(u.get("cached_tokens", 0))},
        "completion_tokens_details": {"reasoning_tokens": int(u.get("reasoning_tokens", 0))},
    }


def _pieces(text: str, size: int) -> list[str]:
    size = max(size, 1)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class _Ids:
    """Deterministic ids per server, so request/response assertions are stable."""

    def __init__(self) -> None:
        self._completions = itertools.count(1)
        self._calls = itertools.count(1)
        self._lock = threading.Lock()

    def completion(self) -> str:
        with self._lock:
            return f"chatcmpl-fake-{next(self._completions)}"

    def call(self) -> str:
        with self._lock:
            return f"call_{next(self._calls)}"


def _completion_json(reply: ChatReply, model: str, cid: str, call_ids: list[str]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.reasoning:
        message["reasoning_content"] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": cid_, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c, cid_ in zip(reply.tool_calls, call_ids, strict=True)
        ]
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
        "usage": _usage_json(reply.usage),
    }


def _stream_chunks(
    reply: ChatReply, model: str, cid: str, call_ids: list[str], include_usage: bool
) -> Iterator[dict[str, Any]]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    yield chunk({"role": "assistant", "content": ""})
    if reply.reasoning:
        for piece in _pieces(reply.reasoning, reply.chunk_size):
            yield chunk({"reasoning_content": piece})
    if reply.text:
        for piece in _pieces(reply.text, reply.chunk_size):
            yield chunk({"content": piece})
    for index, (call, call_id) in enumerate(zip(reply.tool_calls, call_ids, strict=True)):
        # As OpenAI does: the first delta of a call has id and name, the rest only arguments.
        head = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        yield chunk({"tool_calls": [head]})
        for piece in _pieces(call.arguments, reply.chunk_size):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, reply.finish_reason)
    if include_usage:
        yield {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": _usage_json(reply.usage),
        }


def no_proxy_env(environ: Mapping[str, str]) -> dict[str, str]:
    """NO_PROXY / no_proxy values extended with the loopback hosts."""
    out: dict[str, str] = {}
    for name in ("NO_PROXY", "no_proxy"):
        entries = [e for e in environ.get(name, "").split(",") if e.strip()]
        for host in ("127.0.0.1", "localhost"):
            if host not in entries:
                entries.append(host)
        out[name] = ",".join(entries)
    return out


# Server -----------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Reusing the address lets `--port N` restart at once after a crash.
    allow_reuse_address = True
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
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

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
            self._send_json(
                404,
                {
                    "error": {
                        "message": f"fake LLM: no route GET {self.path}",
                        "type": "not_found_error",
                    }
                },
            )

    def do_POST(self) -> None:
        self.close_connection = True  # one request per connection, whatever path we leave by
        fake = self.server.fake
        try:
            body = self._read_json()
        except (ValueError, UnicodeDecodeError) as exc:
            self._send_json(
                400,
                {
                    "error": {
                        "message": f"fake LLM: request body is not JSON: {exc}",
                        "type": "invalid_request_error",
                    }
                },
            )
            return
        if self.path == "/_fake/script":
            fake.script(*(reply_from_json(item) for item in body))
            self._send_json(200, {"pending": fake.pending})
        elif self.path == "/_fake/reset":
            fake.reset()
            self._send_json(200, {"pending": 0})
        elif self.path.split("?")[0].rstrip("/").endswith("/chat/completions"):
            self._completion(body)
        else:
            self._send_json(
                404,
                {
                    "error": {
                        "message": f"fake LLM: no route POST {self.path}",
                        "type": "not_found_error",
                    }
                },
            )

    def _completion(self, body: Any) -> None:
        fake = self.server.fake
        if not isinstance(body, dict):
            self._send_json(
                400,
                {
                    "error": {
                        "message": "fake LLM: body must be a JSON object",
                        "type": "invalid_request_error",
                    }
                },
            )
            return
        reply = fake._next(body, {k.lower(): v for k, v in self.headers.items()})
        while isinstance(reply, DelayReply):
            # Waiting on the stop event lets close() end a pending delay at once.
            if fake._stopped.wait(reply.seconds):
                return
            reply = reply.then
        if isinstance(reply, ErrorReply):
            error = {
                "message": reply.message,
                "type": reply.error_type,
                "param": None,
                "code": reply.code,
            }
            self._send_json(reply.status, {"error": error}, reply.headers)
            return
        model = str(body.get("model", "fake-model"))
        cid = fake._ids.completion()
        if isinstance(reply, DisconnectReply):
            self._disconnect(reply, model, cid)
            return
        call_ids = [c.id or fake._ids.call() for c in reply.tool_calls]
        if not body.get("stream"):
            self._send_json(200, _completion_json(reply, model, cid, call_ids))
            return
        options = body.get("stream_options") or {}
        include_usage = bool(options.get("include_usage"))
        self._start_sse()
        for chunk in _stream_chunks(reply, model, cid, call_ids, include_usage):
            if reply.chunk_delay and fake._stopped.wait(reply.chunk_delay):
                return
            self._sse(chunk)
        self._sse_raw(b"data: [DONE]\n\n")

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _sse(self, chunk: Mapping[str, Any]) -> None:
        self._sse_raw(b"data: " + json.dumps(chunk).encode() + b"\n\n")

    def _sse_raw(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def _disconnect(self, reply: DisconnectReply, model: str, cid: str) -> None:
        # Chunked framing, abandoned mid-body: the client sees a truncated response (a protocol
        # error), not a stream that merely ended early.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        partial = ChatReply(text=reply.text)
        for chunk in _stream_chunks(partial, model, cid, [], include_usage=False):
            if chunk["choices"] and chunk["choices"][0]["finish_reason"]:
                break
            data = b"data: " + json.dumps(chunk).encode() + b"\n\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.write(b'40\r\ndata: {"trunc')
        self.wfile.flush()
        self.close_connection = True


class FakeLLM:
    """A scripted OpenAI-compatible chat-completions server on 127.0.0.1.

    Thread-safe: tests, the server's request threads and a subprocess may all use it at once.

    Attributes:
        requests: The JSON bodies of the chat-completion requests received, in order.
        request_headers: The headers of those requests (same order), names lowercased.
        default: The reply used when the script is empty (None: answer 500 "script exhausted").
    """

    def __init__(
        self, *, default: ScriptItem | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.default = default
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self.request_times: list[float] = []
        """Wall-clock time (time.time()) each request arrived, for latency figures."""
        self._queue: deque[ScriptItem] = deque()
        self._lock = threading.Lock()
        self._ids = _Ids()
        self._stopped = threading.Event()
        self._server = _Server((host, port), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fakellm:{self.port}",
            daemon=True,
        )
        self._thread.start()

    # -- addresses

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no path)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``http://127.0.0.1:<port>/v1``: use as OPENAI_BASE_URL."""
        return f"{self.url}/v1"

    def env(self, api_key: str = "sk-fake") -> dict[str, str]:
        """Environment variables that point provider ``openai`` at this server.

        Merge them over ``os.environ`` for a subprocess. They include NO_PROXY entries for the
        loopback host, so a proxy configured on the machine never intercepts the fake.
        """
        return {
            "OPENAI_BASE_URL": self.base_url,
            "OPENAI_API_KEY": api_key,
            **no_proxy_env(os.environ),
        }

    # -- script

    def script(self, *replies: ScriptItem) -> FakeLLM:
        """Append replies to the queue (one is consumed per chat-completion request)."""
        with self._lock:
            self._queue.extend(replies)
        return self

    def push(self, reply: ScriptItem) -> FakeLLM:
        """Append one reply to the queue."""
        return self.script(reply)

    @property
    def pending(self) -> int:
        """How many scripted replies have not been consumed yet."""
        with self._lock:
            return len(self._queue)

    @property
    def last_request(self) -> dict[str, Any]:
        """The body of the latest chat-completion request."""
        with self._lock:
            if not self.requests:
                raise AssertionError("the fake LLM has received no request")
            return self.requests[-1]

    def reset(self) -> None:
        """Forget the script, the default and the recorded requests; ids restart at 1."""
        with self._lock:
            self._ids = _Ids()
            self._queue.clear()
            self.requests.clear()
            self.request_headers.clear()
            self.request_times.clear()
            self.default = None

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.request_headers.append(headers)
            self.request_times.append(time.time())
            number = len(self.requests)
            item = self._queue.popleft() if self._queue else self.default
        if item is None:
            return reply_error(
                500,
                f"fake LLM script exhausted: request #{number} has no scripted reply "
                "(script more replies or set a default)",
                "server_error",
            )
        if callable(item):
            return item(body)
        return item

    # -- lifecycle

    def close(self) -> None:
        """Stop serving; pending delayed replies end without answering."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(argv: Sequence[str] | None = None) -> None:
    """Run a FakeLLM as its own process; prints the base URL on stdout, then serves until killed."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakellm", description=serve.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", help="JSON file with a list of replies (see reply_from_json)")
    parser.add_argument("--default-text", help="answer this text when the script is empty")
    args = parser.parse_args(argv)
    default = reply_text(args.default_text) if args.default_text is not None else None
    fake = FakeLLM(port=args.port, default=default)
    if args.script:
        with open(args.script, encoding="utf-8") as f:
            fake.script(*(reply_from_json(item) for item in json.load(f)))
    print(fake.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.close()


if __name__ == "__main__":
    serve(sys.argv[1:])
