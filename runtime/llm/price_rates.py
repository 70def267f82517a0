"""Per-token rates from a price-table entry, picked the way litellm's cost calculator does.

An entry's standard rates may give way to a ``tiered_pricing`` tier (chosen by input tokens), to
long-context thresholds (``*_above_<n>[k]_tokens``) and to an ``off_peak_pricing`` block whose
window is open when the call is billed. :mod:`runtime.llm.model_facts` multiplies them out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from runtime.llm.price_table import Entry

__all__ = [
    "Rates",
    "as_rate",
    "fireworks_cache_default",
    "generic_rates",
    "off_peak",
    "reasoning_rate",
    "select_tier",
    "tier_rate",
    "with_off_peak",
]


def _unit(entry: Entry, key: str, default: float | None = 0.0) -> float | None:
    """Mirror litellm's ``get_cost_per_unit`` for the standard service tier."""
    value = entry.get(key)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return default


def as_rate(value: object) -> float | None:
    """A table value as a rate: a number or numeric string, else None (booleans included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def tier_rate(tier: Entry, key: str, fallback: str | None = None) -> float:
    """A ``tiered_pricing`` tier's rate for ``key`` (else for ``fallback``), 0.0 if it has none."""
    value = tier.get(key)
    if value is None:
        if fallback is None:
            return 0.0
        value = tier.get(fallback, 0)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return 0.0
    return float(value) if isinstance(value, (int, float)) else 0.0


def _tier_range(tier: object) -> tuple[float, float] | None:
    bounds = tier.get("range") if isinstance(tier, dict) else None
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        return None
    low, high = (as_rate(b) for b in bounds)
    return None if low is None or high is None else (low, high)


def select_tier(tiers: object, input_tokens: int) -> Entry | None:
    """Mirror litellm's ``select_tier_for_input``: all-or-nothing tiers picked by input tokens."""
    if not isinstance(tiers, list) or not tiers or input_tokens <= 0:
        return None
    ranged = sorted(
        ((bounds, tier) for tier in tiers if (bounds := _tier_range(tier)) is not None),
        key=lambda item: item[0][0],
    )
    if not ranged:
        return None
    for (low, high), tier in ranged:
        if low < input_tokens <= high:
            return tier  # type: ignore[no-any-return]
    return ranged[-1][1]  # type: ignore[no-any-return]


_WEEKDAYS = {
    **dict.fromkeys(("mon", "monday"), 1),
    **dict.fromkeys(("tue", "tues", "tuesday"), 2),
    **dict.fromkeys(("wed", "wednesday"), 3),
    **dict.fromkeys(("thu", "thur", "thurs", "thursday"), 4),
    **dict.fromkeys(("fri", "friday"), 5),
    **dict.fromkeys(("sat", "saturday"), 6),
    **dict.fromkeys(("sun", "sunday"), 7),
}


def _windows(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence):
        return tuple(w for w in value if isinstance(w, str))
    return ()


def _in_window(windows: Sequence[str], moment: datetime) -> bool:
    now = moment.time()
    for window in windows:
        try:
            start_s, end_s = window.split("-")
            start = datetime.strptime(start_s.strip(), "%H:%M").time()
            end = datetime.strptime(end_s.strip(), "%H:%M").time()
        except ValueError:
            continue
        if (start <= now < end) if start < end else (now >= start or now < end):
            return True
    return False


def _weekday_zone(name: object) -> tzinfo:
    if isinstance(name, str) and name.strip():
        try:
            from zoneinfo import ZoneInfo

            return ZoneInfo(name.strip())
        except (ValueError, KeyError, OSError):
            return UTC
    return UTC


