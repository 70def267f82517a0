"""The fake server's fault replies, on both routes: disconnects, raw bodies, broken streams.

Spoken to with plain httpx.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fakellm import (
    FakeLLM,
    reply_disconnect,
    reply_malformed_stream,
    reply_raw,
    reply_stream_error,
    reply_truncated_stream,
)
from tests.fakellm_http import (
    ANTHROPIC_CACHE_USAGE,
    CACHE_USAGE,
    ROUTES,
    _anthropic_events,
    _body,
    _deltas,
    _post,
    _sse,
    _stream_post,
    _streamed_text,
)


def test_disconnect_mid_stream(fake_llm: FakeLLM) -> None:
    fake_llm.script(reply_disconnect("partial"))
    with pytest.raises(httpx.RemoteProtocolError):
        _post(fake_llm, _body(stream=True))


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
