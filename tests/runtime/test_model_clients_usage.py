"""The model clients, native and litellm: token usage, cost and context windows.

Every scenario runs on both paths (``client`` = ``native`` / ``litellm``): the usage and price the
loop records must not depend on which client made the call.
"""

from __future__ import annotations

import pytest

from runtime.llm import Finish, LanguageModel, ReasoningDelta, TextDelta
from tests.fakellm import FakeLLM, reply_text
from tests.runtime.model_client_helpers import CLIENTS, api_model, ask, collect, make_model


async def test_usage_and_cost(fake_llm: FakeLLM, model: LanguageModel) -> None:
    usage = {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "reasoning_tokens": 100,
        "cached_tokens": 200,
    }
    fake_llm.script(reply_text("ok", usage=usage))
    finish = (await collect(model, ask()))[-1]
    assert isinstance(finish, Finish)
    got = finish.usage
    assert (got.input_tokens, got.output_tokens, got.total_tokens) == (1200, 300, 1500)
    assert (got.reasoning_tokens, got.cached_input_tokens) == (100, 200)
    # gpt-4.1 is in litellm's (local) price table.
    assert got.cost_usd is not None and 0 < got.cost_usd < 0.1


async def test_unknown_model_has_no_cost_and_no_window(fake_llm: FakeLLM, client: str) -> None:
    model = make_model(fake_llm.base_url, "my-local-finetune", client)
    fake_llm.script(reply_text("ok"))
    finish = (await collect(model, ask()))[-1]
    assert isinstance(finish, Finish)
    assert finish.usage.input_tokens == 10
    assert finish.usage.cost_usd is None
    assert model.context_window() is None


async def test_context_window_of_a_known_model(model: LanguageModel) -> None:
    assert model.context_window() == 1_047_576


async def test_text_reasoning_and_usage_on_both_apis(
    fake_llm: FakeLLM, api: LanguageModel, provider: str
) -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 50, "cached_tokens": 400}
    fake_llm.script(reply_text("The answer.", reasoning="Let me think.", usage=usage))
    chunks = await collect(api, ask())
    assert "".join(c.text for c in chunks if isinstance(c, ReasoningDelta)) == "Let me think."
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == "The answer."
    finish = chunks[-1]
    assert isinstance(finish, Finish) and finish.finish_reason == "stop"
    got = finish.usage
    assert (got.input_tokens, got.output_tokens, got.cached_input_tokens) == (1000, 50, 400)
    assert got.cost_usd is not None and got.cost_usd > 0
    if provider == "anthropic":
        assert finish.reasoning_signature == "sig-fake-1"


async def test_anthropic_usage_counts_cache_reads_and_writes(fake_llm: FakeLLM) -> None:
    usage = {
        "prompt_tokens": 5000,
        "completion_tokens": 100,
        "cached_tokens": 3000,
        "cache_creation_tokens": 1500,
    }
    costs = []
    for client in CLIENTS:
        fake_llm.script(reply_text("ok", usage=usage))
        model = api_model(fake_llm, "anthropic", client, "claude-sonnet-4-5")
        finish = (await collect(model, ask()))[-1]
        assert isinstance(finish, Finish)
        got = finish.usage
        # Every input token counts, as on the OpenAI API; cache reads are reported again.
        assert (got.input_tokens, got.cached_input_tokens, got.output_tokens) == (5000, 3000, 100)
        costs.append(got.cost_usd)
        await model.aclose()  # type: ignore[attr-defined]
    assert costs[0] is not None
    assert costs[0] == pytest.approx(costs[1], rel=1e-9), "the same price on both paths"
