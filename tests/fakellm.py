"""A scripted fake of OpenAI's chat completions and Anthropic's Messages API on 127.0.0.1.

It is a real HTTP server, so the code under test goes through its whole HTTP stack (litellm, the
OpenAI SDK, httpx/aiohttp, a native client) and a ``perstack run`` subprocess can reach it through
``OPENAI_BASE_URL`` or ``ANTHROPIC_BASE_URL``. It runs in a daemon thread of the test process
(stdlib ``ThreadingHTTPServer``: no event loop to share, starts in about a millisecond), or as its
own process::

    # prints the base URL, then serves until killed
    python -m tests.fakellm --port 0 --script replies.json

Usage from a test::

    fake.script(reply_tool_calls([("readTextFile", {"path": "a.txt"})]), reply_text("done"))
    ...  # point the code at fake.base_url with provider "openai" and any API key
    assert fake.requests[0]["messages"][0]["role"] == "system"

Two APIs, one script. The route decides the wire format of the reply:

- ``POST <any prefix>/chat/completions``: OpenAI chat completions (JSON, or SSE ``data:`` chunks
  ending in ``data: [DONE]``; a usage chunk when ``stream_options.include_usage``). Reasoning
  streams as ``reasoning_content``.
- ``POST <any prefix>/messages``: Anthropic Messages (``/v1/messages``; also ``/v1/v1/messages``,
  which litellm builds from an ``api_base`` ending in ``/v1``). JSON, or SSE with ``event:`` names:
  ``message_start``, ``ping``, then per content block (thinking with a ``signature_delta``, text,
  tool_use with ``input_json_delta`` pieces) ``content_block_start`` / ``content_block_delta`` /
  ``content_block_stop``, then ``message_delta`` (stop_reason, output_tokens) and
  ``message_stop``. Finish reasons map stop→end_turn, tool_calls→tool_use, length→max_tokens;
  errors use ``{"type": "error", "error": {"type", "message"}}``. Use :meth:`FakeLLM.anthropic_env`.

Every model request pops the next scripted reply (``default`` when the queue is empty, else a 500
that says the script is exhausted) and is recorded in ``requests``, ``request_headers``,
``request_times`` and ``request_paths``. Replies are plain data built by the ``reply_*`` helpers,
or a callable ``(request_body) -> Reply`` for replies that depend on the request:

- :func:`reply_text`, :func:`reply_tool_calls`, :func:`reply_length`: successful answers;
- :func:`reply_error`: an HTTP error in the route's error shape;
- :func:`reply_delay`: answer late (timeouts);
- :func:`reply_disconnect`: stream some text, then break the chunked framing mid-event;
- :func:`reply_truncated_stream`: stream some text, then end cleanly with no finish at all;
- :func:`reply_malformed_stream`: stream some text, then a data line that is not JSON, then end;
- :func:`reply_stream_error`: stream some text, then an in-stream error event;
- :func:`reply_raw`: exactly this status, body and content type (an HTML page, non-JSON "JSON").

The stream faults (disconnect, truncated, malformed, stream error) stream whether or not the
request asked for a stream.

Streams are written in batches of events (one flush per ~64 KiB, each event still separate on the
wire), so megabytes of tool arguments in tiny deltas are served fast; ``chunk_delay`` makes every
event its own flushed write again.

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
from typing import Any, Literal, TypeAlias

__all__ = [
    "ChatReply",
    "DelayReply",
    "DisconnectReply",
    "ErrorReply",
    "FakeLLM",
    "MalformedStreamReply",
    "no_proxy_env",
    "RawReply",
    "Reply",
    "ScriptItem",
    "StreamErrorReply",
    "TruncatedStreamReply",
    "reply_delay",
    "reply_disconnect",
    "reply_error",
    "reply_from_json",
    "reply_length",
    "reply_malformed_stream",
    "reply_raw",
    "reply_stream_error",
    "reply_text",
    "reply_tool_calls",
    "reply_truncated_stream",
]

Api: TypeAlias = Literal["openai", "anthropic"]


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
    """prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, cache_creation_tokens
    (missing: defaults)."""
    chunk_size: int = 4
    """Characters per streamed text/reasoning/arguments delta, so streams really are split."""
    chunk_delay: float = 0.0
    """Seconds to wait between streamed chunks (slow-stream tests)."""


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error in the route's error shape (OpenAI's or Anthropic's)."""

    status: int
    message: str
    error_type: str | None = None
    """The error's ``type``; None: the route's usual type for ``status``."""
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