def _weekday(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1 <= value <= 7 else None
    if isinstance(value, str):
        return _WEEKDAYS.get(value.strip().lower())
    return None


def off_peak(entry: Entry, at: datetime | None) -> Entry | None:
    """The entry's ``off_peak_pricing`` block if one of its windows is open at ``at`` (UTC)."""
    block = entry.get("off_peak_pricing")
    if not isinstance(block, dict):
        return None
    moment = at if at is not None else datetime.now(UTC)
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    flat = _windows(block.get("hours_utc"))
    if flat and _in_window(flat, moment):
        return block
    rules = block.get("windows")
    if isinstance(rules, str) or not isinstance(rules, Sequence):
        return None
    zone = _weekday_zone(block.get("weekday_timezone"))
    for rule in rules:
        if not isinstance(rule, dict):
            continue
        windows = _windows(rule.get("hours_utc"))
        days = rule.get("weekdays")
        if not windows:
            continue
        if days is not None:
            if isinstance(days, str) or not isinstance(days, Sequence):
                continue
            if moment.astimezone(zone).isoweekday() not in {_weekday(d) for d in days}:
                continue
        if _in_window(windows, moment):
            return block
    return None


@dataclass(frozen=True)
class Rates:
    """USD per token of each kind, for one call."""

    input: float
    output: float
    cache_read: float
    cache_creation: float
    reasoning: float | None = None


def with_off_peak(rates: Rates, block: Entry | None) -> Rates:
    """``rates`` with those the open ``off_peak_pricing`` block sets (None: no open window)."""
    if block is None:
        return rates

    def pick(key: str, standard: float) -> float:
        rate = as_rate(block.get(key))
        return standard if rate is None else rate

    reasoning = as_rate(block.get("output_cost_per_reasoning_token"))
    return Rates(
        input=pick("input_cost_per_token", rates.input),
        output=pick("output_cost_per_token", rates.output),
        cache_read=pick("cache_read_input_token_cost", rates.cache_read),
        cache_creation=pick("cache_creation_input_token_cost", rates.cache_creation),
        reasoning=rates.reasoning if reasoning is None else reasoning,
    )


_THRESHOLD_PREFIXES = tuple(
    f"{p}_above_"
    for p in (
        "input_cost_per_token",
        "output_cost_per_token",
        "cache_read_input_token_cost",
        "cache_creation_input_token_cost",
    )
)
_NON_STANDARD_SUFFIXES = ("_ultrafast", "_balanced", "_priority", "_flex", "_fast", "_auto")
_THRESHOLD_KEY = re.compile(r"_above_\d+k?_tokens(?:_batches)?$")


def _thresholds(entry: Entry) -> list[tuple[float, str]]:
    """The standard ``*_above_<n>[k]_tokens`` thresholds an entry prices, ascending."""
    found: dict[str, float] = {}
    for key, value in entry.items():
        if (
            value is None
            or not key.startswith(_THRESHOLD_PREFIXES)
            or "_tokens" not in key
            or key.endswith((*_NON_STANDARD_SUFFIXES, "_batches"))
            or not _THRESHOLD_KEY.search(key)
        ):
            continue
        label = key.rsplit("_above_", 1)[1].split("_tokens")[0]
        try:
            found[label] = float(label.replace("k", "")) * (1000 if "k" in label else 1)
        except ValueError:
            continue
    return sorted(((n, label) for label, n in found.items()), key=lambda item: item[0])


def generic_rates(entry: Entry, prompt: int, inclusive: bool, block: Entry | None) -> Rates:
    """Mirror litellm's ``_get_token_base_cost`` for the standard tier."""
    tier = select_tier(entry.get("tiered_pricing"), prompt)
    if tier is not None and "input_cost_per_token" in tier:
        output = (
            tier_rate(tier, "output_cost_per_token")
            if "output_cost_per_token" in tier
            else _unit(entry, "output_cost_per_token") or 0.0
        )
        rates = Rates(
            input=tier_rate(tier, "input_cost_per_token"),
            output=output,
            cache_read=tier_rate(tier, "cache_read_input_token_cost", "input_cost_per_token"),
            cache_creation=tier_rate(
                tier, "cache_creation_input_token_cost", "input_cost_per_token"
            ),
        )
        return with_off_peak(rates, block)
    input_rate = _unit(entry, "input_cost_per_token") or 0.0
    output_rate = _unit(entry, "output_cost_per_token") or 0.0
    if output_rate == 0.0:
        output_rate = _unit(entry, "output_cost_per_image_token", output_rate) or 0.0
    creation = _unit(entry, "cache_creation_input_token_cost", None)
    read = _unit(entry, "cache_read_input_token_cost", None)
    for threshold, label in _thresholds(entry):
        if prompt > threshold or (inclusive and prompt == threshold):
            input_rate = (
                _unit(entry, f"input_cost_per_token_above_{label}_tokens", input_rate) or 0.0
            )
            output_rate = (
                _unit(entry, f"output_cost_per_token_above_{label}_tokens", output_rate) or 0.0
            )
            creation = _unit(
                entry, f"cache_creation_input_token_cost_above_{label}_tokens", creation
            )
            read = _unit(entry, f"cache_read_input_token_cost_above_{label}_tokens", read)
    missing = input_rate
    if block is not None:
        off_peak_input = as_rate(block.get("input_cost_per_token"))
        missing = input_rate if off_peak_input is None else off_peak_input
    rates = Rates(
        input=input_rate,
        output=output_rate,
        cache_read=missing if read is None else read,
        cache_creation=missing if creation is None else creation,
    )
    return with_off_peak(rates, block)


def reasoning_rate(entry: Entry, prompt: int, rates: Rates, block: Entry | None) -> float:
    """Mirror litellm's ``_resolve_billed_reasoning_rate`` for the standard tier."""
    if block is not None:
        block_rate = as_rate(block.get("output_cost_per_reasoning_token"))
        if block_rate is not None:
            return block_rate
    tier = select_tier(entry.get("tiered_pricing"), prompt)
    if (
        tier is not None
        and "input_cost_per_token" in tier
        and ("output_cost_per_reasoning_token" in tier or "output_cost_per_token" in tier)
    ):
        return tier_rate(tier, "output_cost_per_reasoning_token", "output_cost_per_token")
    own = _unit(entry, "output_cost_per_reasoning_token", None)
    return rates.output if own is None else own


_FIREWORKS_CACHE_READ_RATIO = 0.5
"""Mirror litellm's ``FIREWORKS_AI_DEFAULT_CACHE_READ_RATE_RATIO``."""


def fireworks_cache_default(entry: Entry) -> Entry:
    """Fireworks cache reads at half the input rate when the table has none (as litellm)."""
    input_rate = as_rate(entry.get("input_cost_per_token"))
    if entry.get("cache_read_input_token_cost") is not None or input_rate is None:
        return entry
    read = input_rate * _FIREWORKS_CACHE_READ_RATIO
    out = {**entry, "cache_read_input_token_cost": read}
    block = entry.get("off_peak_pricing")
    if isinstance(block, dict) and "cache_read_input_token_cost" not in block:
        block_input = as_rate(block.get("input_cost_per_token"))
        out["off_peak_pricing"] = {
            **block,
            "cache_read_input_token_cost": (
                read if block_input is None else block_input * _FIREWORKS_CACHE_READ_RATIO
            ),
        }
    return out
