"""The fake server itself: its script, records, lifecycle, admin endpoints and stream pace.

Spoken to with plain httpx; also run as its own process (``python -m tests.fakellm``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.fakellm import FakeLLM, reply_delay, reply_text, reply_tool_calls
from tests.fakellm_http import ROUTES, _anthropic_body, _anthropic_post, _body, _post

ROOT = Path(__file__).resolve().parents[1]


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
