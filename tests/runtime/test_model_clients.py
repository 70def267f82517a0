"""The model clients, native and litellm, through the same scenarios against the fake server.

Every scenario runs on both paths (``client`` = ``native`` / ``litellm``): the events, retries,
timeouts and error messages the loop sees must not depend on which client made the call.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from runtime.errors import ConfigError, ModelError
from runtime.llm import (
    Finish,
    GenerationRequest,
    LanguageModel,
    ModelChunk,
    ReasoningDelta,
    TextDelta,
    ToolCallChunk,
    ToolSpec,
)
from runtime.llm.convert import to_openai_messages
from runtime.llm.factory import create_model
from runtime.llm.openai_compat import StreamAccumulator
from runtime.schema.messages import (
    ExpertMessage,
    FileInlinePart,
    ImageInlinePart,
    ImageUrlPart,
    InstructionMessage,
    Message,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolMessage,
    ToolResultPart,
    UserMessage,
)
from tests.fakellm import (
    FakeLLM,
    reply_delay,
    reply_disconnect,
    reply_error,
    reply_length,
    reply_malformed_stream,
    reply_raw,
    reply_stream_error,
    reply_text,
    reply_tool_calls,
    reply_truncated_stream,
)

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-fake-0123456789"
TOOLS = [
    ToolSpec(
        name="readTextFile",
        description="Read a text file",
        input_schema={"type": "object", "properties": {"path": {"type": "string"}}},
    ),
    ToolSpec(name="todo", description="Manage todos", input_schema={"type": "object"}),
]


CLIENTS = ["native", "litellm"]


def make_model(base_url: str, model: str = "gpt-4.1", client: str = "native") -> LanguageModel:
    return create_model(
        "openai", model, {"baseUrl": base_url, "client": client}, {"OPENAI_API_KEY": API_KEY}
    )


def ask(text: str = "hi", **kwargs: Any) -> GenerationRequest:
    return GenerationRequest(
        messages=[UserMessage(contents=[TextPart(text=text)])], tools=[], **kwargs
    )


async def collect(model: LanguageModel, request: GenerationRequest) -> list[ModelChunk]:
    async with asyncio.timeout(20):
        return [chunk async for chunk in model.stream(request)]


async def fails(model: LanguageModel, request: GenerationRequest) -> ModelError:
    with pytest.raises(ModelError) as info:
        await collect(model, request)
    return info.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> str:
    """Which model client a test runs on: each test runs on both."""
    return str(request.param)


@pytest.fixture
async def model(fake_llm: FakeLLM, client: str) -> AsyncIterator[LanguageModel]:
    model = make_model(fake_llm.base_url, client=client)
    yield model
    await model.aclose()  # type: ignore[attr-defined]


# Happy paths --------------------------------------------------------------------------------------


async def test_is_a_language_model(model: LanguageModel) -> None:
    assert isinstance(model, LanguageModel)
    assert model.model_name == "gpt-4.1"
    assert API_KEY not in repr(model)


async def test_streamed_text(fake_llm: FakeLLM, model: LanguageModel) -> None:
    fake_llm.script(reply_text("Hello from the fake model"))
    chunks = await collect(model, ask())
    texts = [c for c in chunks if isinstance(c, TextDelta)]
    assert len(texts) > 1, "text must stream in several deltas"
    assert "".join(t.text for t in texts) == "Hello from the fake model"
    assert isinstance(chunks[-1], Finish)
    assert chunks[-1].finish_reason == "stop"
    assert sum(isinstance(c, Finish) for c in chunks) == 1
    body = fake_llm.last_request
    assert body["model"] == "gpt-4.1"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert "tools" not in body
    assert fake_llm.request_headers[0]["authorization"] == f"Bearer {API_KEY}"


async def test_reasoning_deltas_come_first_and_in_order(
    fake_llm: FakeLLM, model: LanguageModel
) -> None:
    fake_llm.script(reply_text("The answer is 4.", reasoning="2 plus 2 is 4, obviously."))
    chunks = await collect(model, ask())
    kinds = [c.kind for c in chunks]
    assert kinds.index("text") > max(i for i, k in enumerate(kinds) if k == "reasoning")
    reasoning = "".join(c.text for c in chunks if isinstance(c, ReasoningDelta))
    assert reasoning == "2 plus 2 is 4, obviously."
    assert sum(isinstance(c, ReasoningDelta) for c in chunks) > 1


async def test_parallel_tool_calls_with_split_arguments(
    fake_llm: FakeLLM, model: LanguageModel
) -> None:
    fake_llm.script(
        reply_tool_calls(
            [
                ("readTextFile", {"path": "docs/a very long file name.md"}),
                ("todo", {"newTodos": ["write tests", "ship"]}),
            ],
            text="Let me look.",
            chunk_size=3,
        )
    )
    request = GenerationRequest(messages=[UserMessage(contents=[TextPart(text="go")])], tools=TOOLS)
    chunks = await collect(model, request)
    calls = [c for c in chunks if isinstance(c, ToolCallChunk)]
    assert calls == [
        ToolCallChunk(
            id="call_1", name="readTextFile", arguments='{"path": "docs/a very long file name.md"}'
        ),
        ToolCallChunk(id="call_2", name="todo", arguments='{"newTodos": ["write tests", "ship"]}'),
    ]
    # Text first, then the whole calls, then the finish.
    assert [c.kind for c in chunks][-3:] == ["toolCall", "toolCall", "finish"]
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == "Let me look."
    finish = chunks[-1]
    assert isinstance(finish, Finish) and finish.finish_reason == "tool-calls"
    assert fake_llm.last_request["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "readTextFile",
                "description": "Read a text file",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
            },
        },
        {
            "type": "function",
            "function": {
                "name": "todo",
                "description": "Manage todos",
                "parameters": {"type": "object"},
            },
        },
    ]


async def test_invalid_tool_arguments_are_passed_through_raw(
    fake_llm: FakeLLM, model: LanguageModel
) -> None:
    fake_llm.script(reply_tool_calls([("todo", '{"newTodos": [', "call_bad")]))
    chunks = await collect(model, GenerationRequest(messages=ask().messages, tools=TOOLS))
    assert ToolCallChunk(id="call_bad", name="todo", arguments='{"newTodos": [') in chunks


async def test_tool_calls_with_stop_still_yield_the_calls(
    fake_llm: FakeLLM, model: LanguageModel
) -> None:
    # litellm itself rewrites "stop" to "tool_calls" when calls are present; the loop treats both
    # alike. What matters is that the calls arrive.
    fake_llm.script(reply_tool_calls([("todo", {})], finish_reason="stop"))
    chunks = await collect(model, GenerationRequest(messages=ask().messages, tools=TOOLS))
    finish = chunks[-1]
    assert isinstance(finish, Finish) and finish.finish_reason in ("stop", "tool-calls")
    assert any(isinstance(c, ToolCallChunk) for c in chunks)


async def test_usage_and_cost(fake_llm: FakeLLM, model: LanguageModel) -> None:
    usage = {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "reasoning_tokens": 100,
        "cached_tokens": 200,
    }
    fake_llm.script(reply_text("ok", usage=usage))
    finish = (await collect(model, ask()))[-1]
    assert isinstance(finish, Finish)
    got = finish.usage
    assert (got.input_tokens, got.output_tokens, got.total_tokens) == (1200, 300, 1500)
    assert (got.reasoning_tokens, got.cached_input_tokens) == (100, 200)
    # gpt-4.1 is in litellm's (local) price table.
    assert got.cost_usd is not None and 0 < got.cost_usd < 0.1


async def test_unknown_model_has_no_cost_and_no_window(fake_llm: FakeLLM, client: str) -> None:
    model = make_model(fake_llm.base_url, "my-local-finetune", client)
    fake_llm.script(reply_text("ok"))
    finish = (await collect(model, ask()))[-1]
    assert isinstance(finish, Finish)
    assert finish.usage.input_tokens == 10
    assert finish.usage.cost_usd is None
    assert model.context_window() is None


async def test_context_window_of_a_known_model(model: LanguageModel) -> None:
    assert model.context_window() == 1_047_576


@pytest.mark.parametrize(
    ("finish_reason", "expected"),
    [("length", "length"), ("content_filter", "content-filter")],
)
async def test_finish_reasons(
    fake_llm: FakeLLM, model: LanguageModel, finish_reason: str, expected: str
) -> None:
    fake_llm.script(reply_text("partial", finish_reason=finish_reason))
    finish = (await collect(model, ask()))[-1]
    assert isinstance(finish, Finish) and finish.finish_reason == expected


async def test_reply_length_helper(fake_llm: FakeLLM, model: LanguageModel) -> None:
    fake_llm.script(reply_length())
    finish = (await collect(model, ask()))[-1]
    assert isinstance(finish, Finish) and finish.finish_reason == "length"


@pytest.mark.parametrize(
    ("model_name", "budget", "effort"),
    [
        ("o3", "medium", "medium"),
        ("o3", "minimal", "low"),
        ("o3", "none", None),
        ("gpt-4.1", "high", None),
    ],
)
async def test_reasoning_effort_only_for_reasoning_models(
    fake_llm: FakeLLM, client: str, model_name: str, budget: str, effort: str | None
) -> None:
    fake_llm.script(reply_text("ok"))
    await collect(make_model(fake_llm.base_url, model_name, client), ask(reasoning_budget=budget))
    assert fake_llm.last_request.get("reasoning_effort") == effort


async def test_consumer_may_stop_early(fake_llm: FakeLLM, model: LanguageModel) -> None:
    fake_llm.script(reply_text("a long answer " * 20), reply_text("second"))
    stream = model.stream(ask())
    first = await anext(stream)
    assert isinstance(first, TextDelta)
    await stream.aclose()  # type: ignore[attr-defined]
    chunks = await collect(model, ask())
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == "second"


# Errors -------------------------------------------------------------------------------------------


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


@pytest.mark.parametrize("client", ["auto", *CLIENTS])
def test_unknown_provider_without_base_url_fails_before_the_run(client: str) -> None:
    with pytest.raises(ConfigError) as info:
        create_model("no-such-provider", "m", {"client": client}, {"NO_SUCH_PROVIDER_API_KEY": "k"})
    message = info.value.message
    assert "'no-such-provider'" in message
    for known in ("anthropic", "openai", "google", "fireworks", "groq"):
        assert known in message
    assert "baseUrl" in message, "the fix for a server of one's own"


def test_a_misspelt_provider_gets_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'anthropic'"):
        create_model("antropic", "m", None, {})


async def test_a_provider_of_ones_own_with_a_base_url_goes_native(fake_llm: FakeLLM) -> None:
    # A llama-server or vLLM under a name of the user's choosing: OpenAI-compatible, no key.
    model = create_model("my-llama", "qwen2.5-coder", {"baseUrl": fake_llm.base_url}, {})
    fake_llm.script(reply_text("local answer"))
    chunks = await collect(model, ask())
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == "local answer"
    assert fake_llm.last_request["model"] == "qwen2.5-coder"
    assert "authorization" not in fake_llm.request_headers[-1]
    with pytest.raises(ConfigError, match="not one litellm serves"):
        create_model("my-llama", "m", {"baseUrl": fake_llm.base_url, "client": "litellm"}, {})


# Message conversion -------------------------------------------------------------------------------

PNG = "iVBORw0KGgo="
PDF = "JVBERi0xLjQ="


def conversation() -> list[Message]:
    return [
        InstructionMessage(
            contents=[TextPart(text="You are helpful."), TextPart(text="Be brief.")]
        ),
        UserMessage(
            contents=[
                TextPart(text="What is in these?"),
                ImageInlinePart(encoded_data=PNG, mime_type="image/png"),
                ImageUrlPart(url="https://example.com/cat.jpg", mime_type="image/jpeg"),
                FileInlinePart(id="doc1", encoded_data=PDF, mime_type="application/pdf"),
            ]
        ),
        ExpertMessage(
            contents=[
                ThinkingPart(thinking="I should read the files.", signature="sig-1"),
                TextPart(text="Reading both."),
                ToolCallPart(
                    tool_call_id="call_a", tool_name="readTextFile", args={"path": "a.md"}
                ),
                ToolCallPart(
                    tool_call_id="call_b", tool_name="readImageFile", args={"path": "b.png"}
                ),
            ]
        ),
        ToolMessage(
            contents=[
                ToolResultPart(
                    tool_call_id="call_a",
                    tool_name="readTextFile",
                    contents=[TextPart(text="line 1"), TextPart(text="line 2")],
                ),
                ToolResultPart(
                    tool_call_id="call_b",
                    tool_name="readImageFile",
                    contents=[ImageInlinePart(encoded_data=PNG, mime_type="image/png")],
                ),
            ]
        ),
        UserMessage(contents=[TextPart(text="Thanks, now summarise.")]),
    ]


EXPECTED_OPENAI = [
    {"role": "system", "content": "You are helpful.\nBe brief."},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in these?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            {
                "type": "file",
                "file": {
                    "filename": "doc1.pdf",
                    "format": "application/pdf",
                    "file_data": f"data:application/pdf;base64,{PDF}",
                },
            },
        ],
    },
    {
        "role": "assistant",
        "content": "Reading both.",
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "readTextFile", "arguments": '{"path": "a.md"}'},
            },
            {
                "id": "call_b",
                "type": "function",
                "function": {"name": "readImageFile", "arguments": '{"path": "b.png"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_a", "content": "line 1\nline 2"},
    {
        "role": "tool",
        "tool_call_id": "call_b",
        "content": "[1 attachment(s) follow in the next user message]",
    },
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Attachments returned by tool 'readImageFile' (call call_b):"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ],
    },
    {"role": "user", "content": "Thanks, now summarise."},
]


def test_conversion_to_openai_messages() -> None:
    assert to_openai_messages(conversation(), provider="openai", model="openai/gpt-4.1") == (
        EXPECTED_OPENAI
    )


async def test_full_conversation_reaches_the_server(
    fake_llm: FakeLLM, model: LanguageModel, client: str
) -> None:
    fake_llm.script(reply_text("Summary."))
    await collect(model, GenerationRequest(messages=conversation(), tools=TOOLS))
    # Exactly our conversion, except that litellm drops the file "format" hint OpenAI does not take.
    expected = copy.deepcopy(EXPECTED_OPENAI)
    if client == "litellm":
        del expected[1]["content"][3]["file"]["format"]
    assert fake_llm.last_request["messages"] == expected


def test_anthropic_gets_signed_thinking_and_cache_marks() -> None:
    messages: list[Message] = [
        InstructionMessage(contents=[TextPart(text="sys")], cache=True),
        ExpertMessage(
            contents=[
                ThinkingPart(thinking="signed", signature="sig-1"),
                ThinkingPart(thinking="unsigned"),
                ToolCallPart(tool_call_id="c1", tool_name="t", args={}),
            ]
        ),
        UserMessage(contents=[TextPart(text="a"), TextPart(text="b")], cache=True),
    ]
    out = to_openai_messages(messages, provider="anthropic", model="anthropic/claude-sonnet-4-5")
    assert out[0] == {"role": "system", "content": "sys", "cache_control": {"type": "ephemeral"}}
    assert out[1]["content"] is None
    assert out[1]["thinking_blocks"] == [
        {"type": "thinking", "thinking": "signed", "signature": "sig-1"}
    ]
    assert out[2]["content"][-1] == {
        "type": "text",
        "text": "b",
        "cache_control": {"type": "ephemeral"},
    }
    # Other providers get neither.
    plain = to_openai_messages(messages, provider="openai", model="openai/gpt-4.1")
    assert "thinking_blocks" not in plain[1]
    assert "cache_control" not in plain[0]


def test_accumulator_handles_reused_index_with_new_ids() -> None:
    # Some OpenAI-compatible servers send every parallel call under index 0.
    def chunk(**delta: Any) -> Any:
        return SimpleNamespace(
            usage=None,
            choices=[SimpleNamespace(finish_reason=None, delta=SimpleNamespace(**delta))],
        )

    def fragment(call_id: str | None, name: str | None, args: str) -> Any:
        return SimpleNamespace(
            index=0, id=call_id, function=SimpleNamespace(name=name, arguments=args)
        )

    acc = StreamAccumulator()
    for c in [
        chunk(tool_calls=[fragment("a", "one", '{"x":')]),
        chunk(tool_calls=[fragment(None, None, "1}")]),
        chunk(tool_calls=[fragment("b", "two", "")]),
    ]:
        list(acc.feed(c))
    assert acc.tool_calls() == [
        ToolCallChunk(id="a", name="one", arguments='{"x":1}'),
        ToolCallChunk(id="b", name="two", arguments="{}"),
    ]


@pytest.mark.parametrize(
    ("raw", "has_calls", "expected"),
    [
        ("stop", True, "stop"),
        ("stop", False, "stop"),
        ("tool_calls", True, "tool-calls"),
        ("function_call", True, "tool-calls"),
        ("length", False, "length"),
        ("content_filter", False, "content-filter"),
        ("something_new", False, "other"),
        (None, True, "tool-calls"),
        (None, False, "stop"),
    ],
)
def test_finish_reason_mapping(raw: str | None, has_calls: bool, expected: str) -> None:
    acc = StreamAccumulator()
    acc.finish_reason = raw
    assert acc.finish(has_calls) == expected


CHILD = """
import asyncio, os, sys
from runtime.llm import GenerationRequest, TextDelta
from runtime.llm.factory import create_model
from runtime.schema.messages import TextPart, UserMessage

