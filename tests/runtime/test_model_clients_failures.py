"""The model clients, native and litellm, when the server fails: errors, timeouts, faults.

Every scenario runs on both paths (``client`` = ``native`` / ``litellm``): the retries, timeouts
and error messages the loop sees must not depend on which client made the call.
"""

from __future__ import annotations

import time

import pytest

from runtime.llm import LanguageModel
from tests.fakellm import (
    FakeLLM,
    reply_delay,
    reply_disconnect,
    reply_error,
    reply_malformed_stream,
    reply_raw,
    reply_stream_error,
    reply_text,
    reply_truncated_stream,
)
from tests.runtime.model_client_helpers import (
    API_KEY,
    ask,
    closed_port,
    fails,
    make_model,
    tool_request,
)


async def test_401_is_not_retryable_and_says_why(fake_llm: FakeLLM, model: LanguageModel) -> None:
    fake_llm.script(reply_error(401, f"Incorrect API key provided: {API_KEY}."))
    error = await fails(model, ask())
    assert error.retryable is False
    assert error.status_code == 401
    assert error.name == "AuthenticationError"
    assert "Incorrect API key provided" in error.message
    assert "OPENAI_API_KEY" in error.message
    assert API_KEY not in error.message, "the key itself must never reach a message"
    assert len(fake_llm.requests) == 1, "no retries inside litellm or the SDK"


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (400, "BadRequestError"),
        (403, "PermissionDeniedError"),
        (404, "NotFoundError"),
    ],
)
async def test_client_errors_are_not_retryable(
    fake_llm: FakeLLM, model: LanguageModel, status: int, name: str
) -> None:
    fake_llm.script(reply_error(status, f"Problem {status} with the request"))
    error = await fails(model, ask())
    assert (error.retryable, error.status_code, error.name) == (False, status, name)
    assert f"Problem {status} with the request" in error.message


async def test_422_is_not_retryable(fake_llm: FakeLLM, model: LanguageModel, client: str) -> None:
    # With drop_params on, litellm retries a 422 once without the parameters the provider named;
    # when that fails too it returns nothing, which must still be a clear, final error.
    fake_llm.script(reply_error(422, "Unknown field"), reply_error(422, "Unknown field"))
    error = await fails(model, ask())
    assert (error.retryable, error.status_code, error.name) == (
        False,
        422,
        "UnprocessableEntityError",
    )
    assert "422" in error.message
    # litellm (drop_params) tries once more without the parameters the provider named.
    assert len(fake_llm.requests) == (2 if client == "litellm" else 1)


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (429, "RateLimitError"),
        (500, "InternalServerError"),
        (502, "BadGatewayError"),
        (503, "ServiceUnavailableError"),
    ],
)
async def test_server_errors_are_retryable(
    fake_llm: FakeLLM, model: LanguageModel, status: int, name: str
) -> None:
    fake_llm.script(reply_error(status, "Slow down please", headers={"retry-after": "0"}))
    error = await fails(model, ask())
    assert error.retryable is True
    assert error.status_code == status
    assert error.name == name
    assert "Slow down please" in error.message
    assert len(fake_llm.requests) == 1, "no retries inside litellm or the SDK"


async def test_timeout_is_a_retryable_timeout_error(
    fake_llm: FakeLLM, model: LanguageModel
) -> None:
    fake_llm.script(reply_delay(5))
    started = time.monotonic()
    error = await fails(model, ask(timeout_ms=300))
    assert time.monotonic() - started < 3
    assert (error.name, error.retryable) == ("TimeoutError", True)
    assert "300 ms" in error.message


async def test_timeout_covers_the_whole_generation(fake_llm: FakeLLM, model: LanguageModel) -> None:
    # Every chunk arrives well within the timeout, but the whole stream does not.
    fake_llm.script(reply_text("x" * 40, chunk_size=1, chunk_delay=0.05))
    started = time.monotonic()
    error = await fails(model, ask(timeout_ms=400))
    assert time.monotonic() - started < 1.5
    assert (error.name, error.retryable) == ("TimeoutError", True)


async def test_unreachable_base_url_names_the_url(client: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    error = await fails(make_model(url, client=client), ask())
    assert error.retryable is True
    assert error.name == "APIConnectionError"
    assert url in error.message
    assert "connection refused" in error.message


async def test_connection_lost_mid_stream(fake_llm: FakeLLM, model: LanguageModel) -> None:
    fake_llm.script(reply_disconnect("Hello, I was about to"))
    error = await fails(model, ask())
    assert error.retryable is True
    assert fake_llm.base_url in error.message


async def test_exhausted_script_is_a_clear_500(fake_llm: FakeLLM, model: LanguageModel) -> None:
    error = await fails(model, ask())
    assert error.status_code == 500
    assert "fake LLM script exhausted" in error.message


@pytest.mark.parametrize(
    "body",
    [
        "<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>",
        "this is not JSON",
    ],
)
async def test_a_200_that_is_not_a_stream_says_so(
    fake_llm: FakeLLM, api: LanguageModel, body: str
) -> None:
    fake_llm.script(reply_raw(200, body, content_type="text/html"))
    error = await fails(api, tool_request())
    assert error.name == "InvalidResponseError"
    assert error.retryable is False
    assert "base URL" in error.message
    assert "tool call" not in error.message


async def test_a_truncated_stream_is_a_broken_stream(fake_llm: FakeLLM, api: LanguageModel) -> None:
    fake_llm.script(reply_truncated_stream("partial answer"))
    error = await fails(api, ask())
    assert (error.name, error.retryable, error.status_code) == ("BrokenStreamError", True, None)
    assert "HTTP 500" not in error.message
    assert "broken stream" in error.message


async def test_a_malformed_stream_is_a_broken_stream(fake_llm: FakeLLM, api: LanguageModel) -> None:
    fake_llm.script(reply_malformed_stream("partial answer"))
    error = await fails(api, ask())
    assert (error.name, error.retryable, error.status_code) == ("BrokenStreamError", True, None)
    assert "HTTP 500" not in error.message


async def test_an_error_mid_stream_is_retryable(fake_llm: FakeLLM, api: LanguageModel) -> None:
    fake_llm.script(reply_stream_error("partial", message="Overloaded"))
    error = await fails(api, ask())
    assert error.retryable is True
    assert "Overloaded" in error.message


async def test_errors_read_the_same_on_both_apis(
    fake_llm: FakeLLM, api: LanguageModel, provider: str
) -> None:
    fake_llm.script(reply_error(401, "Invalid API key."), reply_error(529, "Overloaded"))
    auth = await fails(api, ask())
    key_env = "OPENAI_API_KEY" if provider == "openai" else "ANTHROPIC_API_KEY"
    assert auth.message == (
        f"{provider} returned HTTP 401 (AuthenticationError): Invalid API key. Check {key_env}."
    )
    assert (auth.retryable, auth.status_code) == (False, 401)
    overloaded = await fails(api, ask())
    assert overloaded.message == f"{provider} returned HTTP 529 (OverloadedError): Overloaded"
    assert (overloaded.retryable, overloaded.status_code) == (True, 529)
