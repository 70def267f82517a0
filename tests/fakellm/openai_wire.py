"""OpenAI chat completions on the wire: a completion object, or its SSE chunks."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from .replies import _DEFAULT_USAGE, ChatReply
from .sse import _HOLE, _data, _framer, _pieces

_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_exceeded",
}


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
