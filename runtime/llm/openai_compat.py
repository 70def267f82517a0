"""The native client for OpenAI-compatible Chat Completions.

OpenAI, DeepSeek, Ollama, Azure OpenAI, Fireworks, Groq, OpenRouter, Together and any server
with a ``baseUrl`` speak it. No litellm: requests go out through httpx
(:mod:`runtime.llm.http`), with streaming, usage in the last chunk
(``stream_options.include_usage``), tool calls assembled from their argument deltas, and
reasoning text where the provider streams it (``reasoning_content`` or ``reasoning``).

The stream accumulator here also serves the litellm path, whose chunks have the same shape, so
both paths turn a stream into the same chunks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

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
from runtime.llm.convert import to_openai_messages, to_openai_tools
from runtime.llm.http import EventStream, json_data
from runtime.llm.model_facts import ModelInfo
from runtime.llm.reasoning import reasoning_effort
from runtime.schema.checkpoint import Usage
from runtime.schema.ids import new_id

__all__ = ["OpenAICompatibleModel", "StreamAccumulator", "openai_usage"]


# Stream accumulation ------------------------------------------------------------------------------

_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "end_turn": "stop",
    "tool_calls": "tool-calls",
    "function_call": "tool-calls",
    "tool_use": "tool-calls",
    "length": "length",
    "max_tokens": "length",
    "content_filter": "content-filter",
}


def _get(obj: Any, key: str) -> Any:
    """``obj[key]`` for our decoded JSON, ``obj.key`` for litellm's chunk objects."""
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass
class _PendingCall:
    id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    """Argument fragments, joined once at the end: appending to a string would be quadratic."""


class StreamAccumulator:
    """Turns chat-completion stream chunks into our chunks; tool calls are assembled until the end.

    Chunks may be decoded JSON (native path) or litellm's objects (same fields as attributes).
    """

    def __init__(self) -> None:
        self.calls: list[_PendingCall] = []
        self._by_index: dict[int, int] = {}
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.signature: str | None = None
        self.received = False

    def feed(self, chunk: Any) -> Iterator[ModelChunk]:
        """Take one chunk; yield the reasoning and text deltas it carries."""
        self.received = True
        usage = _get(chunk, "usage")
        if usage is not None:
            self.usage = usage
        for choice in _get(chunk, "choices") or []:
            if _get(choice, "finish_reason"):
                self.finish_reason = _get(choice, "finish_reason")
            # A whole (non-streamed) completion has a message where a chunk has a delta.
            delta = _get(choice, "delta") or _get(choice, "message")
            if delta is None:
                continue
            reasoning = _get(delta, "reasoning_content") or _get(delta, "reasoning")
            if reasoning and isinstance(reasoning, str):
                yield ReasoningDelta(reasoning)
            for block in _get(delta, "thinking_blocks") or []:
                signature = block.get("signature") if isinstance(block, dict) else None
                if signature:
                    self.signature = signature
            content = _get(delta, "content")
            if content and isinstance(content, str):
                yield TextDelta(content)
            for fragment in _get(delta, "tool_calls") or []:
                self._add_fragment(fragment)

    def _add_fragment(self, fragment: Any) -> None:
        index = _get(fragment, "index")
        call_id = _get(fragment, "id")
        position = self._by_index.get(index) if isinstance(index, int) else None
        if position is None or (call_id and self.calls[position].id not in (None, call_id)):
            # A new call: an unseen index, or (some OpenAI-compatible servers) a new id under a
            # reused index.
            self.calls.append(_PendingCall())
            position = len(self.calls) - 1
            if isinstance(index, int):
                self._by_index[index] = position
        call = self.calls[position]
        if call_id:
            call.id = call_id
        function = _get(fragment, "function")
        name = _get(function, "name")
        if name:
            call.name = name
        arguments = _get(function, "arguments")
        if arguments and isinstance(arguments, str):
            call.arguments.append(arguments)

    def tool_calls(self) -> list[ToolCallChunk]:
        """The complete tool calls, in the order the model made them."""
        return [
            ToolCallChunk(
                id=call.id or f"call_{new_id()}",
                name=call.name,
                arguments="".join(call.arguments) or "{}",
            )
            for call in self.calls
            if call.name
        ]

    def finish(self, has_calls: bool) -> FinishReason:
        """The finish reason in our terms."""
        if self.finish_reason is None:
            # A stream that ended without a reason (some servers omit it): judge by its content.
            return "tool-calls" if has_calls else "stop"
        return _FINISH_REASONS.get(self.finish_reason, "other")


