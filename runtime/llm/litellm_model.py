"""The real model: any provider litellm speaks, streamed through ``litellm.acompletion``.

Importing this module is cheap; litellm itself (about 3 s, and a remote price-map fetch unless told
otherwise) is imported on the first call that needs it, through :func:`_litellm`.

What happens here, in order: our messages become OpenAI chat messages (§5.9 of the reference), the
call goes out with streaming and usage reporting on and litellm's own retries off (the agent loop
owns retries, each one an event), streamed deltas become :mod:`runtime.llm` chunks, and every
failure becomes a :class:`~runtime.errors.ModelError` whose ``retryable`` follows §5.6.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import mimetypes
import os
import re
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.checkpoint import Usage
from runtime.errors import ModelError, PerstackError
from runtime.ids import new_id
from runtime.llm import (
    Finish,
    FinishReason,
    GenerationRequest,
    ModelChunk,
    ReasoningDelta,
    TextDelta,
    ToolCallChunk,
    ToolSpec,
)
from runtime.llm.providers import ProviderResolution, reasoning_options
from runtime.messages import (
    ExpertMessage,
    FileBinaryPart,
    FileInlinePart,
    FileUrlPart,
    ImageBinaryPart,
    ImageInlinePart,
    ImageUrlPart,
    InstructionMessage,
    Message,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolMessage,
    UserMessage,
)

__all__ = ["LiteLLMModel", "prewarm", "to_openai_messages", "to_openai_tools"]

_LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")


@functools.cache
def _litellm() -> Any:
    """Import and configure litellm once (thread-safe: the import lock serialises first use)."""
    # Must be set before the import: otherwise litellm fetches its price map over the network.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # No "Give Feedback / Get Help" banners on stdout (``perstack run`` prints JSON there).
    litellm.suppress_debug_info = True
    # A parameter the provider does not take (e.g. reasoning options) is dropped, not a 400.
    litellm.drop_params = True
    if not os.environ.get("LITELLM_LOG"):
        # litellm logs every failure to stderr before raising it; we raise a ModelError with the
        # same facts, and stderr output would draw over the studio's screen. LITELLM_LOG=DEBUG
        # restores litellm's own logging for debugging.
        for name in _LITELLM_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)
    return litellm


def prewarm() -> None:
    """Import litellm now (e.g. in a worker thread at studio start) so the first call is fast."""
    _litellm()


# Message conversion -------------------------------------------------------------------------------

_ANTHROPIC_STYLE = ("anthropic", "bedrock", "vertex_ai")
"""litellm providers that may serve Claude, whose thinking blocks and cache marks we pass on."""


def _is_claude(provider: str, model: str) -> bool:
    return provider == "anthropic" or (provider in _ANTHROPIC_STYLE and "claude" in model.lower())


def _data_url(mime_type: str, data: str) -> str:
    return f"data:{mime_type};base64,{data}"


def _file_block(
    part_id: str, mime_type: str, *, data: str | None = None, url: str | None = None
) -> dict[str, Any]:
    ext = mimetypes.guess_extension(mime_type) or ""
    file: dict[str, Any] = {"filename": f"{part_id}{ext}", "format": mime_type}
    if data is not None:
        file["file_data"] = _data_url(mime_type, data)
    else:
        file["file_id"] = url
    return {"type": "file", "file": file}


def _user_block(
    part: TextPart
    | ImageUrlPart
    | ImageInlinePart
    | ImageBinaryPart
    | FileUrlPart
    | FileInlinePart
    | FileBinaryPart,
) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImageUrlPart):
        return {"type": "image_url", "image_url": {"url": part.url}}
    if isinstance(part, ImageInlinePart):
        return {
            "type": "image_url",
            "image_url": {"url": _data_url(part.mime_type, part.encoded_data)},
        }
    if isinstance(part, ImageBinaryPart):
        return {"type": "image_url", "image_url": {"url": _data_url(part.mime_type, part.data)}}
    if isinstance(part, FileInlinePart):
        return _file_block(part.id, part.mime_type, data=part.encoded_data)
    if isinstance(part, FileBinaryPart):
        return _file_block(part.id, part.mime_type, data=part.data)
    return _file_block(part.id, part.mime_type, url=part.url)


def _mark_cached(message: dict[str, Any]) -> None:
    # Anthropic prompt caching: the mark goes on the last content block (litellm also reads a
    # message-level mark for plain-string content).
    mark = {"type": "ephemeral"}
    content = message.get("content")
    if isinstance(content, list) and content:
        content[-1]["cache_control"] = mark
    else:
        message["cache_control"] = mark


def _assistant(message: ExpertMessage, claude: bool) -> dict[str, Any]:
    texts = [p.text for p in message.contents if isinstance(p, TextPart)]
    calls = [p for p in message.contents if isinstance(p, ToolCallPart)]
    out: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts) if texts else None}
    if calls:
        out["tool_calls"] = [
            {
                "id": c.tool_call_id,
                "type": "function",
                "function": {"name": c.tool_name, "arguments": json.dumps(c.args)},
            }
            for c in calls
        ]
    elif out["content"] is None:
        out["content"] = ""
    if claude:
        # Extended thinking continues across tool calls only if the signed blocks come back;
        # unsigned thinking cannot be replayed, and other providers take none.
        blocks = [
            {"type": "thinking", "thinking": p.thinking, "signature": p.signature}
            for p in message.contents
            if isinstance(p, ThinkingPart) and p.signature
        ]
        if blocks:
            out["thinking_blocks"] = blocks
    return out


def _tool_messages(message: ToolMessage) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    media: list[dict[str, Any]] = []
    for result in message.contents:
        texts = [c.text for c in result.contents if isinstance(c, TextPart)]
        attachments = [c for c in result.contents if not isinstance(c, TextPart)]
        content = "\n".join(texts)
        if attachments:
            note = f"[{len(attachments)} attachment(s) follow in the next user message]"
            content = f"{content}\n{note}" if content else note
            media.append(
                {
                    "type": "text",
                    "text": f"Attachments returned by tool {result.tool_name!r} "
                    f"(call {result.tool_call_id}):",
                }
            )
            media.extend(_user_block(a) for a in attachments)
        out.append({"role": "tool", "tool_call_id": result.tool_call_id, "content": content})
    if media:
        # OpenAI tool messages carry text only, and every tool message must directly follow the
        # assistant message that called it: images and files go in one user message after them.
        out.append({"role": "user", "content": media})
    return out


def to_openai_messages(
    messages: Sequence[Message], *, provider: str = "openai", model: str = ""
) -> list[dict[str, Any]]:
    """Convert a conversation to OpenAI chat-completions messages, as litellm takes them.

    Args:
        messages: The conversation.
        provider: The litellm provider (prefix of the litellm model); Claude-serving providers get
            signed thinking blocks and prompt-cache marks.
        model: The litellm model, to tell Claude on Bedrock/Vertex from other models there.

    Returns:
        One or more chat messages per message: a tool message becomes one ``tool`` message per
        result, plus a ``user`` message carrying any images or files the tools returned.
    """
    claude = _is_claude(provider, model)
    out: list[dict[str, Any]] = []
    for message in messages:
        converted: list[dict[str, Any]]
        if isinstance(message, InstructionMessage):
            converted = [{"role": "system", "content": "\n".join(p.text for p in message.contents)}]
        elif isinstance(message, UserMessage):
            parts = message.contents
            if len(parts) == 1 and isinstance(parts[0], TextPart):
                converted = [{"role": "user", "content": parts[0].text}]
            else:
                converted = [{"role": "user", "content": [_user_block(p) for p in parts]}]
        elif isinstance(message, ExpertMessage):
            converted = [_assistant(message, claude)]
        else:
            converted = _tool_messages(message)
        if message.cache and claude and converted:
            _mark_cached(converted[-1])
        out.extend(converted)
    return out


def to_openai_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Convert tool specs to OpenAI function tools."""
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": t.input_schema,
            },
        }
        for t in tools
    ]


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


