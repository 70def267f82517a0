"""Model facts (prices, context window, reasoning support) from litellm's price table.

:func:`model_info` looks a model string up in the table litellm ships, read in place without
importing litellm (:mod:`runtime.llm.price_table`), and returns a
:class:`~runtime.llm.model_facts.ModelInfo`, which also computes what a call costs. Results are
cached per model string, in the process and across processes (:mod:`runtime.llm.price_cache`).

Lookup follows litellm's ``get_model_info``/``cost_per_token``: for ``<provider>/<model>`` it tries
``<provider>/<model>``, ``<model>``, both again without a dated snapshot suffix (or the provider's
own version suffix), then the provider's own cost key; each name exactly, then case-insensitively;
an entry only counts when its ``litellm_provider`` matches the provider (with litellm's
exceptions). ``alias_of`` rows resolve to their target, and the table's ``fill_missing`` rules
complete chat entries (litellm applies both when it loads the table).

If litellm is not installed, or its table is missing or unreadable, every lookup returns None
(cost unknown); nothing here raises.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from runtime.llm.model_facts import ModelInfo
from runtime.llm.price_cache import from_cache, read_cache, table_signature, write_cache
from runtime.llm.price_rates import as_rate
from runtime.llm.price_table import (
    RULES_KEY,
    Entry,
    ScannedTable,
    SearchAnomaly,
    Table,
    open_table,
    resolve,
    table_path,
)

__all__ = ["model_info"]

_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Which keys litellm tries

_DATED_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def _strip_model_name(model: str, provider: str) -> str:
    """Mirror litellm's ``_strip_model_name`` (without Bedrock's ARN and region handling)."""
    if provider in ("vertex_ai", "gemini", "databricks"):
        return re.sub(r"-\d+$", "", model)
    if "ft:" in model:
        return re.sub(r"(:[^:]*){3}$", "", model)
    return _DATED_SUFFIX.sub("", model)


def _fireworks_cost_key(model: str) -> str:
    """Mirror litellm's Fireworks ``get_model_cost_key`` for the common resource-name shapes."""
    name = model.removeprefix("fireworks_ai/")
    if name.startswith("accounts/") or "#" in name:
        return f"fireworks_ai/{name}"
    if name.startswith(("routers/", "models/")):
        return f"fireworks_ai/accounts/fireworks/{name}"
    return f"fireworks_ai/accounts/fireworks/models/{name}"


def _candidates(provider: str, model: str) -> list[str]:
    stripped = _strip_model_name(model, provider)
    names = [f"{provider}/{model}", model, f"{provider}/{stripped}", stripped]
    if provider == "fireworks_ai":
        names.append(_fireworks_cost_key(model))
    else:
        names.append(f"{provider}/{provider}/{model}")
    return list(dict.fromkeys(names))


def _provider_matches(entry: Entry, provider: str | None) -> bool:
    """Mirror litellm's ``_check_provider_match``."""
    listed = entry.get("litellm_provider")
    if not provider or listed is None or listed == provider:
        return True
    if not isinstance(listed, str):
        return False
    return (
        (provider == "vertex_ai" and listed.startswith("vertex_ai"))
        or (provider == "fireworks_ai" and listed.startswith("fireworks_ai"))
        or (provider.startswith("bedrock") and listed.startswith("bedrock"))
        or provider in ("litellm_proxy", "github", "nadir")
        or (provider == "azure_ai" and listed in ("azure", "openai"))
    )


# --------------------------------------------------------------------------------------------
# fill_missing rules (the table's ``fallback_generalizations`` block)


@dataclass(frozen=True)
class _FillRule:
    pattern: re.Pattern[str]
    providers: frozenset[str]
    info: Entry


def _fill_rules(table: Table) -> list[_FillRule]:
    block = table.raw(RULES_KEY)
    rules = block.get("rules") if block is not None else None
    out: list[_FillRule] = []
    for rule in rules if isinstance(rules, list) else []:
        if not isinstance(rule, dict) or "extends" in rule:
            continue
        pattern, info = rule.get("pattern"), rule.get("model_info")
        providers = rule.get("fill_missing_for_providers")
        if not isinstance(pattern, str) or not isinstance(info, dict) or "litellm_provider" in info:
            continue
        if not isinstance(providers, (list, tuple)) or not providers:
            continue
        if not all(isinstance(p, str) for p in providers):
            continue
        try:
            compiled = re.compile(pattern, re.IGNORECASE)
        except re.error:
            continue
        out.append(_FillRule(compiled, frozenset(providers), info))
    return out


