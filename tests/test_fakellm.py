"""The fake OpenAI-compatible server itself, spoken to with plain httpx."""

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
    reply_text,
    reply_tool_calls,
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
