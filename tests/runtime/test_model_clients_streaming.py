"""The model clients, native and litellm, streaming text and reasoning from the fake server.

Every scenario runs on both paths (``client`` = ``native`` / ``litellm``): the deltas, finishes and
requests the loop sees must not depend on which client made the call.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.llm import Finish, LanguageModel, ReasoningDelta, TextDelta
from runtime.llm.openai_compat import StreamAccumulator
from tests.fakellm import FakeLLM, reply_length, reply_text
from tests.runtime.model_client_helpers import API_KEY, ask, collect, make_model

ROOT = Path(__file__).resolve().parents[2]


async def test_is_a_language_model(model: LanguageModel) -> None:
    assert isinstance(model, LanguageModel)
    assert model.model_name == "gpt-4.1"
    assert API_KEY not in repr(model)


async def test_streamed_text(fake_llm: FakeLLM, model: LanguageModel) -> None:
    fake_llm.script(reply_text("Hello from the fake model"))
    chunks = await collect(model, ask())
    texts = [c for c in chunks if isinstance(c, TextDelta)]
    assert len(texts) > 1, "text must stream in several deltas"
    assert "".join(t.text for t in texts) == "Hello from the fake model"
    assert isinstance(chunks[-1], Finish)
    assert chunks[-1].finish_reason == "stop"
    assert sum(isinstance(c, Finish) for c in chunks) == 1
    body = fake_llm.last_request
    assert body["model"] == "gpt-4.1"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert "tools" not in body
    assert fake_llm.request_headers[0]["authorization"] == f"Bearer {API_KEY}"


async def test_reasoning_deltas_come_first_and_in_order(
    fake_llm: FakeLLM, model: LanguageModel
) -> None:
    fake_llm.script(reply_text("The answer is 4.", reasoning="2 plus 2 is 4, obviously."))
    chunks = await collect(model, ask())
    kinds = [c.kind for c in chunks]
    assert kinds.index("text") > max(i for i, k in enumerate(kinds) if k == "reasoning")
    reasoning = "".join(c.text for c in chunks if isinstance(c, ReasoningDelta))
    assert reasoning == "2 plus 2 is 4, obviously."
    assert sum(isinstance(c, ReasoningDelta) for c in chunks) > 1


@pytest.mark.parametrize(
    ("finish_reason", "expected"),
    [("length", "length"), ("content_filter", "content-filter")],
)
async def test_finish_reasons(
    fake_llm: FakeLLM, model: LanguageModel, finish_reason: str, expected: str
) -> None:
    fake_llm.script(reply_text("partial", finish_reason=finish_reason))
    finish = (await collect(model, ask()))[-1]
    assert isinstance(finish, Finish) and finish.finish_reason == expected


async def test_reply_length_helper(fake_llm: FakeLLM, model: LanguageModel) -> None:
    fake_llm.script(reply_length())
    finish = (await collect(model, ask()))[-1]
    assert isinstance(finish, Finish) and finish.finish_reason == "length"


@pytest.mark.parametrize(
    ("model_name", "budget", "effort"),
    [
        ("o3", "medium", "medium"),
        ("o3", "minimal", "low"),
        ("o3", "none", None),
        ("gpt-4.1", "high", None),
    ],
)
async def test_reasoning_effort_only_for_reasoning_models(
    fake_llm: FakeLLM, client: str, model_name: str, budget: str, effort: str | None
) -> None:
    fake_llm.script(reply_text("ok"))
    await collect(make_model(fake_llm.base_url, model_name, client), ask(reasoning_budget=budget))
    assert fake_llm.last_request.get("reasoning_effort") == effort


async def test_consumer_may_stop_early(fake_llm: FakeLLM, model: LanguageModel) -> None:
    fake_llm.script(reply_text("a long answer " * 20), reply_text("second"))
    stream = model.stream(ask())
    first = await anext(stream)
    assert isinstance(first, TextDelta)
    await stream.aclose()  # type: ignore[attr-defined]
    chunks = await collect(model, ask())
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == "second"


@pytest.mark.parametrize(
    ("raw", "has_calls", "expected"),
    [
        ("stop", True, "stop"),
        ("stop", False, "stop"),
        ("tool_calls", True, "tool-calls"),
        ("function_call", True, "tool-calls"),
        ("length", False, "length"),
        ("content_filter", False, "content-filter"),
        ("something_new", False, "other"),
        (None, True, "tool-calls"),
        (None, False, "stop"),
    ],
)
def test_finish_reason_mapping(raw: str | None, has_calls: bool, expected: str) -> None:
    acc = StreamAccumulator()
    acc.finish_reason = raw
    assert acc.finish(has_calls) == expected


CHILD = """
import asyncio, os, sys
from runtime.llm import GenerationRequest, TextDelta
from runtime.llm.factory import create_model
from runtime.schema.messages import TextPart, UserMessage

async def main():
    model = create_model("openai", "gpt-4.1", {"client": sys.argv[1]}, os.environ)
    request = GenerationRequest(messages=[UserMessage(contents=[TextPart(text="hi")])], tools=[])
    async for chunk in model.stream(request):
        if isinstance(chunk, TextDelta):
            sys.stdout.write(chunk.text)

asyncio.run(main())
"""


def test_a_subprocess_reaches_the_fake_through_openai_base_url(
    fake_llm: FakeLLM, client: str
) -> None:
    # The way CLI tests use the fake: a child process, configured only through the environment.
    fake_llm.script(reply_text("Hello, child process"))
    env = {**os.environ, **fake_llm.env()}
    env.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)  # the model module must set it by itself
    out = subprocess.run(
        [sys.executable, "-c", CHILD, client],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Hello, child process"
    assert out.stderr == "", "the client must not write to stderr or stdout"
    assert fake_llm.last_request["messages"] == [{"role": "user", "content": "hi"}]