@dataclass
class _PendingCall:
    id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class _Accumulator:
    """Turns litellm stream chunks into our chunks; tool calls are assembled until the end."""

    def __init__(self) -> None:
        self.calls: list[_PendingCall] = []
        self._by_index: dict[int, int] = {}
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.signature: str | None = None
        self.received = False

    def feed(self, chunk: Any) -> Iterator[ModelChunk]:
        self.received = True
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
        for choice in getattr(chunk, "choices", None) or []:
            if getattr(choice, "finish_reason", None):
                self.finish_reason = choice.finish_reason
            delta = getattr(choice, "delta", None)
            if delta is None:
                continue
            reasoning = getattr(delta, "reasoning_content", None)
            if reasoning:
                yield ReasoningDelta(reasoning)
            for block in getattr(delta, "thinking_blocks", None) or []:
                signature = block.get("signature") if isinstance(block, dict) else None
                if signature:
                    self.signature = signature
            content = getattr(delta, "content", None)
            if content:
                yield TextDelta(content)
            for fragment in getattr(delta, "tool_calls", None) or []:
                self._add_fragment(fragment)

    def _add_fragment(self, fragment: Any) -> None:
        index = getattr(fragment, "index", None)
        call_id = getattr(fragment, "id", None)
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
        function = getattr(fragment, "function", None)
        name = getattr(function, "name", None)
        if name:
            call.name = name
        arguments = getattr(function, "arguments", None)
        if arguments:
            call.arguments.append(arguments)

    def tool_calls(self) -> list[ToolCallChunk]:
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
        if self.finish_reason is None:
            # A stream that ended without a reason (some servers omit it): judge by its content.
            return "tool-calls" if has_calls else "stop"
        return _FINISH_REASONS.get(self.finish_reason, "other")


