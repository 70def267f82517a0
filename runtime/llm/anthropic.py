"""The native client for Anthropic's Messages API.

Streaming, tool use, extended thinking with Perstack's ``reasoningBudget``, prompt caching, and
usage with cache reads and writes. No litellm and no Anthropic SDK: requests go out through
httpx (:mod:`runtime.llm.http`), and the event stream (``message_start``,
``content_block_*``, ``message_delta``, ``message_stop``) is folded into our chunks here.
Requests carry cache breakpoints (:func:`to_anthropic_request`), so the tools, the stable part
of the system prompt and the conversation so far are read from Anthropic's prompt cache on
every step after the first.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import ModelError
from runtime.llm import (
    Finish,
    FinishReason,
    GenerationRequest,
    ModelChunk,
    ReasoningDelta,
    TextDelta,
    ToolCallChunk,
)
from runtime.llm.base import NativeModel
from runtime.llm.convert import to_anthropic_request
from runtime.llm.failures import ANTHROPIC_ERROR_STATUS, status_error
from runtime.llm.http import EventStream, json_data
from runtime.llm.model_facts import ModelInfo
from runtime.llm.reasoning import ANTHROPIC_MIN_THINKING_TOKENS
from runtime.schema.checkpoint import Usage

__all__ = ["AnthropicModel"]

_DEFAULT_MAX_TOKENS = 128_000
"""``max_tokens`` for a model the price table does not know (litellm's default too)."""

_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "tool_use": "tool-calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content-filter",
}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass
class _Block:
    kind: str
    id: str = ""
    name: str = ""
    parts: list[str] = field(default_factory=list)


@dataclass
class _Message:
    """What the events of one message add up to."""

    blocks: dict[int, _Block] = field(default_factory=dict)
    stop_reason: str | None = None
    stopped: bool = False
    signature: str | None = None
    input_tokens: int = 0
    cache_read: int = 0
    cache_creation: int = 0
    output_tokens: int = 0

    def usage(self, info: ModelInfo | None) -> Usage:
        # Anthropic's input_tokens leave out cache reads and writes; ours (like OpenAI's
        # prompt_tokens and litellm's) count every input token.
        prompt = self.input_tokens + self.cache_read + self.cache_creation
        cost = None
        if info is not None:
            cost = info.cost(
                input_tokens=prompt,
                output_tokens=self.output_tokens,
                cached_input_tokens=self.cache_read,
                cache_creation_input_tokens=self.cache_creation,
            )
        return Usage(
            input_tokens=prompt,
            output_tokens=self.output_tokens,
            total_tokens=prompt + self.output_tokens,
            cached_input_tokens=self.cache_read,
            cost_usd=cost,
        )

    def add_usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        # message_start carries the input counts, message_delta the (cumulative) output count;
        # newer API versions may repeat input counts in message_delta.
        if "input_tokens" in usage and usage["input_tokens"] is not None:
            self.input_tokens = _int(usage["input_tokens"])
        if usage.get("cache_read_input_tokens") is not None:
            self.cache_read = _int(usage["cache_read_input_tokens"])
        if usage.get("cache_creation_input_tokens") is not None:
            self.cache_creation = _int(usage["cache_creation_input_tokens"])
        if usage.get("output_tokens") is not None:
            self.output_tokens = _int(usage["output_tokens"])


