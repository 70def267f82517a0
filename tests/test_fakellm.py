"""The fake OpenAI- and Anthropic-compatible server itself.

Spoken to with plain httpx; litellm (an independent Anthropic client: the official ``anthropic`` SDK
is not installed) proves the Anthropic wire format.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

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

ROOT = Path(__file__).resolve().parents[1]


def _post(fake: FakeLLM, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{fake.base_url}/chat/completions", json=body, timeout=5, **kwargs)


def _events(response: httpx.Response) -> list[Any]:
    """The SSE data payloads of a streamed response ("[DONE]" kept as a string)."""
    out: list[Any] = []
    for line in response.text.splitlines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def _body(stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
        **extra,
    }


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


def test_exhausted_script_answers_500_clearly(fake_llm: FakeLLM) -> None:
    response = _post(fake_llm, _body())
    assert response.status_code == 500
    assert "fake LLM script exhausted" in response.json()["error"]["message"]


def test_default_reply_and_callable_reply(fake_llm: FakeLLM) -> None:
    fake_llm.default = reply_text("default")
    fake_llm.push(lambda body: reply_text(f"echo {body['messages'][-1]['content']}"))
    first = _post(fake_llm, _body()).json()["choices"][0]["message"]["content"]
    second = _post(fake_llm, _body()).json()["choices"][0]["message"]["content"]
    assert (first, second) == ("echo hi", "default")
    assert fake_llm.pending == 0


def test_delay_then_reply(fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_delay(0.2, reply_text("late")))
    started = time.monotonic()
    response = _post(fake_llm, _body())
    assert time.monotonic() - started >= 0.2
    assert response.json()["choices"][0]["message"]["content"] == "late"


def test_delay_past_client_timeout_then_server_keeps_serving(fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_delay(0.5), reply_text("next"))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{fake_llm.base_url}/chat/completions", json=_body(), timeout=0.1)
    assert _post(fake_llm, _body()).json()["choices"][0]["message"]["content"] == "next"


def test_disconnect_mid_stream(fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_disconnect("partial"))
    with pytest.raises(httpx.RemoteProtocolError):
        _post(fake_llm, _body(stream=True))


def test_close_ends_pending_delay_quickly() -> None:
    fake = FakeLLM()
    fake.script(reply_delay(30))

    def call() -> None:
        try:
            httpx.post(f"{fake.base_url}/chat/completions", json=_body(), timeout=10)
        except httpx.HTTPError:
            pass

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    while not fake.requests:
        time.sleep(0.01)
    started = time.monotonic()
    fake.close()
    assert time.monotonic() - started < 2
    thread.join(timeout=5)
    assert not thread.is_alive(), "the waiting client must be released when the server closes"


def test_unknown_route_and_models(fake_llm: FakeLLM) -> None:
    assert httpx.get(f"{fake_llm.base_url}/models").json()["data"][0]["id"] == "fake-model"
    response = httpx.post(f"{fake_llm.url}/nope", json={})
    assert response.status_code == 404
    assert fake_llm.requests == []


def test_records_headers_and_reset(fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_text("a"), reply_text("b"))
    _post(fake_llm, _body(), headers={"Authorization": "Bearer sk-test"})
    assert fake_llm.request_headers[0]["authorization"] == "Bearer sk-test"
    assert fake_llm.last_request["model"] == "gpt-4.1"
    fake_llm.reset()
    assert (fake_llm.requests, fake_llm.pending) == ([], 0)


def test_concurrent_requests_each_get_one_reply(fake_llm: FakeLLM) -> None:
    import concurrent.futures

    fake_llm.script(*(reply_text(str(i)) for i in range(8)))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _post(fake_llm, _body()).json(), range(8)))
    texts = sorted(a["choices"][0]["message"]["content"] for a in answers)
    assert texts == sorted(str(i) for i in range(8))
    assert len(fake_llm.requests) == 8


def test_admin_endpoints_script_a_server(fake_llm: FakeLLM) -> None:
    script = [{"text": "one"}, {"toolCalls": [{"name": "t", "arguments": {"a": 1}}]}]
    assert httpx.post(f"{fake_llm.url}/_fake/script", json=script).json() == {"pending": 2}
    assert _post(fake_llm, _body()).json()["choices"][0]["message"]["content"] == "one"
    tool = _post(fake_llm, _body()).json()["choices"][0]["message"]["tool_calls"][0]
    assert tool["function"] == {"name": "t", "arguments": '{"a": 1}'}
    assert len(httpx.get(f"{fake_llm.url}/_fake/requests").json()) == 2


def test_serve_as_its_own_process(tmp_path: Path) -> None:
    script = tmp_path / "replies.json"
    script.write_text(json.dumps([{"text": "from a process"}]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakellm", "--script", str(script)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        body = _body()
        response = httpx.post(f"{base_url}/chat/completions", json=body, timeout=5)
        assert response.json()["choices"][0]["message"]["content"] == "from a process"
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


def test_request_paths_are_recorded_and_reset(fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_text("a"), reply_text("b"))
    _post(fake_llm, _body())
    _anthropic_post(fake_llm, _anthropic_body())
    assert fake_llm.request_paths == ["/v1/chat/completions", "/v1/messages"]
    assert len(fake_llm.requests) == len(fake_llm.request_headers) == len(fake_llm.request_times)
    fake_llm.reset()
    assert fake_llm.request_paths == []


# Anthropic Messages API -------------------------------------------------------------------------

CACHE_USAGE = {
    "prompt_tokens": 100,
    "completion_tokens": 20,
    "cached_tokens": 30,
    "cache_creation_tokens": 10,
}
ANTHROPIC_CACHE_USAGE = {
    "input_tokens": 60,  # prompt_tokens minus cache reads and cache writes
    "cache_creation_input_tokens": 10,
    "cache_read_input_tokens": 30,
    "output_tokens": 20,
}


def _anthropic_body(stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
        **extra,
    }


def _anthropic_post(
    fake: FakeLLM, body: dict[str, Any], path: str = "/v1/messages", **kwargs: Any
) -> httpx.Response:
    headers = {"x-api-key": "sk-ant-fake", "anthropic-version": "2023-06-01"}
    return httpx.post(f"{fake.url}{path}", json=body, headers=headers, timeout=5, **kwargs)


def _sse(text: str) -> list[tuple[str | None, str]]:
    """The raw (event name, data) pairs of an SSE body, in order."""
    out: list[tuple[str | None, str]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        out.append((name, "\n".join(data)))
    return out


def _anthropic_events(response: httpx.Response) -> list[dict[str, Any]]:
    """The parsed events of an Anthropic stream; each event's name equals its data's type."""
    events = []
    for name, data in _sse(response.text):
        event = json.loads(data)
        assert event["type"] == name
        events.append(event)
    return events


def _deltas(events: list[dict[str, Any]], index: int, key: str) -> list[str]:
    return [
        e["delta"][key]
        for e in events
        if e["type"] == "content_block_delta" and e["index"] == index and key in e["delta"]
    ]


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


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_disconnect_breaks_the_chunked_body_after_some_deltas(fake_llm: FakeLLM, path: str) -> None:
    fake_llm.script(reply_disconnect("partial text"))
    lines: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", f"{fake_llm.url}{path}", json=_body(stream=True), timeout=5) as r,
    ):
        for line in r.iter_lines():
            lines.append(line)
    datas = [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]
    if path.endswith("/messages"):
        assert [d["type"] for d in datas[:3]] == ["message_start", "ping", "content_block_start"]
        text = "".join(d["delta"]["text"] for d in datas if d["type"] == "content_block_delta")
    else:
        text = "".join(d["choices"][0]["delta"].get("content") or "" for d in datas)
    assert text == "partial text"


# Fault replies (both routes) --------------------------------------------------------------------

ROUTES = ["/v1/chat/completions", "/v1/messages"]


def _stream_post(fake: FakeLLM, path: str) -> httpx.Response:
    return httpx.post(f"{fake.url}{path}", json=_body(stream=True), timeout=5)


def _streamed_text(path: str, events: list[tuple[str | None, str]]) -> str:
    """The text deltas of a stream (events that parse as JSON only)."""
    text = ""
    for _, data in events:
        try:
            chunk = json.loads(data)
        except ValueError:
            continue
        if path.endswith("/messages"):
            if chunk.get("type") == "content_block_delta":
                text += chunk["delta"].get("text", "")
        elif chunk.get("choices"):
            text += chunk["choices"][0]["delta"].get("content") or ""
    return text


@pytest.mark.parametrize("path", ROUTES)
def test_raw_replies(fake_llm: FakeLLM, path: str) -> None:
    page = "<html><body>Sign in to the proxy</body></html>"
    fake_llm.script(
        reply_raw(200, page),
        reply_raw(200, "this is not json", "application/json"),
        reply_raw(502, b"\x00\xffbad gateway", "application/octet-stream", headers={"x-a": "1"}),
    )
    html = _stream_post(fake_llm, path)
    assert (html.status_code, html.headers["content-type"], html.text) == (200, "text/html", page)
    not_json = _stream_post(fake_llm, path)
    assert not_json.headers["content-type"] == "application/json"
    assert not_json.text == "this is not json"
    with pytest.raises(ValueError):
        not_json.json()
    gateway = _stream_post(fake_llm, path)
    assert (gateway.status_code, gateway.content) == (502, b"\x00\xffbad gateway")
    assert gateway.headers["x-a"] == "1"


@pytest.mark.parametrize("path", ROUTES)
def test_truncated_stream_ends_cleanly_without_a_finish(fake_llm: FakeLLM, path: str) -> None:
    fake_llm.script(reply_truncated_stream("partial text"))
    response = _stream_post(fake_llm, path)  # no transport error: the body is complete
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _sse(response.text)
    assert _streamed_text(path, events) == "partial text"
    chunks = [json.loads(data) for _, data in events]  # every event is valid JSON
    assert "[DONE]" not in response.text
    if path.endswith("/messages"):
        names = [name for name, _ in events]
        assert names[:3] == ["message_start", "ping", "content_block_start"]
        assert names[-1] == "content_block_delta"
        assert not {"content_block_stop", "message_delta", "message_stop"} & set(names)
    else:
        assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
        assert all("usage" not in c for c in chunks)


@pytest.mark.parametrize("path", ROUTES)
def test_malformed_stream_sends_junk_then_ends(fake_llm: FakeLLM, path: str) -> None:
    fake_llm.script(reply_malformed_stream("partial text"))
    response = _stream_post(fake_llm, path)
    assert response.status_code == 200
    events = _sse(response.text)
    assert _streamed_text(path, events) == "partial text"
    for _, data in events[:-1]:
        json.loads(data)
    name, data = events[-1]
    assert data == '{"not json'
    assert "[DONE]" not in response.text
    if path.endswith("/messages"):
        assert name == "content_block_delta"
        assert response.text.endswith('event: content_block_delta\ndata: {"not json\n\n')
        assert "message_stop" not in response.text
    else:
        assert response.text.endswith('\n\ndata: {"not json\n\n')


@pytest.mark.parametrize("path", ROUTES)
def test_malformed_stream_custom_junk_is_verbatim(fake_llm: FakeLLM, path: str) -> None:
    fake_llm.script(reply_malformed_stream("ab", junk="data: <html>oops</html>\n\n"))
    response = _stream_post(fake_llm, path)
    assert response.text.endswith("}\n\ndata: <html>oops</html>\n\n")
    assert _streamed_text(path, _sse(response.text)) == "ab"


@pytest.mark.parametrize("path", ROUTES)
def test_stream_error_event(fake_llm: FakeLLM, path: str) -> None:
    fake_llm.script(
        reply_stream_error("partial text"), reply_stream_error("", "slow down", status=429)
    )
    response = _stream_post(fake_llm, path)
    assert response.status_code == 200
    events = _sse(response.text)
    assert _streamed_text(path, events) == "partial text"
    name, data = events[-1]
    second = _sse(_stream_post(fake_llm, path).text)[-1]
    if path.endswith("/messages"):
        assert name == "error"
        assert json.loads(data) == {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
        }
        assert json.loads(second[1])["error"] == {
            "type": "rate_limit_error",
            "message": "slow down",
        }
    else:
        assert json.loads(data)["error"]["message"] == "Overloaded"
        assert json.loads(second[1])["error"]["type"] == "rate_limit_exceeded"


@pytest.mark.parametrize("path", ROUTES)
def test_big_tool_arguments_stream_fast(fake_llm: FakeLLM, path: str) -> None:
    content = "x" * (2 * 1024 * 1024)
    fake_llm.script(reply_tool_calls([("writeTextFile", {"content": content})], chunk_size=16))
    pieces: list[str] = []
    started = time.monotonic()
    with httpx.stream("POST", f"{fake_llm.url}{path}", json=_body(stream=True), timeout=30) as r:
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[len("data: ") :])
            if path.endswith("/messages"):
                if chunk["type"] == "content_block_delta":
                    pieces.append(chunk["delta"]["partial_json"])
            elif chunk["choices"]:
                for call in chunk["choices"][0]["delta"].get("tool_calls", []):
                    pieces.append(call["function"]["arguments"])
    elapsed = time.monotonic() - started
    assert json.loads("".join(pieces)) == {"content": content}
    assert max(len(p) for p in pieces) == 16
    assert len(pieces) > 2 * 1024 * 1024 // 16
    assert elapsed < 3, f"2 MB of arguments in 16-character deltas took {elapsed:.2f} s"


def test_slow_stream_still_flushes_each_event(fake_llm: FakeLLM) -> None:
    # With chunk_delay every event is its own flushed write: the first one arrives long before
    # the last (batching would deliver them all at the end).
    fake_llm.script(reply_text("abc", chunk_size=1, chunk_delay=0.05))
    arrivals: list[float] = []
    with httpx.stream(
        "POST", f"{fake_llm.base_url}/chat/completions", json=_body(stream=True)
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic())
    assert len(arrivals) == 1 + 3 + 1 + 1  # role, 3 deltas, finish, [DONE]
    assert arrivals[-1] - arrivals[0] >= 0.15


def test_admin_endpoint_scripts_fault_replies(fake_llm: FakeLLM) -> None:
    script = [
        {"raw": {"status": 200, "body": "<html>hi</html>"}},
        {"raw": {"status": 200, "body": "nope", "contentType": "application/json"}},
        {"truncatedStream": "cut"},
        {"malformedStream": {"text": "bad", "junk": "data: {oops\n\n"}},
        {"streamError": {"text": "err", "message": "busy", "status": 529}},
        {"text": "cached", "usage": CACHE_USAGE, "chunkSize": 2},
        {"error": {"status": 429, "message": "slow", "headers": {"retry-after": "3"}}},
    ]
    assert httpx.post(f"{fake_llm.url}/_fake/script", json=script).json() == {"pending": 7}
    path = "/v1/messages"
    html = _stream_post(fake_llm, path)
    assert (html.headers["content-type"], html.text) == ("text/html", "<html>hi</html>")
    assert _stream_post(fake_llm, path).text == "nope"
    truncated = _stream_post(fake_llm, path).text
    assert "message_stop" not in truncated and _streamed_text(path, _sse(truncated)) == "cut"
    assert _stream_post(fake_llm, path).text.endswith("data: {oops\n\n")
    error = json.loads(_sse(_stream_post(fake_llm, path).text)[-1][1])
    assert error["error"] == {"type": "overloaded_error", "message": "busy"}
    cached = _anthropic_events(_stream_post(fake_llm, path))
    assert cached[0]["message"]["usage"] == {**ANTHROPIC_CACHE_USAGE, "output_tokens": 1}
    assert _deltas(cached, 0, "text") == ["ca", "ch", "ed"]
    limited = _stream_post(fake_llm, path)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    assert limited.json()["error"]["type"] == "rate_limit_error"


# The Anthropic wire format, parsed by an independent client (litellm) ---------------------------

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