async def main():
    model = create_model("openai", "gpt-4.1", {"client": sys.argv[1]}, os.environ)
    request = GenerationRequest(messages=[UserMessage(contents=[TextPart(text="hi")])], tools=[])
    async for chunk in model.stream(request):
        if isinstance(chunk, TextDelta):
            sys.stdout.write(chunk.text)

asyncio.run(main())
"""


def test_a_subprocess_reaches_the_fake_through_openai_base_url(
    fake_llm: FakeLLM, client: str
) -> None:
    # The way CLI tests use the fake: a child process, configured only through the environment.
    fake_llm.script(reply_text("Hello, child process"))
    env = {**os.environ, **fake_llm.env()}
    env.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)  # the model module must set it by itself
    out = subprocess.run(
        [sys.executable, "-c", CHILD, client],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Hello, child process"
    assert out.stderr == "", "the client must not write to stderr or stdout"
    assert fake_llm.last_request["messages"] == [{"role": "user", "content": "hi"}]


# Both APIs, both clients: faults ------------------------------------------------------------------

PROVIDERS = ["openai", "anthropic"]


def api_model(fake: FakeLLM, provider: str, client: str, model: str | None = None) -> LanguageModel:
    if provider == "openai":
        return make_model(fake.base_url, model or "gpt-4.1", client)
    return create_model(
        "anthropic",
        model or "claude-sonnet-4-5",
        {"baseUrl": fake.anthropic_base_url, "client": client},
        {"ANTHROPIC_API_KEY": API_KEY},
    )


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    """Which API a test speaks: OpenAI chat completions or Anthropic messages."""
    return str(request.param)


@pytest.fixture
async def api(fake_llm: FakeLLM, provider: str, client: str) -> AsyncIterator[LanguageModel]:
    model = api_model(fake_llm, provider, client)
    yield model
    await model.aclose()  # type: ignore[attr-defined]


def tool_request() -> GenerationRequest:
    return GenerationRequest(messages=ask().messages, tools=TOOLS)


async def test_text_reasoning_and_usage_on_both_apis(
    fake_llm: FakeLLM, api: LanguageModel, provider: str
) -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 50, "cached_tokens": 400}
    fake_llm.script(reply_text("The answer.", reasoning="Let me think.", usage=usage))
    chunks = await collect(api, ask())
    assert "".join(c.text for c in chunks if isinstance(c, ReasoningDelta)) == "Let me think."
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == "The answer."
    finish = chunks[-1]
    assert isinstance(finish, Finish) and finish.finish_reason == "stop"
    got = finish.usage
    assert (got.input_tokens, got.output_tokens, got.cached_input_tokens) == (1000, 50, 400)
    assert got.cost_usd is not None and got.cost_usd > 0
    if provider == "anthropic":
        assert finish.reasoning_signature == "sig-fake-1"


async def test_parallel_tool_calls_on_both_apis(
    fake_llm: FakeLLM, api: LanguageModel, provider: str
) -> None:
    fake_llm.script(
        reply_tool_calls(
            [("readTextFile", {"path": "a.md"}), ("todo", {"newTodos": ["x"]})], chunk_size=3
        )
    )
    chunks = await collect(api, tool_request())
    calls = [(c.name, json.loads(c.arguments)) for c in chunks if isinstance(c, ToolCallChunk)]
    assert calls == [("readTextFile", {"path": "a.md"}), ("todo", {"newTodos": ["x"]})]
    ids = [c.id for c in chunks if isinstance(c, ToolCallChunk)]
    assert ids == (["call_1", "call_2"] if provider == "openai" else ["toolu_1", "toolu_2"])
    finish = chunks[-1]
    assert isinstance(finish, Finish) and finish.finish_reason == "tool-calls"


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


async def test_streamed_tool_arguments_of_two_megabytes_arrive_whole(
    fake_llm: FakeLLM, provider: str
) -> None:
    # Native only: litellm's per-chunk cost makes 130,000 deltas take a minute (docs say so).
    big = "x" * 2_000_000
    fake_llm.script(reply_tool_calls([("todo", {"text": big})], chunk_size=16))
    model = api_model(fake_llm, provider, "native")
    async with asyncio.timeout(120):
        chunks = [c async for c in model.stream(tool_request())]
    (call,) = [c for c in chunks if isinstance(c, ToolCallChunk)]
    assert json.loads(call.arguments) == {"text": big}
    await model.aclose()  # type: ignore[attr-defined]


# The Anthropic request, as sent by the native client ----------------------------------------------


async def test_anthropic_request_has_cache_breakpoints_and_thinking(fake_llm: FakeLLM) -> None:
    model = api_model(fake_llm, "anthropic", "native", "claude-sonnet-4-5")
    fake_llm.script(reply_text("ok"))
    messages: list[Message] = [
        InstructionMessage(
            contents=[TextPart(text="Stable rules and instruction."), TextPart(text="Time: now")],
            cache=True,
        ),
        UserMessage(contents=[TextPart(text="Read a.md")]),
        ExpertMessage(
            contents=[
                ThinkingPart(thinking="I will read it.", signature="sig-0"),
                ToolCallPart(tool_call_id="toolu_a", tool_name="readTextFile", args={"path": "a"}),
            ]
        ),
        ToolMessage(
            contents=[
                ToolResultPart(
                    tool_call_id="toolu_a",
                    tool_name="readTextFile",
                    contents=[TextPart(text="hello")],
                )
            ]
        ),
    ]
    request = GenerationRequest(messages=messages, tools=TOOLS, reasoning_budget="low")
    await collect(model, request)
    body = fake_llm.last_request
    headers = fake_llm.request_headers[-1]
    assert fake_llm.request_paths[-1] == "/v1/messages"
    assert (headers["x-api-key"], headers["anthropic-version"]) == (API_KEY, "2023-06-01")
    assert body["model"] == "claude-sonnet-4-5"
    assert body["stream"] is True
    assert "tool_choice" not in body
    # The stable part of the system prompt is cached; its volatile tail (the time) is not.
    assert body["system"] == [
        {
            "type": "text",
            "text": "Stable rules and instruction.",
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "text", "text": "Time: now"},
    ]
    assert body["tools"][0] == {
        "name": "readTextFile",
        "description": "Read a text file",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
    }
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] > 2048
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Read a.md"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I will read it.", "signature": "sig-0"},
                {
                    "type": "tool_use",
                    "id": "toolu_a",
                    "name": "readTextFile",
                    "input": {"path": "a"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_a",
                    "content": [{"type": "text", "text": "hello"}],
                    # The conversation so far is read from the cache at the next step.
                    "cache_control": {"type": "ephemeral"},
                }
            ],
        },
    ]
    await model.aclose()  # type: ignore[attr-defined]


async def test_anthropic_usage_counts_cache_reads_and_writes(fake_llm: FakeLLM) -> None:
    usage = {
        "prompt_tokens": 5000,
        "completion_tokens": 100,
        "cached_tokens": 3000,
        "cache_creation_tokens": 1500,
    }
    costs = []
    for client in CLIENTS:
        fake_llm.script(reply_text("ok", usage=usage))
        model = api_model(fake_llm, "anthropic", client, "claude-sonnet-4-5")
        finish = (await collect(model, ask()))[-1]
        assert isinstance(finish, Finish)
        got = finish.usage
        # Every input token counts, as on the OpenAI API; cache reads are reported again.
        assert (got.input_tokens, got.cached_input_tokens, got.output_tokens) == (5000, 3000, 100)
        costs.append(got.cost_usd)
        await model.aclose()  # type: ignore[attr-defined]
    assert costs[0] is not None
    assert costs[0] == pytest.approx(costs[1], rel=1e-9), "the same price on both paths"


# Where the native client sends each provider's requests -------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "env", "path", "auth"),
    [
        ("openai", "gpt-4.1", {"OPENAI_API_KEY": "k1"}, "/v1/chat/completions", "Bearer k1"),
        (
            "deepseek",
            "deepseek-chat",
            {"DEEPSEEK_API_KEY": "k2"},
            "/v1/chat/completions",
            "Bearer k2",
        ),
        (
            "fireworks",
            "accounts/fireworks/models/x",
            {"FIREWORKS_API_KEY": "k3"},
            "/v1/chat/completions",
            "Bearer k3",
        ),
        # Perstack's Ollama URL ends in /api; its OpenAI-compatible API is under /v1.
        ("ollama", "llama3", {}, "/v1/chat/completions", None),
    ],
)
async def test_openai_compatible_providers_reach_their_endpoint(
    fake_llm: FakeLLM,
    provider: str,
    model: str,
    env: dict[str, str],
    path: str,
    auth: str | None,
) -> None:
    base = fake_llm.url + ("/api" if provider == "ollama" else "/v1")
    client = create_model(provider, model, {"baseUrl": base}, env)
    fake_llm.script(reply_text("ok"))
    await collect(client, ask())
    assert fake_llm.request_paths[-1] == path
    assert fake_llm.last_request["model"] == model
    assert fake_llm.request_headers[-1].get("authorization") == auth
    await client.aclose()  # type: ignore[attr-defined]


async def test_azure_openai_uses_its_deployment_url_and_api_key_header(fake_llm: FakeLLM) -> None:
    client = create_model(
        "azure-openai",
        "my-gpt4-deployment",
        {"baseUrl": fake_llm.url + "/openai", "apiVersion": "2024-10-21"},
        {"AZURE_API_KEY": "az-key"},
    )
    fake_llm.script(reply_text("ok"))
    await collect(client, ask())
    assert fake_llm.request_paths[-1] == (
        "/openai/deployments/my-gpt4-deployment/chat/completions?api-version=2024-10-21"
    )
    headers = fake_llm.request_headers[-1]
    assert headers["api-key"] == "az-key"
    assert "authorization" not in headers
    await client.aclose()  # type: ignore[attr-defined]


async def test_openai_organization_project_and_extra_headers_are_sent(fake_llm: FakeLLM) -> None:
    client = create_model(
        "openai",
        "gpt-4.1",
        {
            "baseUrl": fake_llm.base_url,
            "organization": "org-1",
            "project": "proj-1",
            "headers": {"X-Team": "studio"},
        },
        {"OPENAI_API_KEY": API_KEY},
    )
    fake_llm.script(reply_text("ok"))
    await collect(client, ask())
    headers = fake_llm.request_headers[-1]
    assert (headers["openai-organization"], headers["openai-project"]) == ("org-1", "proj-1")
    assert headers["x-team"] == "studio"
    await client.aclose()  # type: ignore[attr-defined]


def test_google_vertex_and_bedrock_go_through_litellm() -> None:
    env = {
        "GOOGLE_GENERATIVE_AI_API_KEY": "g",
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "us-east-1",
    }
    for provider, model in [
        ("google", "gemini-2.5-pro"),
        ("google-vertex", "gemini-2.5-pro"),
        ("amazon-bedrock", "anthropic.claude-3-haiku-20240307-v1:0"),
    ]:
        assert type(create_model(provider, model, None, env)).__name__ == "LiteLLMModel"
    with pytest.raises(ConfigError, match="has no native client"):
        create_model("google", "gemini-2.5-pro", {"client": "native"}, env)
