"""Test doubles shipped with the runtime, so tests, the studio and the demo can use them.

:class:`ScriptedModel` is a :class:`~runtime.llm.LanguageModel` that replays scripted replies
instead of calling a provider. It streams text in small deltas so streaming paths are exercised.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
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
from runtime.schema.checkpoint import Usage
from runtime.schema.ids import new_id


@dataclass(frozen=True)
class Reply:
    """One scripted generation.

    Attributes:
        text: Answer text (streamed in ``chunk_size`` pieces).
        tool_calls: ``(tool_name, args)`` pairs; ``args`` may be a dict or raw JSON text (to
            script invalid arguments).
        reasoning: Reasoning text streamed before the answer.
        usage: Usage reported for this generation.
        finish_reason: Overrides the natural finish reason.
        error: Raised instead of answering.
        delay: Seconds to wait before the first chunk (to exercise timeouts).
    """

    text: str | None = None
    tool_calls: Sequence[tuple[str, dict[str, Any] | str]] = ()
    reasoning: str | None = None
    usage: Usage = field(
        default_factory=lambda: Usage(input_tokens=10, output_tokens=5, total_tokens=15)
    )
    finish_reason: FinishReason | None = None
    error: ModelError | None = None
    delay: float = 0.0
    chunk_size: int = 8


def reply(text: str, **kwargs: Any) -> Reply:
    """A text-only reply."""
    return Reply(text=text, **kwargs)


def call(tool_name: str, /, **args: Any) -> Reply:
    """A reply with a single tool call."""
    return Reply(tool_calls=[(tool_name, args)])


def calls(*pairs: tuple[str, dict[str, Any] | str], text: str | None = None) -> Reply:
    """A reply with several tool calls (run in parallel by the loop)."""
    return Reply(tool_calls=list(pairs), text=text)


def fail(message: str, *, retryable: bool, status_code: int | None = None) -> Reply:
    """A reply that raises a model error."""
    name = "RateLimitError" if retryable else "AuthenticationError"
    return Reply(error=ModelError(message, name=name, status_code=status_code, retryable=retryable))


ReplyFunction = Callable[[GenerationRequest], Reply]


class ScriptedModel:
    """A language model that replays scripted replies in order (or asks a function).

    Args:
        replies: The replies in order, or a function choosing a reply for each request.
        model_name: The name reported to the runtime.
        context_window: The context window reported to the runtime.

    Attributes:
        requests: Every request received, for assertions.
    """

    def __init__(
        self,
        replies: Sequence[Reply] | ReplyFunction,
        *,
        model_name: str = "scripted",
        context_window: int | None = 100_000,
    ) -> None:
        self._function: ReplyFunction | None = None
        self._queue: list[Reply] = []
        if callable(replies):
            self._function = replies
        else:
            self._queue = list(replies)
        self._model_name = model_name
        self._context_window = context_window
        self.requests: list[GenerationRequest] = []

    @property
    def model_name(self) -> str:
        """The name reported to the runtime."""
        return self._model_name

    def context_window(self) -> int | None:
        """The context window reported to the runtime."""
        return self._context_window

    def _next(self, request: GenerationRequest) -> Reply:
        if self._function is not None:
            return self._function(request)
        if not self._queue:
            raise ModelError(
                "ScriptedModel has no reply left for this request",
                name="ScriptExhausted",
                retryable=False,
            )
        return self._queue.pop(0)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[ModelChunk]:
        """Yield the chunks of the next scripted reply."""
        self.requests.append(request)
        scripted = self._next(request)
        if scripted.delay:
            await asyncio.sleep(scripted.delay)
        if scripted.error is not None:
            raise scripted.error
        size = max(1, scripted.chunk_size)
        for source, kind in ((scripted.reasoning, ReasoningDelta), (scripted.text, TextDelta)):
            if source:
                for start in range(0, len(source), size):
                    yield kind(source[start : start + size])
                    await asyncio.sleep(0)
        for name, args in scripted.tool_calls:
            arguments = args if isinstance(args, str) else json.dumps(args)
            yield ToolCallChunk(id=f"call_{new_id(12)}", name=name, arguments=arguments)
        natural: FinishReason = "tool-calls" if scripted.tool_calls else "stop"
        yield Finish(finish_reason=scripted.finish_reason or natural, usage=scripted.usage)


def scripted_team(
    scripts: Mapping[str, list[Reply]],
    *,
    fallback: Reply | None = None,
    model_name: str = "scripted",
) -> ScriptedModel:
    """A :class:`ScriptedModel` for a team: each expert gets its own queue of replies.

    A request is answered from the first queue, in ``scripts`` order, whose marker (a phrase of
    that expert's instruction) appears in the request's system prompt and that still has
    replies. The queues are consumed.

    Args:
        scripts: Marker → the replies for the expert whose instruction contains it.
        fallback: The reply when no queue fits; without one, that is a non-retryable
            :class:`~runtime.errors.ModelError` naming the end of the system prompt.
        model_name: The name reported to the runtime.
    """

    def choose(request: GenerationRequest) -> Reply:
        first = request.messages[0].contents[0] if request.messages else None
        system = getattr(first, "text", "")
        for marker, queue in scripts.items():
            if marker in system and queue:
                return queue.pop(0)
        if fallback is not None:
            return fallback
        raise ModelError(
            f"scripted_team has no reply left for system prompt ...{system[-80:]!r}",
            name="ScriptExhausted",
            retryable=False,
        )

    return ScriptedModel(choose, model_name=model_name)
