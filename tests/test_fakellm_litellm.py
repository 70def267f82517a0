"""The fake server's Anthropic wire format, parsed by an independent client (litellm).

The official ``anthropic`` SDK is not installed; litellm proves the Anthropic wire format.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakellm import FakeLLM, reply_error, reply_text, reply_tool_calls
from tests.fakellm_http import CACHE_USAGE

CLAUDE = "anthropic/claude-sonnet-4-20250514"


def _litellm() -> Any:
    import litellm  # imported here: a heavy import the rest of this module does not need

    litellm.suppress_debug_info = True
    return litellm


async def _litellm_stream(fake: FakeLLM, **kwargs: Any) -> list[Any]:
    litellm = _litellm()
    response = await litellm.acompletion(
        model=CLAUDE,
        api_base=fake.anthropic_base_url,
        api_key="sk-ant-fake",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
        max_retries=0,
        **kwargs,
    )
    return [chunk async for chunk in response]


async def test_litellm_streams_text_thinking_and_cache_usage(fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_text("Hello there", reasoning="Let me think", usage=CACHE_USAGE))
    chunks = await _litellm_stream(fake_llm)
    assert fake_llm.request_paths == ["/v1/v1/messages"]  # litellm appends /v1/messages
    assert fake_llm.request_headers[0]["x-api-key"] == "sk-ant-fake"
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == "Hello there"
    assert "".join(getattr(d, "reasoning_content", None) or "" for d in deltas) == "Let me think"
    signatures = [
        block.get("signature")
        for d in deltas
        for block in (getattr(d, "thinking_blocks", None) or [])
        if block.get("signature")
    ]
    assert signatures == ["sig-fake-1"]
    assert [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ] == ["stop"]
    usage = next(c.usage for c in chunks if getattr(c, "usage", None))
    assert (usage.prompt_tokens, usage.completion_tokens) == (100, 20)
    assert usage.prompt_tokens_details.cached_tokens == 30
    assert usage.prompt_tokens_details.cache_creation_tokens == 10


async def test_litellm_streams_tool_use_from_partial_json(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        reply_tool_calls(
            [("readTextFile", {"path": "a.txt"}), ("todo", {"items": [1, 2]})], text="Reading"
        )
    )
    chunks = await _litellm_stream(fake_llm)
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] = call.id or entry["id"]
            entry["name"] += call.function.name or ""
            entry["arguments"] += call.function.arguments or ""
    assert [calls[i]["id"] for i in sorted(calls)] == ["toolu_1", "toolu_2"]
    assert [calls[i]["name"] for i in sorted(calls)] == ["readTextFile", "todo"]
    assert [json.loads(calls[i]["arguments"]) for i in sorted(calls)] == [
        {"path": "a.txt"},
        {"items": [1, 2]},
    ]
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["tool_calls"]


async def test_litellm_parses_non_streaming_message(
    fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Configured the way a subprocess would be: through anthropic_env(), no explicit api_base.
    for name, value in fake_llm.anthropic_env().items():
        monkeypatch.setenv(name, value)
    fake_llm.script(
        reply_tool_calls(
            [("readTextFile", {"path": "a.txt"})],
            text="Reading",
            reasoning="hmm",
            usage=CACHE_USAGE,
        )
    )
    response = await _litellm().acompletion(
        model=CLAUDE, messages=[{"role": "user", "content": "hi"}], max_retries=0
    )
    assert fake_llm.request_headers[0]["x-api-key"] == "sk-ant-fake"
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Reading"
    assert choice.message.reasoning_content == "hmm"
    assert choice.message.thinking_blocks[0]["signature"] == "sig-fake-1"
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name) == ("toolu_1", "readTextFile")
    assert json.loads(call.function.arguments) == {"path": "a.txt"}
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (100, 20)
    assert response.usage.prompt_tokens_details.cached_tokens == 30


@pytest.mark.parametrize(
    ("status", "exception"),
    [(401, "AuthenticationError"), (429, "RateLimitError"), (529, "InternalServerError")],
)
async def test_litellm_maps_anthropic_errors(
    fake_llm: FakeLLM, status: int, exception: str
) -> None:
    fake_llm.script(reply_error(status, f"failure {status}"))
    litellm = _litellm()
    with pytest.raises(getattr(litellm, exception)) as caught:
        await _litellm_stream(fake_llm)
    assert f"failure {status}" in str(caught.value)
