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
import os
import re
import socket
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

from runtime.errors import ModelError
from runtime.llm import (
    Finish,
    GenerationRequest,
    ModelChunk,
)
from runtime.llm.base import ResolvedModel
from runtime.llm.convert import to_openai_messages, to_openai_tools
from runtime.llm.failures import (
    ANTHROPIC_ERROR_STATUS,
    FINAL_STATUS,
    RETRYABLE_STATUS,
    broken_stream_error,
    connection_error,
    invalid_response_error,
    status_error,
    status_name,
    timeout_error,
)
from runtime.llm.openai_compat import StreamAccumulator, openai_usage
from runtime.llm.reasoning import reasoning_options
from runtime.schema.checkpoint import Usage

__all__ = ["LiteLLMModel", "prewarm"]

_LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
READ_ONLY_WARNING = r".*`ReadOnly` qualifier.*"
"""The message of the UserWarning litellm's models raise (pyproject ignores it in tests too)."""


@functools.cache
def _litellm() -> Any:
    """Import and configure litellm once (thread-safe: the import lock serialises first use)."""
    # Must be set before the import: otherwise litellm fetches its price map over the network.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    if "h2" in sys.modules and sys.modules["h2"] is None:
        # perstack run leaves HTTP/2 support out for its native clients (cli.lean_start);
        # litellm imports h2 itself.
        del sys.modules["h2"]
    import litellm

    # No "Give Feedback / Get Help" banners on stdout (``perstack run`` prints JSON there).
    litellm.suppress_debug_info = True
    # Its pydantic models warn about ReadOnly TypedDict items on first use: litellm's to fix,
    # and a warning line on stderr would draw over the studio's screen.
    warnings.filterwarnings("ignore", message=READ_ONLY_WARNING, category=UserWarning)
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


# Errors -------------------------------------------------------------------------------------------

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
_PREFIX = re.compile(r"^\s*(?:litellm\.\w+:|\w+Error:|\w+(?:Exception|Error)\s*-)\s*")


_EMBEDDED_BODY = re.compile(r"b?'(\{.*\})'|(\{.*\})", re.DOTALL)


def _provider_body(message: str) -> tuple[str, int | None]:
    """The provider's own message and status from an error body litellm quotes whole.

    litellm passes Anthropic's answers on as ``AnthropicError - b'{"type": "error", ...}'`` and
    reports them all as HTTP 500; the body says what really happened (``overloaded_error`` is a
    529, ``authentication_error`` a 401).
    """
    match = _EMBEDDED_BODY.search(message)
    if match is None:
        return message, None
    try:
        body = json.loads(match.group(1) or match.group(2))
    except ValueError:
        return message, None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return message, None
    return error["message"], ANTHROPIC_ERROR_STATUS.get(str(error.get("type")))


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


class LiteLLMModel(ResolvedModel):
    """A :class:`~runtime.llm.LanguageModel` backed by litellm.

    Args:
        resolution: The provider and model to call, from
            :func:`runtime.llm.providers.resolve_provider`.
    """

    def __repr__(self) -> str:
        return f"LiteLLMModel({self._resolution.litellm_model!r})"

    async def prepare(self) -> None:
        """Import litellm in a worker thread, so the event loop (the studio's too) keeps going."""
        await asyncio.to_thread(_litellm)

    async def aclose(self) -> None:
        """Nothing to close: litellm keeps its own client cache for the process."""

    # -- the call

    def _reasoning(self, budget: str | int) -> dict[str, Any]:
        if not self.reasoning_tokens(budget):
            return {}
        res = self._resolution
        return reasoning_options(res.provider_name, res.litellm_model, budget)

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
        acc = StreamAccumulator()
        response: Any = None
        produced = False
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
                    produced = True
                    yield out
        finally:
            if response is not None:
                await _close(response)
        calls = acc.tool_calls()
        if not produced and not calls and acc.usage is None:
            # litellm turns a 200 answer that is no stream at all (an HTML page, a body that is
            # not JSON) into an empty reply; a real one reports usage, as we ask it to.
            where = self._resolution.api_base or f"the {self._resolution.provider_name} API"
            raise invalid_response_error(
                where,
                "with no model output and no usage: not a stream of the "
                f"{self._resolution.provider_name} API (an HTML page or a body that is not JSON?)",
                secret=self._resolution.api_key,
            )
        for call in calls:
            yield call
        yield Finish(
            finish_reason=acc.finish(bool(calls)),
            usage=self._usage(acc.usage),
            reasoning_signature=acc.signature,
        )

    # -- results

    def _usage(self, raw: Any) -> Usage:
        return openai_usage(raw, self.model_info())

    # -- errors

    def _error(
        self, exc: BaseException, request: GenerationRequest, acc: StreamAccumulator
    ) -> ModelError:
        """Normalise a failure into a ModelError (reference §8.4, retryability per §5.6).

        The wording comes from :mod:`runtime.llm.failures`, as on the native path; what is
        litellm's own is finding the facts (status, network cause) in its wrapped exceptions.
        """
        res = self._resolution
        where = res.api_base or f"the {res.provider_name} API"
        if _is_timeout(exc):
            return timeout_error(res.provider_name, res.model, request.timeout_ms)
        status = getattr(exc, "status_code", None)
        status = status if isinstance(status, int) else None
        connection = _connection_cause(exc)
        if connection is not None and (status is None or status >= 500):
            return connection_error(
                where, _reason(connection), received=acc.received, secret=res.api_key
            )
        raw = str(getattr(exc, "message", None) or exc)
        message, body_status = _provider_body(_clean(raw))
        status = body_status or status
        if acc.received and body_status is None:
            # The server answered 200 and was streaming: litellm reports a stream that ended
            # early or carried a bad line as an HTTP 500 that never happened.
            return broken_stream_error(where, message, secret=res.api_key)
        name = type(exc).__name__
        original = getattr(exc, "original_exception", None)
        if name == "MidStreamFallbackError" and isinstance(original, BaseException):
            name = type(original).__name__  # litellm's wrapper says less than what it wraps
        if status is not None and status_name(status) != "APIError":
            name = status_name(status)  # the same name the native path gives the status
        lowered = message.lower()
        retryable = bool(_names(exc) & _RETRYABLE_NAMES) or any(
            word in lowered for word in _RETRYABLE_WORDS
        )
        if status is None:
            return ModelError(
                f"{res.provider_name} ({name}): {message}".replace(res.api_key or "\0", "***"),
                name=name,
                retryable=retryable,
            )
        return status_error(
            res.provider_name,
            status,
            message,
            name=name,
            # Unusual statuses (418, 520...) are judged by litellm's class and the words.
            retryable=None if status in RETRYABLE_STATUS or status in FINAL_STATUS else retryable,
            key_env=res.api_key_env,
            secret=res.api_key,
        )


async def _close(response: Any) -> None:
    """Release the HTTP connection of a stream we stop reading (error, timeout, early exit)."""
    aclose = getattr(response, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception:  # closing is best effort; the caller already has the real outcome
        pass