@dataclass(frozen=True)
class RawReply:
    """Exactly this status, body and content type (not necessarily what the API would send)."""

    status: int
    body: bytes
    content_type: str = "text/html"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TruncatedStreamReply:
    """Stream ``text`` as content deltas, then end the stream cleanly without any finish."""

    text: str = "partial"


@dataclass(frozen=True)
class MalformedStreamReply:
    """Stream ``text`` as content deltas, then ``junk`` (an event whose data is not JSON), then
    end the stream cleanly. ``junk`` None: the route's default junk event."""

    text: str = "partial"
    junk: bytes | None = None


@dataclass(frozen=True)
class StreamErrorReply:
    """Stream ``text`` as content deltas, then an error event inside the 200 stream, then end."""

    text: str = "partial"
    message: str = "Overloaded"
    error_type: str | None = None
    """None: the route's usual type for ``status``."""
    status: int = 529
    """Only picks the default ``error_type``; the HTTP status stays 200."""


Reply: TypeAlias = (
    ChatReply
    | ErrorReply
    | DelayReply
    | DisconnectReply
    | RawReply
    | TruncatedStreamReply
    | MalformedStreamReply
    | StreamErrorReply
)
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
    """A text answer, optionally preceded by reasoning.

    Reasoning streams as ``reasoning_content`` (OpenAI route) or as a thinking block with a
    signature (Anthropic route).

    Args:
        text: The answer.
        reasoning: Reasoning text streamed before the answer.
        usage: Token counts: prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens
            (cache reads), cache_creation_tokens (cache writes). On the Anthropic route
            input_tokens = prompt_tokens - cached_tokens - cache_creation_tokens, as Anthropic
            counts them.
        finish_reason: OpenAI's finish reason (mapped to a stop_reason on the Anthropic route).
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
            a raw string sent verbatim (to test invalid JSON). Ids default to ``call_<n>`` on the
            OpenAI route and ``toolu_<n>`` on the Anthropic route. On the Anthropic route a
            non-streamed ``input`` is the parsed arguments (the raw string if they are not JSON).
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
    """An HTTP error in the route's error shape.

    OpenAI route: ``{"error": {"message", "type", "param", "code"}}``. Anthropic route:
    ``{"type": "error", "error": {"type", "message"}}``. ``error_type`` None picks the route's
    usual type for ``status`` (Anthropic: 400 invalid_request_error, 401 authentication_error,
    403 permission_error, 404 not_found_error, 429 rate_limit_error, 529 overloaded_error,
    500 and others api_error).
    """
    return ErrorReply(status, message, error_type, code, dict(headers or {}))


def reply_delay(seconds: float, then: Reply | None = None) -> DelayReply:
    """Answer only after ``seconds`` (for timeouts); ``then`` defaults to a short text reply."""
    return DelayReply(seconds, then if then is not None else reply_text("late"))


def reply_length(text: str = "This answer was cut off befo", **kwargs: Any) -> ChatReply:
    """A text answer that stopped at the token limit (finish_reason ``length``)."""
    return reply_text(text, finish_reason="length", **kwargs)


def reply_disconnect(text: str = "") -> DisconnectReply:
    """Start streaming ``text``, then close the connection mid-stream.

    The body is chunked and abandoned inside an event, so clients see a protocol error (httpx:
    ``RemoteProtocolError``), not a stream that merely ended early.
    """
    return DisconnectReply(text)


def reply_raw(
    status: int,
    body: str | bytes,
    content_type: str = "text/html",
    *,
    headers: Mapping[str, str] | None = None,
) -> RawReply:
    """Send exactly ``body`` (str: UTF-8) with ``status`` and ``content_type``, on any route.

    E.g. a 200 with an HTML login page from a proxy, or a 200 ``application/json`` that is not JSON.
    """
    data = body.encode() if isinstance(body, str) else bytes(body)
    return RawReply(status, data, content_type, dict(headers or {}))


def reply_truncated_stream(text: str = "partial") -> TruncatedStreamReply:
    """A 200 SSE stream of valid ``text`` deltas that ends cleanly but unfinished.

    The connection closes normally (no Content-Length, no chunked framing, so the body is
    complete) but the stream has no finish: OpenAI route without a finish_reason chunk and
    without ``data: [DONE]``; Anthropic route after the last ``content_block_delta``, without
    ``content_block_stop``, ``message_delta`` or ``message_stop``. Unlike
    :func:`reply_disconnect`, the HTTP layer sees nothing wrong.
    """
    return TruncatedStreamReply(text)


def reply_malformed_stream(
    text: str = "partial", junk: str | bytes | None = None
) -> MalformedStreamReply:
    """A 200 SSE stream of valid ``text`` deltas, then ``junk``, then a clean end.

    ``junk`` is sent verbatim; None sends ``data: {"not json\\n\\n`` on the OpenAI route and the
    same data line under ``event: content_block_delta`` on the Anthropic route (an event name
    Anthropic clients parse). After the junk the connection closes cleanly: no ``[DONE]``, no
    finish (Anthropic: no ``message_delta``/``message_stop``).
    """
    data = junk.encode() if isinstance(junk, str) else junk
    return MalformedStreamReply(text, data)


def reply_stream_error(
    text: str = "partial",
    message: str = "Overloaded",
    error_type: str | None = None,
    *,
    status: int = 529,
) -> StreamErrorReply:
    """A 200 SSE stream of ``text`` deltas, then an error event, then a clean end.

    OpenAI route: ``data: {"error": {"message", "type", "param", "code"}}``. Anthropic route (as
    Anthropic reports overload mid-stream): ``event: error`` with
    ``{"type": "error", "error": {"type", "message"}}``. ``status`` only picks the default type
    (529: overloaded_error / server_error).
    """
    return StreamErrorReply(text, message, error_type, status)


def _text_arg(value: Any, default: str) -> tuple[str, Mapping[str, Any]]:
    """A reply_from_json fault value: a string (the text) or an object with ``text``."""
    if isinstance(value, Mapping):
        return str(value.get("text", default)), value
    return (default if value is None else str(value)), {}


def reply_from_json(obj: Mapping[str, Any]) -> Reply:
    """Build a reply from JSON, for a server in another process.

    Shapes::

        {"text": ..., "reasoning": ..., "usage": {...}, "finishReason": ..., "chunkSize": 4}
        {"toolCalls": [{"name": ..., "arguments": {...} or "raw", "id": ...}], "text": ...,
         "reasoning": ..., "usage": {...}, "finishReason": ..., "chunkSize": 4}
        {"error": {"status": 401, "message": ..., "type": ..., "code": ..., "headers": {...}}}
        {"delay": 5, "then": {...}}
        {"disconnect": "partial text"}
        {"raw": {"status": 200, "body": "<html>...", "contentType": "text/html",
                 "headers": {...}}}
        {"truncatedStream": "partial text"}      or {"truncatedStream": {"text": ...}}
        {"malformedStream": "partial text"}      or {"malformedStream": {"text": ..., "junk": ...}}
        {"streamError": "partial text"}          or
        {"streamError": {"text": ..., "message": ..., "type": ..., "status": 529}}

    Usage keys are those of :func:`reply_text` (prompt_tokens, completion_tokens,
    reasoning_tokens, cached_tokens, cache_creation_tokens).
    """
    if "error" in obj:
        err = obj["error"]
        return reply_error(
            int(err["status"]),
            str(err["message"]),
            err.get("type"),
            code=err.get("code"),
            headers=err.get("headers"),
        )
    if "delay" in obj:
        then = obj.get("then")
        return reply_delay(float(obj["delay"]), reply_from_json(then) if then else None)
    if "disconnect" in obj:
        return reply_disconnect(str(obj["disconnect"]))
    if "raw" in obj:
        raw = obj["raw"]
        return reply_raw(
            int(raw.get("status", 200)),
            str(raw.get("body", "")),
            str(raw.get("contentType", "text/html")),
            headers=raw.get("headers"),
        )
    if "truncatedStream" in obj:
        text, _ = _text_arg(obj["truncatedStream"], "partial")
        return reply_truncated_stream(text)
    if "malformedStream" in obj:
        text, spec = _text_arg(obj["malformedStream"], "partial")
        return reply_malformed_stream(text, spec.get("junk"))
    if "streamError" in obj:
        text, spec = _text_arg(obj["streamError"], "partial")
        return reply_stream_error(
            text,
            str(spec.get("message", "Overloaded")),
            spec.get("type"),
            status=int(spec.get("status", 529)),
        )
    finish = obj.get("finishReason")
    chunk_size = int(obj.get("chunkSize", 4))
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
            chunk_size=chunk_size,
        )
    return reply_text(
        str(obj.get("text", "")),
        obj.get("reasoning"),
        obj.get("usage"),
        finish_reason=finish or "stop",
        chunk_size=chunk_size,
    )


# Wire format ------------------------------------------------------------------------------------

_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_exceeded",
}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_ANTHROPIC_STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}
_JUNK: dict[Api, bytes] = {
    "openai": b'data: {"not json\n\n',
    "anthropic": b'event: content_block_delta\ndata: {"not json\n\n',
}
_DISCONNECT_TAIL: dict[Api, bytes] = {
    # A chunk header that promises 0x40 bytes, followed by fewer: the body ends mid-event.
    "openai": b'40\r\ndata: {"trunc',
    "anthropic": b'40\r\nevent: content_block_delta\ndata: {"trunc',
}
_BATCH_BYTES = 64 * 1024
"""Streamed events are written (and flushed) in batches of about this many bytes."""


def _error_type(api: Api, status: int, explicit: str | None) -> str:
    if explicit is not None:
        return explicit
    if api == "anthropic":
        default = "invalid_request_error" if 400 <= status < 500 else "api_error"
        return _ANTHROPIC_ERROR_TYPES.get(status, default)
    return _OPENAI_ERROR_TYPES.get(status, "server_error")


def _error_json(
    api: Api, status: int, message: str, error_type: str | None, code: str | None = None
) -> dict[str, Any]:
    kind = _error_type(api, status, error_type)
    if api == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


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


def _anthropic_usage(usage: Mapping[str, int] | None) -> dict[str, int]:
    """Anthropic's usage: input_tokens excludes cache reads and cache writes."""
    u = {**_DEFAULT_USAGE, **(usage or {})}
    cache_read = int(u.get("cached_tokens", 0))
    cache_write = int(u.get("cache_creation_tokens", 0))
    return {
        "input_tokens": max(int(u["prompt_tokens"]) - cache_read - cache_write, 0),
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "output_tokens": int(u["completion_tokens"]),
    }


def _pieces(text: str, size: int) -> list[str]:
    size = max(size, 1)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class _Ids:
    """Deterministic ids per server, so request/response assertions are stable."""

    def __init__(self) -> None:
        self._responses = itertools.count(1)
        self._calls = itertools.count(1)
        self._lock = threading.Lock()

    def response(self) -> int:
        """The number of the next response (chatcmpl-fake-N, msg_fake-N, sig-fake-N)."""
        with self._lock:
            return next(self._responses)

    def call(self, prefix: str = "call_") -> str:
        with self._lock:
            return f"{prefix}{next(self._calls)}"


_HOLE = "\x00fakellm-hole\x00"
_HOLE_JSON = json.dumps(_HOLE)


def _framer(prefix: bytes, template: Any) -> Callable[[str], bytes]:
    """A fast encoder of one SSE event per piece: ``template`` with the piece in place of _HOLE.

    Encodes the template once, so a stream of 100k deltas costs 100k small ``json.dumps`` calls,
    not 100k encodings of the whole chunk. The bytes equal ``json.dumps`` of the filled template.
    """
    head, tail = json.dumps(template).split(_HOLE_JSON)
    start, end = prefix + head.encode(), tail.encode() + b"\n\n"

    def frame(piece: str) -> bytes:
        return start + json.dumps(piece).encode() + end

    return frame


def _data(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _event(name: str, obj: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(obj).encode() + b"\n\n"


# OpenAI chat completions


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


def _openai_events(
    reply: ChatReply,
    model: str,
    cid: str,
    call_ids: list[str],
    *,
    include_usage: bool = False,
    finish: bool = True,
) -> Iterator[bytes]:
    """The SSE events of a streamed completion; ``finish`` False stops after the last delta."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    yield _data(chunk({"role": "assistant", "content": ""}))
    if reply.reasoning:
        frame = _framer(b"data: ", chunk({"reasoning_content": _HOLE}))
        for piece in _pieces(reply.reasoning, reply.chunk_size):
            yield frame(piece)
    if reply.text:
        frame = _framer(b"data: ", chunk({"content": _HOLE}))
        for piece in _pieces(reply.text, reply.chunk_size):
            yield frame(piece)
    for index, (call, call_id) in enumerate(zip(reply.tool_calls, call_ids, strict=True)):
        # As OpenAI does: the first delta of a call has id and name, the rest only arguments.
        head = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        yield _data(chunk({"tool_calls": [head]}))
        frame = _framer(
            b"data: ", chunk({"tool_calls": [{"index": index, "function": {"arguments": _HOLE}}]})
        )
        for piece in _pieces(call.arguments, reply.chunk_size):
            yield frame(piece)
    if not finish:
        return
    yield _data(chunk({}, reply.finish_reason))
    if include_usage:
        yield _data(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": _usage_json(reply.usage),
            }
        )
    yield b"data: [DONE]\n\n"


# Anthropic messages


def _tool_input(arguments: str) -> Any:
    """A tool_use ``input``: the parsed arguments, {} if empty, the raw text if not JSON."""
    if not arguments.strip():
        return {}
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def _has_text_block(reply: ChatReply) -> bool:
    # A reply with nothing else still gets an (empty) text block, so content is never empty.
    return bool(reply.text) or not (reply.reasoning or reply.tool_calls)


def _anthropic_message(
    reply: ChatReply, model: str, mid: str, call_ids: list[str], signature: str
) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.reasoning:
        content.append({"type": "thinking", "thinking": reply.reasoning, "signature": signature})
    if _has_text_block(reply):
        content.append({"type": "text", "text": reply.text or ""})
    for call, call_id in zip(reply.tool_calls, call_ids, strict=True):
        content.append(
            {
                "type": "tool_use",
                "id": call_id,
                "name": call.name,
                "input": _tool_input(call.arguments),
            }
        )
    return {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _ANTHROPIC_STOP_REASONS.get(reply.finish_reason, reply.finish_reason),
        "stop_sequence": None,
        "usage": _anthropic_usage(reply.usage),
    }


def _anthropic_events(
    reply: ChatReply,
    model: str,
    mid: str,
    call_ids: list[str],
    signature: str,
    *,
    finish: bool = True,
) -> Iterator[bytes]:
    """The SSE events of a streamed message; ``finish`` False stops after the last delta."""
    usage = _anthropic_usage(reply.usage)
    start: dict[str, Any] = {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    yield _event("message_start", {"type": "message_start", "message": start})
    yield _event("ping", {"type": "ping"})

    # (content_block, delta type, delta field, streamed text, final delta or None)
    blocks: list[tuple[dict[str, Any], str, str, str, dict[str, Any] | None]] = []
    if reply.reasoning:
        blocks.append(
            (
                {"type": "thinking", "thinking": "", "signature": ""},
                "thinking_delta",
                "thinking",
                reply.reasoning,
                {"type": "signature_delta", "signature": signature},
            )
        )
    if _has_text_block(reply):
        blocks.append(({"type": "text", "text": ""}, "text_delta", "text", reply.text or "", None))
    for call, call_id in zip(reply.tool_calls, call_ids, strict=True):
        block = {"type": "tool_use", "id": call_id, "name": call.name, "input": {}}
        blocks.append((block, "input_json_delta", "partial_json", call.arguments, None))

    for index, (block, delta_type, key, text, last_delta) in enumerate(blocks):
        yield _event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": block},
        )
        frame = _framer(
            b"event: content_block_delta\ndata: ",
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": delta_type, key: _HOLE},
            },
        )
        if text:
            for piece in _pieces(text, reply.chunk_size):
                yield frame(piece)
        if last_delta is not None:
            delta_event = {"type": "content_block_delta", "index": index, "delta": last_delta}
            yield _event("content_block_delta", delta_event)
        if not finish and index == len(blocks) - 1:
            return
        yield _event("content_block_stop", {"type": "content_block_stop", "index": index})
    stop_reason = _ANTHROPIC_STOP_REASONS.get(reply.finish_reason, reply.finish_reason)
    yield _event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": usage["output_tokens"]},
        },
    )
    yield _event("message_stop", {"type": "message_stop"})


def _partial_events(api: Api, text: str, model: str, number: int) -> Iterator[bytes]:
    """A stream of ``text`` deltas that stops before any finish (for the fault replies)."""
    partial = ChatReply(text=text)
    if api == "anthropic":
        return _anthropic_events(partial, model, f"msg_fake-{number}", [], "", finish=False)
    return _openai_events(partial, model, f"chatcmpl-fake-{number}", [], finish=False)


def _stream_error_event(api: Api, reply: StreamErrorReply) -> bytes:
    body = _error_json(api, reply.status, reply.message, reply.error_type)
    return _event("error", body) if api == "anthropic" else _data(body)


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
    # socketserver's default backlog is 5: the 6th of ten parallel delegates connecting at once
    # waits for a SYN retry (1 s), which is the fake's delay, not the client's.
    request_queue_size = 128
    fake: FakeLLM

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout test, cancelled stream) is expected, not an error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _route(path: str) -> Api | None:
    route = path.split("?")[0].rstrip("/")
    if route.endswith("/chat/completions"):
        return "openai"
    if route.endswith("/messages"):
        return "anthropic"
    return None


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


class FakeLLM:
    """A scripted OpenAI- and Anthropic-compatible server on 127.0.0.1.

    Thread-safe: tests, the server's request threads and a subprocess may all use it at once.

    Attributes:
        requests: The JSON bodies of the model requests received (both APIs), in order.
        request_headers: The headers of those requests (same order), names lowercased.
        request_times: Wall-clock time (time.time()) each request arrived, for latency figures.
        request_paths: The path each request was sent to (same order), e.g. ``/v1/messages``.
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
        self.request_paths: list[str] = []
        """The path (with any query) each request was sent to, e.g. ``/v1/chat/completions``."""
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

    @property
    def anthropic_base_url(self) -> str:
        """The Anthropic base URL, ``http://127.0.0.1:<port>/v1``: clients POST to ``/messages``
        under it (litellm, given it as api_base, POSTs to ``/v1/v1/messages``: also served)."""
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

    def process_env(self) -> dict[str, str]:
        """The whole environment of a ``perstack`` subprocess that talks to this server.

        This process's environment without its API keys (only the fake's) and without a
        storage override (jobs go to the workspace), plus :meth:`env`.
        """
        inherited = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        inherited.pop("PERSTACK_STORAGE_PATH", None)
        return {**inherited, **self.env()}

    def anthropic_env(self, api_key: str = "sk-ant-fake") -> dict[str, str]:
        """Environment variables that point provider ``anthropic`` at this server.

        ``ANTHROPIC_BASE_URL`` is ``<url>/v1``; NO_PROXY entries as for :meth:`env`.
        """
        return {
            "ANTHROPIC_BASE_URL": self.anthropic_base_url,
            "ANTHROPIC_API_KEY": api_key,
            **no_proxy_env(os.environ),
        }

    # -- script

    def script(self, *replies: ScriptItem) -> FakeLLM:
        """Append replies to the queue (one is consumed per model request)."""
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
        """The body of the latest model request."""
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
            self.request_paths.clear()
            self.default = None

    def _next(self, body: dict[str, Any], headers: dict[str, str], path: str = "") -> Reply:
        with self._lock:
            self.requests.append(body)
            self.request_headers.append(headers)
            self.request_times.append(time.time())
            self.request_paths.append(path)
            number = len(self.requests)
            item = self._queue.popleft() if self._queue else self.default
        if item is None:
            return reply_error(
                500,
                f"fake LLM script exhausted: request #{number} has no scripted reply "
                "(script more replies or set a default)",
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
