"""Anthropic Messages on the wire: a message object, or its named SSE events."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from .replies import _DEFAULT_USAGE, ChatReply
from .sse import _HOLE, _event, _framer, _pieces

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
