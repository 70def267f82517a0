"""What litellm's price table says about one model, and what one call to it costs.

:class:`ModelInfo` is what a lookup (:func:`runtime.llm.prices.model_info`) returns. Its
:meth:`~ModelInfo.cost` follows litellm's ``cost_per_token``: the generic calculator with
long-context thresholds, ``tiered_pricing`` and ``off_peak_pricing`` (rates from
:mod:`runtime.llm.price_rates`), and the provider calculators litellm has for Vertex AI's >128k
rule and Dashscope's tiers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runtime.llm.price_rates import (
    Rates,
    fireworks_cache_default,
    generic_rates,
    off_peak,
    reasoning_rate,
    select_tier,
    tier_rate,
    with_off_peak,
)
from runtime.llm.price_table import Entry

__all__ = ["ModelInfo"]

_log = logging.getLogger(__name__)

_DASHSCOPE_FAMILY = frozenset({"dashscope", "qwencloud", "qwen_ai_platform"})
_PER_SECOND_KEYS = ("cost_per_second", "input_cost_per_second", "output_cost_per_second")


@dataclass(frozen=True)
class ModelInfo:
    """What litellm's price table says about one model.

    Attributes:
        key: The table key that matched (``gpt-4.1`` for ``openai/gpt-4.1``).
        provider: The provider prefix of the model string looked up (``openai``).
        litellm_provider: The entry's ``litellm_provider`` (may differ from ``provider``, e.g.
            ``vertex_ai-language-models``), or None if the entry names none.
        max_input_tokens: The context window, or None if the table does not say.
        max_output_tokens: The most tokens one reply may hold, or None if the table does not say.
        supports_reasoning: Whether litellm reports reasoning support for the model.
        input_cost_per_token: USD per uncached input token (below any long-context threshold).
        output_cost_per_token: USD per output token (below any long-context threshold).
        cache_read_input_token_cost: USD per cached input token, or None if the table sets none
            (litellm then bills cache reads at the input rate, or half of it on Fireworks).
        cache_creation_input_token_cost: USD per cache-write token, or None (input rate).
        output_cost_per_reasoning_token: USD per reasoning token when it differs from the output
            rate, else None.
        entry: The whole table entry, for long-context thresholds (``*_above_200k_tokens``),
            ``tiered_pricing`` and ``off_peak_pricing``; :meth:`cost` applies them.
    """

    key: str
    provider: str
    litellm_provider: str | None
    max_input_tokens: int | None
    max_output_tokens: int | None
    supports_reasoning: bool
    input_cost_per_token: float | None
    output_cost_per_token: float | None
    cache_read_input_token_cost: float | None
    cache_creation_input_token_cost: float | None
    output_cost_per_reasoning_token: float | None = None
    entry: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def priced(self) -> bool:
        """Whether the entry prices tokens (else :meth:`cost` returns None: cost unknown).

        False when the entry names no token price, and when its only non-zero price is per
        second of wall-clock time (litellm then bills the response time, which is not modelled).
        """
        tiered = isinstance(self.entry.get("tiered_pricing"), list)
        if self.input_cost_per_token is None and self.output_cost_per_token is None:
            return tiered
        per_token = (self.input_cost_per_token or 0.0) > 0 or (
            self.output_cost_per_token or 0.0
        ) > 0
        return per_token or tiered or all(self.entry.get(k) is None for k in _PER_SECOND_KEYS)

    def cost(
        self,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        cache_creation_input_tokens: int = 0,
        reasoning_tokens: int = 0,
        at: datetime | None = None,
    ) -> float | None:
        """The USD cost of one call, computed the way litellm's ``cost_per_token`` does.

        Args:
            input_tokens: Prompt tokens, OpenAI-style: *including* cached and cache-write tokens.
            output_tokens: Completion tokens, including reasoning tokens.
            cached_input_tokens: The part of ``input_tokens`` read from the prompt cache.
            cache_creation_input_tokens: The part of ``input_tokens`` written to the cache.
            reasoning_tokens: The part of ``output_tokens`` spent reasoning (billed at the
                entry's reasoning rate if it has one, else the output rate).
            at: When the call was billed, for off-peak pricing; defaults to now.

        Returns:
            The cost, or None if the entry prices no tokens (or prices by the second).
        """
        try:
            return self._cost(
                max(input_tokens, 0),
                max(output_tokens, 0),
                max(cached_input_tokens, 0),
                max(cache_creation_input_tokens, 0),
                max(reasoning_tokens, 0),
                at,
            )
        except Exception:  # pragma: no cover - malformed table data: cost unknown, never raise
            _log.debug("cost computation failed for %s", self.key, exc_info=True)
            return None

    def _cost(
        self, prompt: int, completion: int, cached: int, creation: int, reasoning: int, at: Any
    ) -> float | None:
        entry = self.entry
        if not self.priced:
            return None
        provider = self.provider
        if provider == "vertex_ai" and (
            entry.get("input_cost_per_token_above_128k_tokens") is not None
            or entry.get("output_cost_per_token_above_128k_tokens") is not None
        ):
            return _vertex_128k_cost(entry, prompt, completion)
        if provider in _DASHSCOPE_FAMILY:
            return _dashscope_cost(entry, prompt, completion, cached, creation, reasoning, at)
        if provider == "fireworks_ai" and entry.get("litellm_provider") == "fireworks_ai":
            entry = fireworks_cache_default(entry)
        block = off_peak(entry, at)
        rates = generic_rates(entry, prompt, provider == "xai", block)
        text = max(prompt - cached - creation, 0)
        prompt_cost = float(text) * rates.input
        prompt_cost += float(cached) * rates.cache_read
        if creation:
            prompt_cost += creation * rates.cache_creation
        if reasoning and provider != "xai":  # xAI bills reasoning as ordinary output
            completion_cost = float(max(0, completion - reasoning)) * rates.output
            completion_cost += float(reasoning) * reasoning_rate(entry, prompt, rates, block)
        else:
            completion_cost = float(completion) * rates.output
        return prompt_cost + completion_cost


def _vertex_128k_cost(entry: Entry, prompt: int, completion: int) -> float:
    """Mirror litellm's Vertex ``_handle_128k_pricing`` (it ignores caching for these models)."""
    above_in = entry.get("input_cost_per_token_above_128k_tokens")
    above_out = entry.get("output_cost_per_token_above_128k_tokens")
    in_rate = (
        above_in if prompt > 128_000 and above_in is not None else entry.get("input_cost_per_token")
    )
    out_rate = (
        above_out
        if completion > 128_000 and above_out is not None
        else entry.get("output_cost_per_token")
    )
    return float(prompt * (in_rate or 0.0) + completion * (out_rate or 0.0))


def _dashscope_cost(
    entry: Entry, prompt: int, completion: int, cached: int, creation: int, reasoning: int, at: Any
) -> float:
    """Mirror litellm's Dashscope calculator: one tier (by input tokens) prices every token."""
    text = max(prompt - cached - creation, 0)
    visible = max(completion - reasoning, 0)

    def flat(key: str) -> float:
        value = entry.get(key)
        return float(value if value is not None else entry.get("input_cost_per_token") or 0.0)

    own_reasoning = entry.get("output_cost_per_reasoning_token")
    flat_rates = Rates(
        input=float(entry.get("input_cost_per_token") or 0.0),
        output=float(entry.get("output_cost_per_token") or 0.0),
        cache_read=flat("cache_read_input_token_cost"),
        cache_creation=flat("cache_creation_input_token_cost"),
        reasoning=None if own_reasoning is None else float(own_reasoning),
    )
    tier = select_tier(entry.get("tiered_pricing"), text + cached + creation)
    if tier is None:
        rates = flat_rates
    else:
        has_output = "output_cost_per_token" in tier
        rates = Rates(
            input=tier_rate(tier, "input_cost_per_token"),
            output=tier_rate(tier, "output_cost_per_token") if has_output else flat_rates.output,
            cache_read=tier_rate(tier, "cache_read_input_token_cost", "input_cost_per_token"),
            cache_creation=tier_rate(
                tier, "cache_creation_input_token_cost", "input_cost_per_token"
            ),
            reasoning=(
                tier_rate(tier, "output_cost_per_reasoning_token")
                if "output_cost_per_reasoning_token" in tier
                else None
                if has_output
                else flat_rates.reasoning
            ),
        )
    rates = with_off_peak(rates, off_peak(entry, at))
    billed_reasoning = rates.output if rates.reasoning is None else rates.reasoning
    prompt_cost = (
        (text * rates.input) + (cached * rates.cache_read) + (creation * rates.cache_creation)
    )
    return prompt_cost + ((visible * rates.output) + (reasoning * billed_reasoning))
