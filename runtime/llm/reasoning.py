"""Reasoning budgets: Perstack's named budgets as tokens, and what each provider's API wants.

``none``/``minimal``/``low``/``medium``/``high`` or a token count (§8.3 of the reference) become
Anthropic's ``thinking.budget_tokens`` or OpenAI's ``reasoning_effort``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.errors import ConfigError

REASONING_BUDGET_TOKENS: Mapping[str, int] = {
    "minimal": 1024,
    "low": 2048,
    "medium": 5000,
    "high": 10000,
}
"""Token counts of Perstack's named reasoning budgets (§8.3)."""

ANTHROPIC_MIN_THINKING_TOKENS = 1024
"""Anthropic rejects a thinking budget below this."""


def budget_tokens(budget: str | int) -> int:
    """The token count of a Perstack reasoning budget (0 when disabled).

    Args:
        budget: ``none``/``minimal``/``low``/``medium``/``high`` or a token count.

    Raises:
        ConfigError: ``budget`` is an unknown name or a negative number.
    """
    if isinstance(budget, bool):  # bool is an int; never a meaningful budget
        raise ConfigError(
            f"reasoningBudget {budget!r} is invalid: use none/minimal/low/medium/high "
            "or a token count"
        )
    if isinstance(budget, int):
        if budget < 0:
            raise ConfigError(f"reasoningBudget {budget!r} is invalid: it must not be negative")
        return budget
    if budget == "none":
        return 0
    try:
        return REASONING_BUDGET_TOKENS[budget]
    except KeyError:
        raise ConfigError(
            f"reasoningBudget {budget!r} is invalid: use none/minimal/low/medium/high or a token "
            "count"
        ) from None


def _effort(budget: str | int, tokens: int) -> str:
    # Perstack's OpenAI mapping: minimal → low, names pass through, numbers by thresholds.
    if budget == "minimal":
        return "low"
    if isinstance(budget, str):
        return budget
    if tokens <= 2048:
        return "low"
    if tokens <= 5000:
        return "medium"
    return "high"


def reasoning_effort(provider_name: str, litellm_model: str, budget: str | int) -> str | None:
    """OpenAI's ``reasoning_effort`` for ``budget`` on an OpenAI-compatible endpoint.

    None when reasoning is disabled, or for providers Perstack sends no reasoning option to
    (Azure OpenAI, DeepSeek: deepseek-reasoner always reasons).

    Raises:
        ConfigError: ``budget`` is invalid.
    """
    tokens = budget_tokens(budget)
    if tokens == 0:
        return None
    provider = litellm_model.split("/", 1)[0] if "/" in litellm_model else provider_name
    if provider_name in ("azure-openai", "deepseek") or provider in ("azure", "deepseek"):
        return None
    return _effort(budget, tokens)


def reasoning_options(provider_name: str, litellm_model: str, budget: str | int) -> dict[str, Any]:
    """The litellm keyword arguments that enable reasoning at ``budget`` (§8.3 of the reference).

    The caller applies them only when the model supports reasoning: sending them to a model that
    does not is a 400 from most providers.

    Args:
        provider_name: The user's provider name (``openai``, ``azure-openai``, ``fireworks``...).
        litellm_model: The resolved litellm model; its prefix selects the provider's option.
        budget: ``none``/``minimal``/``low``/``medium``/``high`` or a token count; ``none`` and
            0 disable reasoning.

    Returns:
        The keyword arguments, empty when reasoning is disabled or the provider takes none.

    Raises:
        ConfigError: ``budget`` is invalid.
    """
    tokens = budget_tokens(budget)
    if tokens == 0:
        return {}
    provider = litellm_model.split("/", 1)[0] if "/" in litellm_model else provider_name
    if provider_name in ("azure-openai", "deepseek") or provider in ("azure", "deepseek"):
        # Perstack sends no reasoning options to these; deepseek-reasoner always reasons.
        return {}
    if provider in ("ollama", "ollama_chat"):
        return {"think": True}
    if provider in ("anthropic", "gemini", "vertex_ai", "bedrock"):
        # litellm maps this to Anthropic's thinking, Gemini's thinkingConfig (with thoughts
        # included) and Bedrock's reasoning config.
        if provider in ("anthropic", "bedrock"):
            tokens = max(tokens, ANTHROPIC_MIN_THINKING_TOKENS)
        return {"thinking": {"type": "enabled", "budget_tokens": tokens}}
    return {"reasoning_effort": _effort(budget, tokens)}
