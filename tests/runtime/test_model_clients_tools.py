"""The model clients, native and litellm, streaming tool calls from the fake server.

Every scenario runs on both paths (``client`` = ``native`` / ``litellm``): the calls must arrive
whole, with their ids, however the arguments were split.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from runtime.llm import Finish, GenerationRequest, LanguageModel, TextDelta, ToolCallChunk
from runtime.llm.openai_compat import StreamAccumulator
from runtime.schema.messages import TextPart, UserMessage
from tests.fakellm import FakeLLM, reply_tool_calls
from tests.runtime.model_client_helpers import TOOLS, api_model, ask, collect, tool_request


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