# Errors -------------------------------------------------------------------------------------------

_RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
_FINAL_STATUS = frozenset({400, 401, 402, 403, 404, 413, 422})
_RETRYABLE_NAMES = frozenset(
    {
        "Timeout",
        "APITimeoutError",
        "RateLimitError",
        "ServiceUnavailableError",
        "InternalServerError",
        "BadGatewayError",
        "APIConnectionError",
        "MidStreamFallbackError",
    }
)
_RETRYABLE_WORDS = (
    "rate limit",
    "overloaded",
    "timeout",
    "timed out",
    "service unavailable",
    "quota exceeded",
    "throttl",
    "connection refused",
)
_CONNECTION_NAMES = frozenset(
    {
        "ConnectError",
        "ConnectTimeout",
        "ClientConnectorError",
        "ClientConnectionError",
        "ClientOSError",
        "ServerDisconnectedError",
        "ClientPayloadError",
        "RemoteProtocolError",
        "ReadError",
    }
)
"""Low-level network failures. litellm's own APIConnectionError is not one: litellm wraps any
unexpected exception in it, so the network error must appear further down the chain."""
_STATUS_NAMES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
    500: "InternalServerError",
    502: "BadGatewayError",
    503: "ServiceUnavailableError",
    504: "GatewayTimeoutError",
}
"""Names for statuses litellm reports only as a generic ``APIError``."""
_PREFIX = re.compile(r"^\s*(?:litellm\.\w+:|\w+Error:|\w+Exception\s*-|APIError\s*-)\s*")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps (cause, context, litellm's ``original_exception``)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        original = getattr(current, "original_exception", None)
        todo.extend(
            [
                current.__cause__,
                current.__context__,
                original if isinstance(original, BaseException) else None,
            ]
        )


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _clean(message: str) -> str:
    """The provider's own words from a litellm message (its class-name prefixes removed)."""
    text = message.split(" Original exception:", 1)[0].split("Received Model Group=", 1)[0]
    previous = None
    while previous != text:
        previous = text
        text = _PREFIX.sub("", text, count=1)
    return text.strip() or message.strip()


def _is_timeout(exc: BaseException) -> bool:
    return any(
        isinstance(e, TimeoutError) or _names(e) & {"Timeout", "APITimeoutError"}
        for e in _chain(exc)
    )


def _connection_cause(exc: BaseException) -> BaseException | None:
    """The low-level network error behind ``exc``, when it is a connection failure."""
    found: BaseException | None = None
    for e in _chain(exc):
        if isinstance(e, ConnectionError | socket.gaierror) or _names(e) & _CONNECTION_NAMES:
            found = e  # keep walking: the innermost cause has the most specific words
    return found


def _reason(cause: BaseException) -> str:
    for e in _chain(cause):
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, socket.gaierror):
            return "host name not found"
    return _clean(str(cause)) or type(cause).__name__