def _fill_missing(table: Table, key: str, entry: Entry) -> Entry:
    """Fill the keys a chat entry leaves out from the rules flagged for its provider."""
    mode, provider = entry.get("mode", "chat"), entry.get("litellm_provider", "")
    if mode not in ("chat", "responses") or not isinstance(provider, str) or not provider:
        return entry
    fill: dict[str, Any] = {}
    for rule in _fill_rules(table):
        if provider in rule.providers and rule.pattern.search(key):
            fill.update(rule.info)
    if not fill:
        return entry
    return {**{k: v for k, v in fill.items() if k not in entry}, **entry}


# --------------------------------------------------------------------------------------------
# Lookup


def _lookup(data: bytes, litellm_model: str) -> ModelInfo | None:
    """Look ``litellm_model`` up in the table ``data`` (the file's bytes)."""
    try:
        return _lookup_in(open_table(data), litellm_model)
    except SearchAnomaly:
        return _lookup_in(ScannedTable(data), litellm_model)


def _lookup_in(table: Table, litellm_model: str) -> ModelInfo | None:
    provider, sep, model = litellm_model.partition("/")
    if not sep or not provider or not model:
        names, provider, model = (
            [litellm_model, _DATED_SUFFIX.sub("", litellm_model)],
            "",
            litellm_model,
        )
    else:
        names = _candidates(provider, model)
    for name in dict.fromkeys(names):
        found = resolve(table, name)
        if found is None or not _provider_matches(found[1], provider or None):
            continue
        key, entry = found
        entry = _fill_missing(table, key, entry)
        return _info(table, key, entry, provider, model)
    return None


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def _info(table: Table, key: str, entry: Entry, provider: str, model: str) -> ModelInfo:
    reasoning = entry.get("supports_reasoning")
    if reasoning is None:
        # litellm's supports_factory falls back on the bare model's own entry.
        bare = resolve(table, model)
        reasoning = bare[1].get("supports_reasoning") if bare is not None else None
    listed = entry.get("litellm_provider")
    return ModelInfo(
        key=key,
        provider=provider or (listed if isinstance(listed, str) else ""),
        litellm_provider=listed if isinstance(listed, str) else None,
        max_input_tokens=_count(entry.get("max_input_tokens")),
        max_output_tokens=_count(entry.get("max_output_tokens")),
        supports_reasoning=reasoning is True,
        input_cost_per_token=as_rate(entry.get("input_cost_per_token")),
        output_cost_per_token=as_rate(entry.get("output_cost_per_token")),
        cache_read_input_token_cost=as_rate(entry.get("cache_read_input_token_cost")),
        cache_creation_input_token_cost=as_rate(entry.get("cache_creation_input_token_cost")),
        output_cost_per_reasoning_token=as_rate(entry.get("output_cost_per_reasoning_token")),
        entry=MappingProxyType(dict(entry)),
    )


@functools.lru_cache(maxsize=64)
def model_info(litellm_model: str) -> ModelInfo | None:
    """Facts about ``litellm_model`` (``openai/gpt-4.1``) from litellm's price table.

    Returns None if the model is not in the table, or litellm (or its table) is not installed.
    Never imports litellm and never raises; results are cached per model string, in the process
    and across processes (:func:`~runtime.llm.price_cache.cache_file`), so a run's first request
    does not wait for a search of the 3.5 MB table (about 10 ms) every time.
    """
    path = table_path()
    if path is None:
        return None
    try:
        table = table_signature(path)
        cached = read_cache(table)
        if litellm_model in cached:
            try:
                return from_cache(cached[litellm_model])
            except (TypeError, ValueError, AttributeError):
                pass  # a damaged entry: look the model up again
        info = _lookup(path.read_bytes(), litellm_model)
        write_cache(table, cached, litellm_model, info)
        return info
    except Exception:
        _log.debug("price lookup failed for %s", litellm_model, exc_info=True)
        return None
