"""The fake server's Anthropic Messages route: messages, named stream events, errors.

Spoken to with plain httpx.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.fakellm import FakeLLM, reply_delay, reply_error, reply_text, reply_tool_calls
from tests.fakellm_http import (
    ANTHROPIC_CACHE_USAGE,
    CACHE_USAGE,
    _anthropic_body,
    _anthropic_events,
    _anthropic_post,
    _deltas,
)


def test_anthropic_env(fake_llm: FakeLLM) -> None:
    env = fake_llm.anthropic_env()
    assert env["ANTHROPIC_BASE_URL"] == f"{fake_llm.url}/v1"
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-fake"
    assert "127.0.0.1" in env["NO_PROXY"] and "127.0.0.1" in env["no_proxy"]
    assert fake_llm.anthropic_env("sk-other")["ANTHROPIC_API_KEY"] == "sk-other"


def test_anthropic_non_streaming_message(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        reply_tool_calls(
            [("readTextFile", {"path": "a.txt"}), ("bad", "{not json", "toolu_x")],
            text="Reading",
            reasoning="Think first",
            usage=CACHE_USAGE,
        )
    )
    response = _anthropic_post(fake_llm, _anthropic_body())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "id": "msg_fake-1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [
            {"type": "thinking", "thinking": "Think first", "signature": "sig-fake-1"},
            {"type": "text", "text": "Reading"},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "readTextFile",
                "input": {"path": "a.txt"},
            },
            # Arguments that are not JSON cannot be an object: sent as the raw string.
            {"type": "tool_use", "id": "toolu_x", "name": "bad", "input": "{not json"},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": ANTHROPIC_CACHE_USAGE,
    }
    assert fake_llm.requests == [_anthropic_body()]
    assert fake_llm.request_headers[0]["x-api-key"] == "sk-ant-fake"


def test_anthropic_stream_event_sequence(fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_text("Hello there", reasoning="Let me think", usage=CACHE_USAGE))
    response = _anthropic_post(fake_llm, _anthropic_body(stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _anthropic_events(response)
    names = [e["type"] for e in events]
    thinking = "Let me think"
    text = "Hello there"
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        *["content_block_delta"] * (3 + 1),  # 3 thinking pieces of 4 characters, 1 signature
        "content_block_stop",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0]["message"] == {
        "id": "msg_fake-1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**ANTHROPIC_CACHE_USAGE, "output_tokens": 1},
    }
    assert events[2]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert [e["delta"]["type"] for e in events[3:7]] == ["thinking_delta"] * 3 + ["signature_delta"]
    assert "".join(_deltas(events, 0, "thinking")) == thinking
    assert _deltas(events, 0, "signature") == ["sig-fake-1"]
    assert events[8] == {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "text", "text": ""},
    }
    assert {e["delta"]["type"] for e in events[9:12]} == {"text_delta"}
    assert "".join(_deltas(events, 1, "text")) == text
    assert events[12] == {"type": "content_block_stop", "index": 1}
    assert events[-2] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 20},
    }
    assert events[-1] == {"type": "message_stop"}


def test_anthropic_streamed_tool_use_blocks(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        reply_tool_calls(
            [("readTextFile", {"path": "notes/today.md"}), ("bad", "{not json", "toolu_x")],
            text="Reading",
        )
    )
    events = _anthropic_events(_anthropic_post(fake_llm, _anthropic_body(stream=True)))
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [s["index"] for s in starts] == [0, 1, 2]
    assert starts[1]["content_block"] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "readTextFile",
        "input": {},
    }
    assert starts[2]["content_block"]["id"] == "toolu_x"
    pieces = _deltas(events, 1, "partial_json")
    assert len(pieces) > 1, "arguments must be split across deltas"
    assert json.loads("".join(pieces)) == {"path": "notes/today.md"}
    assert "".join(_deltas(events, 2, "partial_json")) == "{not json"
    assert {e["delta"]["type"] for e in events if e.get("index") in (1, 2) and "delta" in e} == {
        "input_json_delta"
    }
    assert [e["index"] for e in events if e["type"] == "content_block_stop"] == [0, 1, 2]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("tool_calls", "tool_use"),
        ("length", "max_tokens"),
        ("pause_turn", "pause_turn"),
        ("refusal", "refusal"),
    ],
)
def test_anthropic_stop_reason_mapping(fake_llm: FakeLLM, finish: str, stop_reason: str) -> None:
    fake_llm.script(reply_text("x", finish_reason=finish), reply_text("x", finish_reason=finish))
    assert _anthropic_post(fake_llm, _anthropic_body()).json()["stop_reason"] == stop_reason
    events = _anthropic_events(_anthropic_post(fake_llm, _anthropic_body(stream=True)))
    assert events[-2]["delta"]["stop_reason"] == stop_reason


def test_anthropic_default_usage_and_empty_reply(fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_text(""), reply_text(""))
    message = _anthropic_post(fake_llm, _anthropic_body()).json()
    assert message["content"] == [{"type": "text", "text": ""}]
    assert message["usage"] == {
        "input_tokens": 10,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 5,
    }
    events = _anthropic_events(_anthropic_post(fake_llm, _anthropic_body(stream=True)))
    assert [e["type"] for e in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


@pytest.mark.parametrize(
    "path",
    ["/v1/messages", "/messages", "/v1/v1/messages", "/proxy/anthropic/v1/messages/?beta=true"],
)
def test_anthropic_route_accepts_any_prefix(fake_llm: FakeLLM, path: str) -> None:
    fake_llm.script(reply_text("routed"))
    response = _anthropic_post(fake_llm, _anthropic_body(), path=path)
    assert response.json()["content"] == [{"type": "text", "text": "routed"}]
    assert fake_llm.request_paths == [path]


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_anthropic_error_shapes(fake_llm: FakeLLM, status: int, error_type: str) -> None:
    fake_llm.script(reply_error(status, f"failure {status}", headers={"retry-after": "0"}))
    response = _anthropic_post(fake_llm, _anthropic_body(stream=True))
    assert response.status_code == status
    assert response.json() == {
        "type": "error",
        "error": {"type": error_type, "message": f"failure {status}"},
    }
    assert response.headers["retry-after"] == "0"


def test_anthropic_explicit_error_type_and_exhausted_script(fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_error(400, "too long", "request_too_large"))
    assert (
        _anthropic_post(fake_llm, _anthropic_body()).json()["error"]["type"] == "request_too_large"
    )
    exhausted = _anthropic_post(fake_llm, _anthropic_body())
    assert exhausted.status_code == 500
    assert exhausted.json()["error"]["type"] == "api_error"
    assert "fake LLM script exhausted" in exhausted.json()["error"]["message"]
    not_json = httpx.post(f"{fake_llm.url}/v1/messages", content=b"{nope", timeout=5)
    assert not_json.status_code == 400
    assert not_json.json()["type"] == "error"


def test_anthropic_callable_and_delay(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        lambda body: reply_text(f"echo {body['messages'][-1]['content']}"),
        reply_delay(0.2, reply_text("late")),
    )
    echo = _anthropic_post(fake_llm, _anthropic_body()).json()
    assert echo["content"][0]["text"] == "echo hi"
    started = time.monotonic()
    late = _anthropic_post(fake_llm, _anthropic_body()).json()
    assert time.monotonic() - started >= 0.2
    assert late["content"][0]["text"] == "late"