class AnthropicModel(NativeModel):
    """A :class:`~runtime.llm.LanguageModel` speaking Anthropic's Messages API over httpx.

    Args:
        resolution: The provider and model, from :func:`runtime.llm.providers.resolve_provider`.
        endpoint: The messages URL and its headers (see :mod:`runtime.llm.factory`).
        wire_model: The ``model`` field of the request body.
    """

    def _body(self, request: GenerationRequest) -> dict[str, Any]:
        info = self.model_info()
        max_tokens = (info.max_output_tokens if info else None) or _DEFAULT_MAX_TOKENS
        body: dict[str, Any] = {
            "model": self._wire_model,
            "max_tokens": max_tokens,
            "stream": True,
            **to_anthropic_request(request.messages, request.tools),
        }
        tokens = self.reasoning_tokens(request.reasoning_budget)
        if tokens:
            tokens = max(tokens, ANTHROPIC_MIN_THINKING_TOKENS)
            if tokens < max_tokens:  # Anthropic requires max_tokens > budget_tokens
                body["thinking"] = {"type": "enabled", "budget_tokens": tokens}
        return body

    def _stream_error(self, error: Any) -> ModelError:
        error = error if isinstance(error, dict) else {}
        kind = str(error.get("type") or "api_error")
        message = str(error.get("message") or kind)
        ep = self._endpoint
        return status_error(
            ep.provider,
            ANTHROPIC_ERROR_STATUS.get(kind, 500),
            message,
            key_env=ep.key_env,
            secret=ep.secret,
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[ModelChunk]:
        """Run one generation and yield its chunks, ending with exactly one :class:`Finish`.

        Thinking and text deltas are yielded as they arrive; tool calls are yielded whole, after
        the stream ends.

        Raises:
            ModelError: The call failed; see :mod:`runtime.llm.failures`.
        """
        body = self._body(request)
        message = _Message()
        async with EventStream(
            self.client(), self._endpoint, body, timeout_ms=request.timeout_ms
        ) as events:
            if events.whole_body is not None:
                for out in self._whole(events.whole_body, message):
                    yield out
            async for event in events:
                data = json_data(events, event)
                if not isinstance(data, dict):
                    raise events.broken(f"an event is not a JSON object: {event.data[:80]!r}")
                kind = data.get("type") or event.event
                if kind == "message_start":
                    message.add_usage((data.get("message") or {}).get("usage"))
                elif kind == "content_block_start":
                    block = data.get("content_block") or {}
                    message.blocks[_int(data.get("index"))] = _Block(
                        kind=str(block.get("type")),
                        id=str(block.get("id") or ""),
                        name=str(block.get("name") or ""),
                    )
                elif kind == "content_block_delta":
                    piece = self._delta(message, _int(data.get("index")), data.get("delta") or {})
                    if piece is not None:
                        yield piece
                elif kind == "message_delta":
                    delta = data.get("delta") or {}
                    message.stop_reason = delta.get("stop_reason") or message.stop_reason
                    message.add_usage(data.get("usage"))
                elif kind == "message_stop":
                    message.stopped = True
                    break
                elif kind == "error":
                    raise self._stream_error(data.get("error"))
            if not message.stopped and message.stop_reason is None:
                raise events.broken("it ended before the model finished (no message_stop)")
        calls = [
            ToolCallChunk(id=block.id, name=block.name, arguments="".join(block.parts) or "{}")
            for _, block in sorted(message.blocks.items())
            if block.kind == "tool_use"
        ]
        for call in calls:
            yield call
        yield Finish(
            finish_reason=_STOP_REASONS.get(message.stop_reason or "", "other")
            if message.stop_reason
            else ("tool-calls" if calls else "stop"),
            usage=message.usage(self.model_info()),
            reasoning_signature=message.signature,
        )

    def _delta(self, message: _Message, index: int, delta: dict[str, Any]) -> ModelChunk | None:
        kind = delta.get("type")
        block = message.blocks.setdefault(index, _Block(kind="text"))
        if kind == "text_delta":
            text = str(delta.get("text") or "")
            return TextDelta(text) if text else None
        if kind == "thinking_delta":
            thinking = str(delta.get("thinking") or "")
            return ReasoningDelta(thinking) if thinking else None
        if kind == "signature_delta":
            message.signature = str(delta.get("signature") or "") or message.signature
        elif kind == "input_json_delta":
            block.parts.append(str(delta.get("partial_json") or ""))
        return None

    def _whole(self, body: dict[str, Any], message: _Message) -> list[ModelChunk]:
        """A complete (non-streamed) message, as chunks."""
        out: list[ModelChunk] = []
        for index, block in enumerate(body.get("content") or []):
            kind = block.get("type")
            if kind == "text" and block.get("text"):
                out.append(TextDelta(str(block["text"])))
            elif kind == "thinking":
                if block.get("thinking"):
                    out.append(ReasoningDelta(str(block["thinking"])))
                message.signature = block.get("signature") or message.signature
            elif kind == "tool_use":
                message.blocks[index] = _Block(
                    kind="tool_use",
                    id=str(block.get("id") or ""),
                    name=str(block.get("name") or ""),
                    parts=[json.dumps(block.get("input") or {})],
                )
        message.stop_reason = body.get("stop_reason") or "end_turn"
        message.stopped = True
        message.add_usage(body.get("usage"))
        return out