class LiteLLMModel:
    """A :class:`~runtime.llm.LanguageModel` backed by litellm.

    Args:
        resolution: The provider and model to call, from
            :func:`runtime.llm.providers.resolve_provider`.
    """

    def __init__(self, resolution: ProviderResolution) -> None:
        self._resolution = resolution
        self._supports_reasoning: bool | None = None
        self._context_window: int | None = None
        self._context_window_known = False

    def __repr__(self) -> str:
        return f"LiteLLMModel({self._resolution.litellm_model!r})"

    @property
    def model_name(self) -> str:
        """The model id as the user named it (e.g. ``gpt-4.1``)."""
        return self._resolution.model

    @property
    def resolution(self) -> ProviderResolution:
        """The provider resolution this model calls with."""
        return self._resolution

    def context_window(self) -> int | None:
        """The model's input window in tokens from litellm's model table; None when unknown."""
        if not self._context_window_known:
            self._context_window_known = True
            try:
                info = _litellm().get_model_info(model=self._resolution.litellm_model)
                # Only max_input_tokens: litellm's max_tokens is often the output limit.
                window = info.get("max_input_tokens")
                self._context_window = window if isinstance(window, int) else None
            except Exception:  # unknown model: litellm raises; "unknown" is the honest answer
                self._context_window = None
        return self._context_window

    # -- the call

    def _reasoning(self, budget: str | int) -> dict[str, Any]:
        res = self._resolution
        try:
            options = reasoning_options(res.provider_name, res.litellm_model, budget)
        except PerstackError as exc:
            raise ModelError(exc.message, name="ConfigError") from exc
        if not options:
            return {}
        if self._supports_reasoning is None:
            # Reasoning options sent to a model without reasoning are a 400 on most providers, so
            # only models litellm knows to reason get them.
            try:
                self._supports_reasoning = bool(
                    _litellm().supports_reasoning(model=res.litellm_model)
                )
            except Exception:
                self._supports_reasoning = False
        return options if self._supports_reasoning else {}

    def _kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        res = self._resolution
        kwargs: dict[str, Any] = {
            "model": res.litellm_model,
            "messages": to_openai_messages(
                request.messages, provider=res.litellm_provider, model=res.litellm_model
            ),
            "stream": True,
            "stream_options": {"include_usage": True},
            "timeout": request.timeout_ms / 1000,
            # The loop retries (each retry is an event); litellm and the provider SDK must not.
            "num_retries": 0,
            "max_retries": 0,
        }
        if request.tools:
            kwargs["tools"] = to_openai_tools(request.tools)
        if res.api_key is not None:
            kwargs["api_key"] = res.api_key
        if res.api_base is not None:
            kwargs["api_base"] = res.api_base
        kwargs.update(res.extra)
        kwargs.update(self._reasoning(request.reasoning_budget))
        return kwargs

    def _check_provider(self, litellm: Any) -> None:
        known = {str(getattr(p, "value", p)) for p in getattr(litellm, "provider_list", [])}
        provider = self._resolution.litellm_provider
        if known and provider not in known:
            raise ModelError(
                f"Provider {self._resolution.provider_name!r} is not known to litellm "
                f"(model {self._resolution.litellm_model!r}). Use anthropic, openai, google, "
                "ollama, azure-openai, amazon-bedrock, google-vertex, deepseek or a litellm "
                "provider name (https://docs.litellm.ai/docs/providers).",
                name="UnknownProvider",
            )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[ModelChunk]:
        """Run one generation and yield its chunks, ending with exactly one :class:`Finish`.

        Reasoning and text deltas are yielded as they arrive; tool calls are yielded whole, after
        the stream ends, one :class:`ToolCallChunk` per call.

        Raises:
            ModelError: The call failed. ``retryable`` is set for rate limits, server errors,
                timeouts and connection failures; ``name`` is ``TimeoutError`` for a timeout.
        """
        litellm = _litellm()
        self._check_provider(litellm)
        kwargs = self._kwargs(request)
        timeout_s = request.timeout_ms / 1000
        # One deadline for the whole generation (Perstack's AbortSignal.timeout): the HTTP
        # timeout alone restarts with every chunk, so a slow drip could run for ever. The
        # deadline is applied to our awaits only, never across a yield to the consumer.
        deadline = asyncio.get_running_loop().time() + timeout_s
        acc = _Accumulator()
        response: Any = None
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    response = await litellm.acompletion(**kwargs)
            except Exception as exc:
                raise self._error(exc, request, acc) from exc
            if response is None:
                # litellm 1.110 returns None when an OpenAI-style provider answers 422 to both
                # its attempt and its retry without the offending parameters (drop_params).
                raise ModelError(
                    f"{self._resolution.provider_name} returned no response for model "
                    f"{self._resolution.model!r}: the provider rejected the request as "
                    "unprocessable (HTTP 422).",
                    name="UnprocessableEntityError",
                    status_code=422,
                )
            iterator = response.__aiter__()
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await anext(iterator)
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    raise self._error(exc, request, acc) from exc
                for out in acc.feed(chunk):
                    yield out
        finally:
            if response is not None:
                await _close(response)
        calls = acc.tool_calls()
        for call in calls:
            yield call
        yield Finish(
            finish_reason=acc.finish(bool(calls)),
            usage=self._usage(acc.usage),
            reasoning_signature=acc.signature,
        )

    # -- results

    def _usage(self, raw: Any) -> Usage:
        if raw is None:
            return Usage()
        prompt = _int(getattr(raw, "prompt_tokens", 0))
        completion = _int(getattr(raw, "completion_tokens", 0))
        total = _int(getattr(raw, "total_tokens", 0)) or prompt + completion
        reasoning = _int(
            getattr(getattr(raw, "completion_tokens_details", None), "reasoning_tokens", 0)
        )
        cached = _int(getattr(getattr(raw, "prompt_tokens_details", None), "cached_tokens", 0))
        return Usage(
            input_tokens=prompt,
            output_tokens=completion,
            reasoning_tokens=reasoning,
            total_tokens=total,
            cached_input_tokens=cached,
            cost_usd=self._cost(raw, prompt, completion),
        )

    def _cost(self, raw: Any, prompt: int, completion: int) -> float | None:
        litellm = _litellm()
        model = self._resolution.litellm_model
        try:
            # Only models in litellm's price table have a cost; a made-up price is worse than none.
            litellm.get_model_info(model=model)
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=model,
                prompt_tokens=prompt,
                completion_tokens=completion,
                # The usage object carries each provider's cache-read/write split.
                usage_object=raw,
            )
            return float(prompt_cost) + float(completion_cost)
        except Exception:
            return None

    # -- errors

    def _redact(self, text: str) -> str:
        key = self._resolution.api_key
        return text.replace(key, "***") if key and len(key) >= 4 else text

    def _error(
        self, exc: BaseException, request: GenerationRequest, acc: _Accumulator
    ) -> ModelError:
        """Normalise a failure into a ModelError (reference §8.4, retryability per §5.6)."""
        res = self._resolution
        where = res.api_base or f"the {res.provider_name} API"
        if _is_timeout(exc):
            return ModelError(
                f"{res.provider_name} model {res.model!r} did not finish within "
                f"{request.timeout_ms / 1000:g} s (timeout {request.timeout_ms} ms). Raise "
                "`timeout` in perstack.toml (or --timeout) if generations legitimately take "
                "longer.",
                name="TimeoutError",
                retryable=True,
            )
        status = getattr(exc, "status_code", None)
        status = status if isinstance(status, int) else None
        names = _names(exc)
        connection = _connection_cause(exc)
        if connection is not None and (status is None or status >= 500):
            if acc.received:
                text = (
                    f"The connection to {where} broke off during the response "
                    f"({_reason(connection)})."
                )
            else:
                text = (
                    f"Cannot connect to {where} ({_reason(connection)}). Check that the "
                    "server is running and that the provider's base URL is right."
                )
            return ModelError(self._redact(text), name="APIConnectionError", retryable=True)
        raw = str(getattr(exc, "message", None) or exc)
        message = _clean(raw)
        name = type(exc).__name__
        original = getattr(exc, "original_exception", None)
        if name == "MidStreamFallbackError" and isinstance(original, BaseException):
            name = type(original).__name__  # litellm's wrapper says less than what it wraps
        if name == "APIError" and status in _STATUS_NAMES:
            name = _STATUS_NAMES[status]
        lowered = message.lower()
        if status in _FINAL_STATUS:
            retryable = False
        else:
            retryable = (
                status in _RETRYABLE_STATUS
                or bool(names & _RETRYABLE_NAMES)
                or any(word in lowered for word in _RETRYABLE_WORDS)
            )
        head = f"{res.provider_name} returned HTTP {status}" if status else res.provider_name
        text = f"{head} ({name}): {message}"
        if status in (401, 403) and res.api_key_env:
            text += f" Check {res.api_key_env}."
        return ModelError(self._redact(text), name=name, status_code=status, retryable=retryable)


async def _close(response: Any) -> None:
    """Release the HTTP connection of a stream we stop reading (error, timeout, early exit)."""
    aclose = getattr(response, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception:  # closing is best effort; the caller already has the real outcome
        pass
