"""runtime.llm.prices: litellm's price table read without importing litellm.

The comparison tests import litellm (offline: LITELLM_LOCAL_MODEL_COST_MAP) and check that our
figures are litellm's own, to 1e-12 relative.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from runtime.llm import litellm_data, price_table, prices
from runtime.llm.model_facts import ModelInfo
from runtime.llm.prices import model_info

MONDAY_PEAK = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)  # outside every DeepSeek off-peak window
MONDAY_OFF_PEAK = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SATURDAY = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)

# (input incl. cache, output incl. reasoning, cached, cache writes, reasoning)
MIXES = [
    (1_000, 200, 0, 0, 0),
    (50_000, 3_000, 20_000, 0, 1_000),
    (12_000, 800, 4_000, 2_000, 300),
    (200_000, 1_000, 50_000, 0, 0),  # exactly at the 200k threshold (xAI's is inclusive)
    (250_000, 5_000, 100_000, 10_000, 2_000),  # above long-context thresholds
    (300, 0, 300, 0, 0),  # everything cached
]

SAMPLE = [
    "openai/gpt-4.1",
    "openai/gpt-4o-mini",
    "openai/o3",
    "openai/o4-mini",
    "openai/gpt-4.1-2025-04-14",
    "anthropic/claude-sonnet-4-5",
    "anthropic/claude-haiku-4-5",
    "anthropic/claude-sonnet-4-6",
    "deepseek/deepseek-chat",
    "deepseek/deepseek-v4-flash",  # off-peak pricing
    "fireworks_ai/accounts/fireworks/models/kimi-k2-instruct",  # default cache-read rate
    "fireworks_ai/kimi-k2-instruct",  # Fireworks' short name → its cost key
    "groq/openai/gpt-oss-120b",
    "gemini/gemini-2.5-pro",  # tiered above 200k input tokens
    "gemini/gemini-2.5-flash",
    "mistral/mistral-large-latest",
    "xai/grok-4.3",  # tiered, inclusive threshold, reasoning billed as output
    "dashscope/qwen3-max",  # tiered_pricing table
    "dashscope/qwen-turbo",  # separate reasoning price
    "bedrock/claude-opus-latest",  # an alias_of row
    "azure/gpt-5-chat",  # reasoning support only on the bare gpt-5-chat entry
    "azure/gpt-5.2-chat",  # reasoning support only from the table's fill_missing rules
    "snowflake/claude-sonnet-4-5",
]


@pytest.fixture(scope="module")
def litellm() -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the map from the network
        module = pytest.importorskip("litellm")
    yield module


def litellm_cost(
    litellm: ModuleType,
    model: str,
    mix: tuple[int, int, int, int, int],
    at: datetime,
    **usage_kwargs: Any,
) -> float:
    from litellm._internal_context import pinned_billing_time
    from litellm.types.utils import (
        CompletionTokensDetailsWrapper,
        PromptTokensDetailsWrapper,
        Usage,
    )

    prompt, completion, cached, creation, reasoning = mix
    if not usage_kwargs and (cached or creation):
        usage_kwargs["prompt_tokens_details"] = PromptTokensDetailsWrapper(
            cached_tokens=cached, cache_write_tokens=creation
        )
    if reasoning:
        usage_kwargs["completion_tokens_details"] = CompletionTokensDetailsWrapper(
            reasoning_tokens=reasoning
        )
    usage = Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        **usage_kwargs,
    )
    with pinned_billing_time(at):
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model, prompt_tokens=prompt, completion_tokens=completion, usage_object=usage
        )
    return float(prompt_cost + completion_cost)


def our_cost(info: ModelInfo, mix: tuple[int, int, int, int, int], at: datetime) -> float | None:
    prompt, completion, cached, creation, reasoning = mix
    return info.cost(
        input_tokens=prompt,
        output_tokens=completion,
        cached_input_tokens=cached,
        cache_creation_input_tokens=creation,
        reasoning_tokens=reasoning,
        at=at,
    )


def assert_same(ours: float | None, theirs: float) -> None:
    assert ours is not None
    assert ours == pytest.approx(theirs, rel=1e-12, abs=0.0)


# ------------------------------------------------------------------------------------------
# Against litellm itself


@pytest.mark.parametrize("model", SAMPLE)
def test_cost_matches_litellm(litellm: ModuleType, model: str) -> None:
    info = model_info(model)
    assert info is not None, model
    for mix in MIXES:
        for at in (MONDAY_PEAK, MONDAY_OFF_PEAK):
            theirs = litellm_cost(litellm, model, mix, at)
            assert theirs > 0, (model, mix)  # a comparison of two zeros would prove nothing
            assert_same(our_cost(info, mix, at), theirs)


def test_anthropic_style_usage_matches_litellm(litellm: ModuleType) -> None:
    # litellm's Anthropic usage carries cache reads and writes as their own fields.
    info = model_info("anthropic/claude-sonnet-4-5")
    assert info is not None
    mix = (40_000, 1_500, 30_000, 5_000, 0)
    theirs = litellm_cost(
        litellm,
        "anthropic/claude-sonnet-4-5",
        mix,
        MONDAY_PEAK,
        cache_read_input_tokens=30_000,
        cache_creation_input_tokens=5_000,
    )
    assert_same(our_cost(info, mix, MONDAY_PEAK), theirs)
    # Cache reads at 0.1x and writes at 1.25x the input rate: cheaper than no cache at all.
    assert our_cost(info, mix, MONDAY_PEAK) != our_cost(info, (40_000, 1_500, 0, 0, 0), MONDAY_PEAK)


def test_tiers_change_the_price() -> None:
    # The sample really exercises the long-context, inclusive-threshold and off-peak paths.
    pro = model_info("gemini/gemini-2.5-pro")
    assert pro is not None
    assert pro.cost(input_tokens=200_001, output_tokens=0) == pytest.approx(200_001 * 2.5e-06)
    assert pro.cost(input_tokens=200_000, output_tokens=0) == pytest.approx(200_000 * 1.25e-06)
    grok = model_info("xai/grok-4.3")
    assert grok is not None
    assert grok.cost(input_tokens=200_000, output_tokens=0) == pytest.approx(200_000 * 2.5e-06)
    flash = model_info("deepseek/deepseek-v4-flash")
    assert flash is not None
    peak = flash.cost(input_tokens=1000, output_tokens=1000, at=MONDAY_PEAK)
    assert flash.cost(input_tokens=1000, output_tokens=1000, at=MONDAY_OFF_PEAK) != peak
    assert flash.cost(input_tokens=1000, output_tokens=1000, at=SATURDAY) != peak


@pytest.mark.parametrize("model", SAMPLE)
def test_window_and_reasoning_match_litellm(litellm: ModuleType, model: str) -> None:
    info = model_info(model)
    assert info is not None
    assert info.max_input_tokens == litellm.get_model_info(model)["max_input_tokens"]
    assert info.max_output_tokens == litellm.get_model_info(model)["max_output_tokens"]
    assert info.supports_reasoning == litellm.supports_reasoning(model=model)


def test_sample_covers_both_reasoning_answers() -> None:
    answers = {info.supports_reasoning for m in SAMPLE if (info := model_info(m)) is not None}
    assert answers == {True, False}


def test_synthetic_entries_match_litellm(litellm: ModuleType) -> None:
    # Pricing shapes the shipped table has no chat model for: Vertex's >128k rule, a generic
    # tiered_pricing table, a separate reasoning price and weekday-qualified off-peak windows.
    entries: dict[str, dict[str, Any]] = {
        "vertex_ai/zz-prices-128k": {
            "litellm_provider": "vertex_ai-language-models",
            "mode": "chat",
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6,
            "input_cost_per_token_above_128k_tokens": 3e-6,
            "output_cost_per_token_above_128k_tokens": 4e-6,
            "cache_read_input_token_cost": 1e-7,
        },
        "openai/zz-prices-tiers": {
            "litellm_provider": "openai",
            "mode": "chat",
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 5e-6,
            "output_cost_per_reasoning_token": 7e-6,
            "tiered_pricing": [
                {"range": [0, 32000], "input_cost_per_token": 1e-6, "output_cost_per_token": 4e-6},
                {"range": [32000, 128000], "input_cost_per_token": 2e-6},
            ],
        },
        "xai/zz-prices-reasoning": {
            "litellm_provider": "xai",
            "mode": "chat",
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6,
            "output_cost_per_reasoning_token": 8e-6,  # xAI bills reasoning as output anyway
        },
        "mistral/zz-prices-offpeak": {
            "litellm_provider": "mistral",
            "mode": "chat",
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 3e-6,
            "output_cost_per_reasoning_token": 9e-6,
            "off_peak_pricing": {
                "input_cost_per_token": 5e-7,
                "output_cost_per_token": 1e-6,
                "output_cost_per_reasoning_token": 2e-6,
                "weekday_timezone": "Asia/Shanghai",
                "windows": [{"hours_utc": ["10:00-00:00"], "weekdays": ["mon", "tue"]}],
            },
        },
    }
    litellm.register_model(json.loads(json.dumps(entries)))
    table = json.dumps(entries, indent=4).encode()
    sunday_late = datetime(2026, 1, 4, 20, 0, tzinfo=UTC)  # Monday in Shanghai
    for model in entries:
        info = prices._lookup(table, model)
        assert info is not None
        for mix in [*MIXES, (130_000, 130_000, 0, 0, 0), (40_000, 900, 0, 0, 400)]:
            for at in (MONDAY_PEAK, MONDAY_OFF_PEAK, sunday_late):
                assert_same(our_cost(info, mix, at), litellm_cost(litellm, model, mix, at))


# ------------------------------------------------------------------------------------------
# Lookup


@pytest.mark.parametrize(
    "model",
    [
        "openai/no-such-model-xyz",
        "ollama_chat/llama3",
        "no-such-bare-model",
        "",
        "openai/",
        "openai/fallback_generalizations",  # the table's rule block, not a model
    ],
)
def test_unknown_model_is_none(model: str) -> None:
    assert model_info(model) is None


def test_lookup_follows_litellm_keys() -> None:
    short = model_info("fireworks_ai/kimi-k2-instruct")
    assert short is not None
    assert short.key == "fireworks_ai/accounts/fireworks/models/kimi-k2-instruct"
    bare = model_info("openai/gpt-4.1")
    assert bare is not None and bare.key == "gpt-4.1" and bare.provider == "openai"
    upper = model_info("openai/GPT-4.1")  # case-insensitive, like litellm
    assert upper is not None and upper.key == "gpt-4.1"
    alias = model_info("bedrock/claude-opus-latest")
    assert alias is not None and alias.key == "bedrock/claude-opus-latest"
    assert alias.input_cost_per_token is not None
    # An entry of another provider does not count: anthropic's claude-haiku-4-5 is no groq model.
    assert model_info("groq/claude-haiku-4-5") is None


def test_lookup_does_not_import_litellm() -> None:
    code = (
        "from runtime.llm.prices import model_info\n"
        "assert model_info('openai/gpt-4.1') is not None\n"
        "import sys\n"
        "assert 'litellm' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_every_shipped_entry_is_found_in_place() -> None:
    # The fast search must agree with a full parse for every key of the real file (whose layout
    # is hand-edited: one top-level key sits at column 0, one nested key at the top level).
    path = price_table.table_path()
    if path is None:
        pytest.skip("litellm is not installed")
    data = path.read_bytes()
    full = json.loads(data)
    table = price_table.open_table(data)
    assert isinstance(table, price_table.IndexedTable)
    scanned = price_table.ScannedTable(data)  # the fallback reads it exactly too
    for key, value in full.items():
        assert table.raw(key) == value, key
        assert scanned.raw(key) == value, key


# ------------------------------------------------------------------------------------------
# Layout robustness, on synthetic tables


def entry(price: float, **extra: Any) -> dict[str, Any]:
    return {
        "litellm_provider": "openai",
        "mode": "chat",
        "input_cost_per_token": price,
        "output_cost_per_token": price,
        **extra,
    }


def lookup(table: dict[str, Any] | str, model: str) -> ModelInfo | None:
    text = table if isinstance(table, str) else json.dumps(table, indent=4)
    return prices._lookup(text.encode(), model)


def test_nested_key_named_like_a_model_is_ignored() -> None:
    table = {
        "gpt-a": entry(1e-6, provider_specific_entry={"gpt-b": {"x": 1}}),
        "gpt-b": entry(2e-6),
    }
    info = lookup(table, "openai/gpt-b")
    assert info is not None and info.input_cost_per_token == 2e-6
    only_nested = {"gpt-a": entry(1e-6, provider_specific_entry={"gpt-b": {"x": 1}})}
    assert lookup(only_nested, "openai/gpt-b") is None


def test_nested_key_at_the_top_level_indentation_is_not_taken_for_an_entry() -> None:
    nested = {"gpt-b": {"input_cost_per_token": 9.0}}
    text = json.dumps({"gpt-a": entry(1e-6, meta=nested)}, indent=4)
    text = text.replace('        "meta": {\n            "gpt-b"', '        "meta": {\n    "gpt-b"')
    assert '\n    "gpt-b"' in text
    assert lookup(text, "openai/gpt-b") is None  # scanned exactly instead
    with_entry = text[: text.rindex("}")] + ',\n    "gpt-b": ' + json.dumps(entry(2e-6)) + "\n}"
    info = lookup(with_entry, "openai/gpt-b")
    assert info is not None and info.input_cost_per_token == 2e-6


def test_misindented_top_level_key_is_found() -> None:
    text = json.dumps({"gpt-a": entry(1e-6), "gpt-b": entry(2e-6)}, indent=4)
    text = text.replace('\n    "gpt-b"', '\n"gpt-b"')
    info = lookup(text, "openai/gpt-b")
    assert info is not None and info.input_cost_per_token == 2e-6


@pytest.mark.parametrize("indent", [None, 2, "\t"])
def test_other_layouts_are_read_exactly(indent: int | str | None) -> None:
    table = {"gpt-a": entry(1e-6, meta={"gpt-b": {"z": 1}}), "gpt-b": entry(2e-6)}
    text = json.dumps(table, indent=indent)
    info = lookup(text, "openai/gpt-b")
    assert info is not None and info.input_cost_per_token == 2e-6
    assert lookup(text, "openai/gpt-c") is None


def test_repeated_key_keeps_the_last_value() -> None:
    text = json.dumps({"gpt-a": entry(1e-6), "gpt-z": entry(3e-6)}, indent=4)
    text = text.replace('"gpt-z"', '"gpt-a"')
    info = lookup(text, "openai/gpt-a")
    assert info is not None and info.input_cost_per_token == 3e-6


def test_keys_with_colons_quotes_and_case() -> None:
    table = {
        "bedrock/anthropic.claude-x-v1:0": entry(1e-6, litellm_provider="bedrock"),
        'odd"name': entry(2e-6),
        "MixedCase-Model": entry(3e-6),
    }
    colon = lookup(table, "bedrock/anthropic.claude-x-v1:0")
    assert colon is not None and colon.input_cost_per_token == 1e-6
    quoted = lookup(table, 'openai/odd"name')
    assert quoted is not None and quoted.input_cost_per_token == 2e-6
    mixed = lookup(table, "openai/mixedcase-model")
    assert mixed is not None and mixed.key == "MixedCase-Model"


def test_aliases() -> None:
    table = {
        "gpt-a": entry(1e-6),
        "gpt-latest": {"alias_of": "gpt-a"},
        "gpt-broken": {"alias_of": "gpt-missing"},
        "gpt-chain": {"alias_of": "gpt-latest"},
        "gpt-b": entry(2e-6, aliases=["gpt-b-alias"]),
    }
    latest = lookup(table, "openai/gpt-latest")
    assert latest is not None and latest.key == "gpt-latest"
    assert latest.input_cost_per_token == 1e-6
    assert lookup(table, "openai/gpt-broken") is None
    assert lookup(table, "openai/gpt-chain") is None  # litellm drops an alias of an alias
    listed = lookup(table, "openai/gpt-b-alias")
    assert listed is not None and listed.input_cost_per_token == 2e-6
    assert "aliases" not in listed.entry


def test_dated_snapshot_falls_back_to_the_undated_entry() -> None:
    info = lookup({"gpt-a": entry(1e-6)}, "openai/gpt-a-2030-01-31")
    assert info is not None and info.key == "gpt-a"


def test_unpriced_entries_have_no_cost() -> None:
    table = {
        "gpt-free": entry(0.0),
        "gpt-unpriced": {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 10},
        "gpt-seconds": {**entry(0.0), "output_cost_per_second": 0.01},
    }
    free = lookup(table, "openai/gpt-free")
    assert free is not None and free.cost(input_tokens=10, output_tokens=10) == 0.0
    unpriced = lookup(table, "openai/gpt-unpriced")
    assert unpriced is not None and unpriced.max_input_tokens == 10
    assert unpriced.cost(input_tokens=10, output_tokens=10) is None
    seconds = lookup(table, "openai/gpt-seconds")
    assert seconds is not None and seconds.cost(input_tokens=10, output_tokens=10) is None


def test_no_litellm_or_no_table_means_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def use(path: Path | None) -> None:
        monkeypatch.setattr(prices, "table_path", lambda: path)
        model_info.cache_clear()

    try:
        use(None)
        assert model_info("openai/gpt-4.1") is None
        use(tmp_path / "missing.json")
        assert model_info("openai/gpt-4.1") is None
        corrupt = tmp_path / "corrupt.json"
        corrupt.write_text('{\n    "gpt-4.1": {"input_cost_per_token": ')
        use(corrupt)
        assert model_info("openai/gpt-4.1") is None
    finally:
        monkeypatch.undo()
        model_info.cache_clear()


def test_package_without_litellm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(litellm_data.importlib.util, "find_spec", lambda name: None)
    litellm_data.package_dir.cache_clear()
    try:
        assert price_table.table_path() is None
        assert litellm_data._read_json("provider_endpoints_support_backup.json") is None
    finally:
        monkeypatch.undo()
        litellm_data.package_dir.cache_clear()


def test_results_are_cached() -> None:
    first = model_info("openai/gpt-4.1")
    assert first is not None
    assert model_info("openai/gpt-4.1") is first


def test_lookups_are_cached_across_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    model_info.cache_clear()
    first = model_info("openai/gpt-4.1")
    assert first is not None
    cache = tmp_path / "perstack" / "model-info.json"
    stored = json.loads(cache.read_text())
    assert "openai/gpt-4.1" in stored["models"]
    # A new process (here: the in-process cache cleared) reads the same facts from the file.
    model_info.cache_clear()
    again = model_info("openai/gpt-4.1")
    assert again == first and again is not first
    assert again.entry == first.entry
    assert again.cost(input_tokens=1000, output_tokens=100) == first.cost(
        input_tokens=1000, output_tokens=100
    )
    # Unknown models are remembered as unknown.
    assert model_info("openai/no-such-model-xyz") is None
    assert json.loads(cache.read_text())["models"]["openai/no-such-model-xyz"] is None
    model_info.cache_clear()


def test_a_cache_for_another_table_or_a_broken_one_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = tmp_path / "perstack" / "model-info.json"
    cache.parent.mkdir(parents=True)
    forged = {"key": "forged", "provider": "openai", "litellm_provider": "openai"}
    cache.write_text(json.dumps({"table": "another table", "models": {"openai/gpt-4.1": forged}}))
    model_info.cache_clear()
    info = model_info("openai/gpt-4.1")
    assert info is not None and info.key == "gpt-4.1"
    cache.write_text("{not json")
    model_info.cache_clear()
    assert model_info("openai/gpt-4.1") == info
    # A damaged entry in the right table is looked up again.
    stored = json.loads(cache.read_text())
    stored["models"]["openai/gpt-4.1"] = forged
    cache.write_text(json.dumps(stored))
    model_info.cache_clear()
    assert model_info("openai/gpt-4.1") == info
    model_info.cache_clear()


def test_an_unwritable_cache_does_not_matter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    model_info.cache_clear()
    assert model_info("openai/gpt-4.1") is not None
    model_info.cache_clear()
