"""What a failed model call means, told the same way on every client path.

The native clients and litellm both end up here: an HTTP status becomes an error name and a
retryability (§5.6 of the reference), a timeout, a refused connection or a broken stream becomes
a :class:`~runtime.errors.ModelError` whose message names the provider, the endpoint and the fix.
The agent loop turns these into ``retry`` and ``stopRunByError`` events, so both paths emit the
same events for the same failure.
"""

from __future__ import annotations

from collections.abc import Mapping

from runtime.errors import ModelError

__all__ = [
    "ANTHROPIC_ERROR_STATUS",
    "FINAL_STATUS",
    "RETRYABLE_STATUS",
    "broken_stream_error",
    "connection_error",
    "invalid_response_error",
    "status_error",
    "status_name",
    "timeout_error",
]

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
"""Statuses worth the same request again: rate limits, overload and server errors."""
FINAL_STATUS = frozenset({400, 401, 402, 403, 404, 413, 422})
"""Statuses the same request will meet again."""

_STATUS_NAMES: Mapping[int, str] = {
    400: "BadRequestError",
    401: "AuthenticationError",
    402: "PaymentRequiredError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    408: "RequestTimeoutError",
    409: "ConflictError",
    413: "RequestTooLargeError",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
    500: "InternalServerError",
    502: "BadGatewayError",
    503: "ServiceUnavailableError",
    504: "GatewayTimeoutError",
    529: "OverloadedError",
}
"""The names litellm (and the OpenAI SDK) give these statuses."""


ANTHROPIC_ERROR_STATUS: Mapping[str, int] = {
    # Anthropic's error types, for an error that arrives without its status (an ``error`` event
    # mid-stream, or litellm's wrapper that reports every Anthropic failure as a 500).
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def status_name(status: int) -> str:
    """The error name of an HTTP status (``APIError`` for one without a usual name)."""
    return _STATUS_NAMES.get(status, "APIError")


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret and len(secret) >= 4 else text


def status_error(
    provider: str,
    status: int,
    message: str,
    *,
    name: str | None = None,
    retryable: bool | None = None,
    key_env: str | None = None,
    secret: str | None = None,
) -> ModelError:
    """An HTTP error answer: ``<provider> returned HTTP <status> (<Name>): <provider's words>``.

    Args:
        provider: The provider as the user named it.
        status: The HTTP status.
        message: The provider's own error message.
        name: The error name when the caller knows better than the status (litellm's class).
        retryable: Overrides the status rule (litellm's class names for odd statuses).
        key_env: The API key variable, named in the fix for 401/403.
        secret: A value to mask wherever it appears (the API key).
    """
    if retryable is None:
        retryable = status in RETRYABLE_STATUS and status not in FINAL_STATUS
    name = name or status_name(status)
    text = f"{provider} returned HTTP {status} ({name}): {message}"
    if status in (401, 403) and key_env:
        text += f" Check {key_env}."
    return ModelError(_redact(text, secret), name=name, status_code=status, retryable=retryable)


def timeout_error(provider: str, model: str, timeout_ms: int) -> ModelError:
    """The generation did not finish within ``timeout_ms``: retryable."""
    return ModelError(
        f"{provider} model {model!r} did not finish within {timeout_ms / 1000:g} s (timeout "
        f"{timeout_ms} ms). Raise `timeout` in perstack.toml (or --timeout) if generations "
        "legitimately take longer.",
        name="TimeoutError",
        retryable=True,
    )


def connection_error(
    where: str, reason: str, *, received: bool, secret: str | None = None
) -> ModelError:
    """The connection failed before (``received`` False) or during a response: retryable."""
    if received:
        text = f"The connection to {where} broke off during the response ({reason})."
    else:
        text = (
            f"Cannot connect to {where} ({reason}). Check that the server is running and that "
            "the provider's base URL is right."
        )
    return ModelError(_redact(text, secret), name="APIConnectionError", retryable=True)


def broken_stream_error(where: str, what: str, *, secret: str | None = None) -> ModelError:
    """The server answered 200 but its stream was not a whole, well-formed one: retryable."""
    return ModelError(
        _redact(f"{where} sent a broken stream: {what}.", secret),
        name="BrokenStreamError",
        retryable=True,
    )


def invalid_response_error(where: str, what: str, *, secret: str | None = None) -> ModelError:
    """The server answered 200 with something that is not a model's stream: not retryable.

    An HTML page from a wrong base URL, a body that is not JSON: the same request gets the same.
    """
    return ModelError(
        _redact(
            f"{where} answered {what}. Check that the provider's base URL points at its API.",
            secret,
        ),
        name="InvalidResponseError",
        retryable=False,
    )
