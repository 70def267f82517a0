"""The model interface: everything the agent loop needs from an LLM, and nothing more.

Native clients speak the OpenAI-compatible and Anthropic APIs over httpx
(:mod:`runtime.llm.openai_compat`, :mod:`runtime.llm.anthropic`); litellm
(:mod:`runtime.llm.litellm_model`, imported only when needed) serves every other provider;
:mod:`runtime.llm.factory` picks one. :class:`runtime.testing.ScriptedModel` replays scripted
replies for tests and the demo. Another implementation only has to satisfy
:class:`LanguageModel`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from runtime.schema.checkpoint import Usage
from runtime.schema.messages import Message


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class GenerationRequest:
    """One model call."""

    messages: list[Message]
    tools: list[ToolSpec]
    """Empty when the model must answer in text (the final-result generation)."""
    reasoning_budget: str | int = "low"
    """Perstack's budget: none/minimal/low/medium/high or a token count; 0 and "none" disable."""
    timeout_ms: int = 300_000
    """Abort this generation after this long (the error is retryable)."""


@dataclass(frozen=True)
class ReasoningDelta:
    """A piece of reasoning text."""

    text: str
    kind: Literal["reasoning"] = "reasoning"


@dataclass(frozen=True)
class TextDelta:
    """A piece of answer text."""

    text: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True)
class ToolCallChunk:
    """One complete tool call (tool calls are never streamed piecemeal to the loop)."""

    id: str
    name: str
    arguments: str
    """The raw JSON text of the arguments; the loop parses it and reports bad JSON to the model."""
    kind: Literal["toolCall"] = "toolCall"


FinishReason = Literal["stop", "tool-calls", "length", "content-filter", "error", "other"]


@dataclass(frozen=True)
class Finish:
    """The last chunk of every generation."""

    finish_reason: FinishReason
    usage: Usage = field(default_factory=Usage)
    reasoning_signature: str | None = None
    """Anthropic's thinking signature, when there was thinking."""
    kind: Literal["finish"] = "finish"


ModelChunk = ReasoningDelta | TextDelta | ToolCallChunk | Finish


@runtime_checkable
class LanguageModel(Protocol):
    """Anything that can stream a generation.

    ``stream`` yields deltas in arrival order and ends with exactly one :class:`Finish`. Failures
    raise :class:`runtime.errors.ModelError` with ``retryable`` set; the loop decides whether to
    retry (each retry is a ``retry`` event).

    Two optional methods: ``async prepare()``, awaited before each generation and outside its
    deadline (load a client library there), and ``async aclose()``, awaited when the run that
    created the model ends (close its connections there).
    """

    @property
    def model_name(self) -> str:
        """The model id as the user named it (e.g. ``gpt-4.1``)."""
        ...

    def context_window(self) -> int | None:
        """Context window in tokens when known."""
        ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[ModelChunk]:
        """Start a generation and yield its chunks."""
        ...
