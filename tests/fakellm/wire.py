"""What both APIs share on the wire: routing, error bodies and the stream faults."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, TypeAlias

from .anthropic_wire import _ANTHROPIC_ERROR_TYPES, _anthropic_events
from .openai_wire import _OPENAI_ERROR_TYPES, _openai_events
from .replies import ChatReply, StreamErrorReply
from .sse import _data, _event

Api: TypeAlias = Literal["openai", "anthropic"]


_JUNK: dict[Api, bytes] = {
    "openai": b'data: {"not json\n\n',
    "anthropic": b'event: content_block_delta\ndata: {"not json\n\n',
}
_DISCONNECT_TAIL: dict[Api, bytes] = {
    # A chunk header that promises 0x40 bytes, followed by fewer: the body ends mid-event.
    "openai": b'40\r\ndata: {"trunc',
    "anthropic": b'40\r\nevent: content_block_delta\ndata: {"trunc',
}


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


def _partial_events(api: Api, text: str, model: str, number: int) -> Iterator[bytes]:
    """A stream of ``text`` deltas that stops before any finish (for the fault replies)."""
    partial = ChatReply(text=text)
    if api == "anthropic":
        return _anthropic_events(partial, model, f"msg_fake-{number}", [], "", finish=False)
    return _openai_events(partial, model, f"chatcmpl-fake-{number}", [], finish=False)


def _stream_error_event(api: Api, reply: StreamErrorReply) -> bytes:
    body = _error_json(api, reply.status, reply.message, reply.error_type)
    return _event("error", body) if api == "anthropic" else _data(body)


def _route(path: str) -> Api | None:
    route = path.split("?")[0].rstrip("/")
    if route.endswith("/chat/completions"):
        return "openai"
    if route.endswith("/messages"):
        return "anthropic"
    return None
