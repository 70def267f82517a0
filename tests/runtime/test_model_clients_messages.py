"""Messages as the model clients send them: the conversion, and the requests on the wire."""

from __future__ import annotations

import copy

from runtime.llm import GenerationRequest, LanguageModel
from runtime.llm.convert import to_openai_messages
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
from tests.fakellm import FakeLLM, reply_text
from tests.runtime.model_client_helpers import API_KEY, TOOLS, api_model, collect

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