def openai_usage(raw: Any, info: ModelInfo | None) -> Usage:
    """Our usage (with cost from the price table) from a chat-completions ``usage`` object.

    ``prompt_tokens`` counts cached tokens too; they are reported again as
    ``cachedInputTokens`` (``prompt_tokens_details.cached_tokens``, or DeepSeek's
    ``prompt_cache_hit_tokens``) and billed at the cache-read price.
    """
    if raw is None:
        return Usage()
    prompt = _int(_get(raw, "prompt_tokens"))
    completion = _int(_get(raw, "completion_tokens"))
    total = _int(_get(raw, "total_tokens")) or prompt + completion
    reasoning = _int(_get(_get(raw, "completion_tokens_details"), "reasoning_tokens"))
    cached = _int(_get(_get(raw, "prompt_tokens_details"), "cached_tokens")) or _int(
        _get(raw, "prompt_cache_hit_tokens")
    )
    creation = _int(_get(raw, "cache_creation_input_tokens"))
    cost = None
    if info is not None:
        cost = info.cost(
            input_tokens=prompt,
            output_tokens=completion,
            cached_input_tokens=cached,
            cache_creation_input_tokens=creation,
            reasoning_tokens=reasoning,
        )
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        reasoning_tokens=reasoning,
        total_tokens=total,
        cached_input_tokens=cached,
        cost_usd=cost,
    )


# The client ---------------------------------------------------------------------------------------


class OpenAICompatibleModel(NativeModel):
    """A :class:`~runtime.llm.LanguageModel` speaking OpenAI's Chat Completions API over httpx.

    Args:
        resolution: The provider and model, from :func:`runtime.llm.providers.resolve_provider`.
        endpoint: The chat-completions URL and its headers (see :mod:`runtime.llm.factory`).
        wire_model: The ``model`` field of the request body.
    """

    def _body(self, request: GenerationRequest) -> dict[str, Any]:
        res = self._resolution
        body: dict[str, Any] = {
            "model": self._wire_model,
            "messages": to_openai_messages(
                request.messages, provider=res.litellm_provider, model=res.litellm_model
            ),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            # No tool_choice: "auto" is the default, and "required" hangs some local servers.
            body["tools"] = to_openai_tools(request.tools)
        if self.reasoning_tokens(request.reasoning_budget):
            effort = reasoning_effort(
                res.provider_name, res.litellm_model, request.reasoning_budget
            )
            if effort is not None:
                body["reasoning_effort"] = effort
        return body

    async def stream(self, request: GenerationRequest) -> AsyncIterator[ModelChunk]:
        """Run one generation and yield its chunks, ending with exactly one :class:`Finish`.

        Reasoning and text deltas are yielded as they arrive; tool calls are yielded whole, after
        the stream ends, one :class:`ToolCallChunk` per call.

        Raises:
            ModelError: The call failed; see :mod:`runtime.llm.failures`.
        """
        body = self._body(request)
        acc = StreamAccumulator()
        done = False
        async with EventStream(
            self.client(), self._endpoint, body, timeout_ms=request.timeout_ms
        ) as events:
            if events.whole_body is not None:
                for out in acc.feed(events.whole_body):
                    yield out
                acc.usage = events.whole_body.get("usage")
                done = True
            async for event in events:
                if event.data.strip() == "[DONE]":
                    done = True
                    break
                chunk = json_data(events, event)
                if isinstance(chunk, dict) and chunk.get("error") is not None:
                    error = chunk["error"]
                    message = error.get("message") if isinstance(error, dict) else str(error)
                    raise events.broken(f"the server reported an error mid-stream: {message}")
                for out in acc.feed(chunk):
                    yield out
            if not done and acc.finish_reason is None:
                raise events.broken(
                    "it ended before the model finished (no finish reason and no [DONE])"
                )
        calls = acc.tool_calls()
        for call in calls:
            yield call
        yield Finish(
            finish_reason=acc.finish(bool(calls)),
            usage=openai_usage(acc.usage, self.model_info()),
            reasoning_signature=acc.signature,
        )
