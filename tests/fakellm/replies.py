"""The scripted replies: what each model request answers, and the ``reply_*`` builders.

Replies are plain data; the route a request came in on (see :mod:`.wire`) decides how one is
written on the wire. :func:`reply_from_json` builds them for a server in another process.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias


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
