"""Plain-httpx helpers the fake server's own tests (tests/test_fakellm_*.py) speak with.

Request bodies and posts for both routes, and parsers of the SSE streams they answer.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.fakellm import FakeLLM


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
