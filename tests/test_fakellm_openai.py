"""The fake server's OpenAI chat completions route: JSON and streamed answers, errors.

Spoken to with plain httpx.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakellm import FakeLLM, reply_error, reply_length, reply_text, reply_tool_calls
from tests.fakellm_http import _body, _events, _post


def test_non_streaming_text(fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_text("Hello there", usage={"prompt_tokens": 7, "completion_tokens": 3}))
    response = _post(fake_llm, _body())
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "Hello there"}
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"]["prompt_tokens"] == 7
    assert data["usage"]["total_tokens"] == 10
    assert fake_llm.requests == [_body()]


def test_streaming_text_with_reasoning_and_usage(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        reply_text(
            "Hello there",
            reasoning="Let me think",
            usage={"prompt_tokens": 9, "completion_tokens": 4, "reasoning_tokens": 2},
        )
    )
    response = _post(fake_llm, _body(stream=True, stream_options={"include_usage": True}))
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    reasoning = "".join(d.get("reasoning_content", "") for d in deltas)
    text = "".join(d.get("content") or "" for d in deltas)
    assert reasoning == "Let me think"
    assert text == "Hello there"
    assert sum(1 for d in deltas if d.get("content")) > 1, "text must arrive in several chunks"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == []
    assert usage["prompt_tokens"] == 9
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 2


def test_streaming_without_include_usage_has_no_usage_chunk(fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_text("x"))
    events = _events(_post(fake_llm, _body(stream=True)))
    assert all("usage" not in e for e in events if isinstance(e, dict))


def test_streamed_parallel_tool_calls_split_arguments(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        reply_tool_calls(
            [("readTextFile", {"path": "notes/today.md"}), ("bad", "{not json", "call_x")],
            text="Reading",
        )
    )
    events = _events(_post(fake_llm, _body(stream=True)))
    calls: dict[int, dict[str, Any]] = {}
    pieces: dict[int, int] = {}
    for chunk in events[:-1]:
        for fragment in chunk["choices"][0]["delta"].get("tool_calls", []):
            call = calls.setdefault(fragment["index"], {"id": None, "name": "", "arguments": ""})
            call["id"] = fragment.get("id") or call["id"]
            call["name"] += fragment.get("function", {}).get("name") or ""
            if fragment.get("function", {}).get("arguments"):
                call["arguments"] += fragment["function"]["arguments"]
                pieces[fragment["index"]] = pieces.get(fragment["index"], 0) + 1
    assert calls[0] == {
        "id": "call_1",
        "name": "readTextFile",
        "arguments": '{"path": "notes/today.md"}',
    }
    assert calls[1] == {"id": "call_x", "name": "bad", "arguments": "{not json"}
    assert pieces[0] > 1, "arguments must be split across chunks"
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_non_streaming_tool_calls(fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_tool_calls([("a", {"x": 1})]))
    message = _post(fake_llm, _body()).json()["choices"][0]["message"]
    assert message["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "a", "arguments": '{"x": 1}'}}
    ]


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
def test_error_replies(fake_llm: FakeLLM, status: int) -> None:
    fake_llm.script(reply_error(status, f"failure {status}", headers={"retry-after": "0"}))
    response = _post(fake_llm, _body(stream=True))
    assert response.status_code == status
    assert response.json()["error"]["message"] == f"failure {status}"
    assert response.headers["retry-after"] == "0"


def test_length_finish_reason(fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_length())
    assert _post(fake_llm, _body()).json()["choices"][0]["finish_reason"] == "length"
