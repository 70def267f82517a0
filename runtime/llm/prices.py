r"""Model facts (prices, context window, reasoning support) from litellm's price table.

litellm ships its price table as a data file in its package directory
(``model_prices_and_context_window_backup.json``, about 3.5 MB). This module reads that file
*without importing litellm* (a 3–4 s, 200 MB import): the package directory comes from
:func:`runtime.llm.litellm_data.package_dir`, which does not run litellm's ``__init__``.

Memory and time matter on the run path, so the table is never loaded whole. The file is pretty
printed, one model per top-level key (``\\n    "<model>": {``). A lookup reads the bytes once,
finds every place the exact quoted key is used as a key, checks that each one begins a top-level
entry (on a line of its own, after the previous entry's ``},`` at the top-level indentation) and
decodes only that entry with :meth:`json.JSONDecoder.raw_decode`. If the key is also used
anywhere else (a nested key with that name, at any depth), or the file is laid out otherwise
(compact, or with ``aliases`` lists), the top-level entries are scanned one by one instead: a
layout change costs time, never correctness. Results are cached per model string.

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

import dataclasses
import functools
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from types import MappingProxyType
from typing import Any

from runtime.files import atomic_write
from runtime.llm.litellm_data import package_dir

__all__ = ["ModelInfo", "model_info"]

_log = logging.getLogger(__name__)

_TABLE_FILE = "model_prices_and_context_window_backup.json"
_RULES_KEY = "fallback_generalizations"
"""A top-level block of the table that holds rules, not a model (litellm removes it)."""

Entry = Mapping[str, Any]


# --------------------------------------------------------------------------------------------
# Finding and reading the table


def _table_path() -> Path | None:
    """The price table inside litellm's package directory, found without importing litellm."""
    root = package_dir()
    if root is None:
        return None
    path = root / _TABLE_FILE
    return path if path.is_file() else None


_WS_BYTES = frozenset(b" \t\r\n")


def _skip(buffer: bytes | str, pos: int) -> int:
    """The first offset at or after ``pos`` that is not JSON whitespace."""
    end = len(buffer)
    if isinstance(buffer, bytes):
        while pos < end and buffer[pos] in _WS_BYTES:
            pos += 1
    else:
        while pos < end and buffer[pos] in " \t\r\n":
            pos += 1
    return pos


def _skip_back(buffer: bytes, end: int) -> int:
    """The offset just after the last non-whitespace byte before ``end`` (0 if none)."""
    while end > 0 and buffer[end - 1] in _WS_BYTES:
        end -= 1
    return end


_LAYOUT = re.compile(rb"\A(?:\xef\xbb\xbf)?[ \t\r\n]*\{[ \t\r]*\n([ \t]*)\"")
"""An indented table: ``{`` then a newline, then the first key at the top-level indentation."""


class _Table:
    """Top-level entries of the price table, by exact key and case-insensitively.

    Subclasses differ in how they find an entry; alias handling is shared (see :func:`_served`).
    Answers are memoised for the life of the object (one lookup).
    """

    def __init__(self) -> None:
        self._raw_memo: dict[str, Entry | None] = {}
        self._ci_memo: dict[str, list[str]] = {}

    def raw(self, name: str) -> Entry | None:
        """The top-level value stored under exactly ``name`` (the last one if repeated)."""
        if name not in self._raw_memo:
            self._raw_memo[name] = self._raw(name)
        return self._raw_memo[name]

    def names_ci(self, name: str) -> list[str]:
        """Top-level keys equal to ``name`` ignoring case, in file order."""
        if name not in self._ci_memo:
            self._ci_memo[name] = self._names_ci(name)
        return self._ci_memo[name]

    def list_alias_owner(self, name: str) -> str | None:
        """The entry whose ``aliases`` list serves ``name`` (only the scanned table has these)."""
        return None

    def _raw(self, name: str) -> Entry | None:
        raise NotImplementedError

    def _names_ci(self, name: str) -> list[str]:
        raise NotImplementedError


class _Anomaly(Exception):
    """The fast search cannot vouch for its answer; scan the table instead."""


class _IndexedTable(_Table):
    r"""Finds entries by searching the pretty-printed bytes for ``\\n<indent>"<key>":``."""

    def __init__(self, data: bytes, indent: bytes) -> None:
        super().__init__()
        self._data = data
        self._line_start = b"\n" + indent
        self._decoder = json.JSONDecoder()

    def _key_starts(self, matches: Iterator[int], length: int) -> list[int]:
        """The matches (of a quoted name ``length`` bytes long) used as a top-level key.

        Raises _Anomaly when the name is a key anywhere else: the fast search cannot tell a
        misplaced top-level entry from a nested key, so the caller scans the table instead.
        """
        data = self._data
        found: list[int] = []
        for start in matches:
            after = _skip(data, start + length)
            if data[after : after + 1] == b":":
                if not self._is_top_level(data, start):
                    raise _Anomaly(data[start : start + length])
                found.append(start)
        return found

    def _finds(self, quoted: bytes) -> Iterator[int]:
        start = self._data.find(quoted)
        while start >= 0:
            yield start
            start = self._data.find(quoted, start + 1)

    def _is_top_level(self, haystack: bytes, start: int) -> bool:
        """Whether the key at ``start`` begins a top-level entry.

        It must open its own line, and the entry before it must close on a line of its own at
        the top-level indentation (``},``), or be the object's opening ``{``. The key's own
        indentation may be off (the shipped table has such a line); a nested key would need the
        line before it to be misplaced as well.
        """
        line = haystack.rfind(b"\n", 0, start)
        if line < 0 or haystack[line + 1 : start].strip(b" \t\r"):
            return False
        before = _skip_back(haystack, line)
        if haystack[before - 1 : before] == b"{":  # the first entry: only a BOM may precede
            head = _skip_back(haystack, before - 1)
            return head == 0 or (head == 3 and haystack[:3] == b"\xef\xbb\xbf")
        if haystack[before - 1 : before] != b",":
            return False
        close = _skip_back(haystack, before - 1) - 1
        return (
            close >= 0
            and haystack[close : close + 1] == b"}"
            and haystack[close - len(self._line_start) : close] == self._line_start
        )

    def _value_at(self, start: int, length: int) -> Entry | None:
        """The value of the top-level key whose quoted form is ``data[start:start + length]``."""
        data = self._data
        begin = _skip(data, data.index(b":", _skip(data, start + length)) + 1)
        if data[begin : begin + 1] != b"{":
            return None
        # Decode just this entry: try up to the next top-level-looking line, then further out.
        end = data.find(self._line_start + b'"', begin)
        while True:
            chunk = data[begin:] if end < 0 else data[begin:end]
            try:
                value, _ = self._decoder.raw_decode(chunk.decode("utf-8"))
            except ValueError:  # cut short (UnicodeDecodeError is a ValueError too)
                if end < 0:
                    raise
                end = data.find(self._line_start + b'"', end + 1)
                continue
            return value if isinstance(value, dict) else None

    @staticmethod
    def _quoted(name: str) -> list[bytes]:
        forms = {json.dumps(name).encode("ascii")}
        if not name.isascii():
            forms.add(json.dumps(name, ensure_ascii=False).encode("utf-8"))
        return sorted(forms)

    def _raw(self, name: str) -> Entry | None:
        found = [
            (s, len(q))
            for q in self._quoted(name)
            for s in self._key_starts(self._finds(q), len(q))
        ]
        if not found:
            return None
        return self._value_at(*max(found))

    def _names_ci(self, name: str) -> list[str]:
        if not name.isascii():
            raise _Anomaly(name)  # a bytes pattern only folds ASCII letters
        quoted = json.dumps(name).encode("ascii")
        pattern = re.compile(re.escape(quoted), re.IGNORECASE)
        starts = self._key_starts((m.start() for m in pattern.finditer(self._data)), len(quoted))
        return [json.loads(self._data[start : start + len(quoted)]) for start in starts]


class _ScannedTable(_Table):
    """Walks every top-level entry once: exact for any layout, slower than the search.

    Each value is decoded to find where it ends and then dropped; only the text and each
    entry's span are kept, so this too stays far from a whole-table ``json.load``.
    """

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._text = text = data.decode("utf-8-sig")
        decoder = json.JSONDecoder()
        self._spans: dict[str, tuple[int, int]] = {}
        pointers: dict[str, str] = {}
        lists: dict[str, list[object]] = {}
        pos = _skip(text, 0)
        if text[pos : pos + 1] != "{":
            raise ValueError("the price table is not a JSON object")
        pos = _skip(text, pos + 1)
        while text[pos : pos + 1] != "}":
            key, pos = decoder.raw_decode(text, pos)
            pos = _skip(text, pos)
            if not isinstance(key, str) or text[pos : pos + 1] != ":":
                raise ValueError("malformed price table")
            start = _skip(text, pos + 1)
            value, pos = decoder.raw_decode(text, start)
            # A repeated key keeps its last value (in its first place), as in json.loads.
            entry = value if isinstance(value, dict) else {}
            _put(self._spans, key, (start, pos) if isinstance(value, dict) else None)
            target = entry.get("alias_of")
            _put(pointers, key, target if isinstance(target, str) else None)
            _put(lists, key, entry.get("aliases"))
            pos = _skip(text, pos)
            if text[pos : pos + 1] == ",":
                pos = _skip(text, pos + 1)
            elif text[pos : pos + 1] != "}":
                raise ValueError("malformed price table")
        self._list_aliases = _list_alias_owners(self._spans, pointers, lists)
        self._lower: dict[str, list[str]] = {}
        for name in [*self._spans, *self._list_aliases]:
            self._lower.setdefault(name.lower(), []).append(name)

    def _raw(self, name: str) -> Entry | None:
        span = self._spans.get(name)
        if span is None:
            return None
        value: Entry = json.loads(self._text[span[0] : span[1]])
        return value

    def _names_ci(self, name: str) -> list[str]:
        return self._lower.get(name.lower(), [])

    def list_alias_owner(self, name: str) -> str | None:
        return self._list_aliases.get(name)


def _put(index: dict[str, Any], key: str, value: object) -> None:
    if value is None:
        index.pop(key, None)
    else:
        index[key] = value


def _list_alias_owners(
    names: Mapping[str, object], pointers: Mapping[str, str], lists: Mapping[str, list[object]]
) -> dict[str, str]:
    """``aliases`` lists → {alias: owner}, resolving conflicts the way litellm does."""
    owners: dict[str, str] = {}
    for owner, aliases in lists.items():
        if owner in pointers or not isinstance(aliases, list):
            continue
        for alias in aliases:
            if isinstance(alias, str) and (alias not in names or alias in pointers):
                owners.setdefault(alias, owner)
    return owners


def _open_table(data: bytes) -> _Table:
    layout = _LAYOUT.match(data)
    if layout is None or (b'"aliases"' in data and re.search(rb'"aliases"[ \t\r\n]*:', data)):
        return _ScannedTable(data)
    return _IndexedTable(data, layout.group(1))


def _served(table: _Table, name: str) -> Entry | None:
    """The entry litellm serves under ``name`` once it has expanded aliases, or None.

    An ``alias_of`` row serves its target (and disappears if the target is missing or is itself
    an alias); a name in an entry's ``aliases`` list serves that entry.
    """
    if name == _RULES_KEY:
        return None
    owner = table.list_alias_owner(name)
    if owner is not None:
        raw = table.raw(owner)
    else:
        raw = table.raw(name)
        target = raw.get("alias_of") if raw is not None else None
        if isinstance(target, str):
            raw = table.raw(target)
            if raw is not None and isinstance(raw.get("alias_of"), str):
                raw = None
    if raw is None:
        return None
    return {k: v for k, v in raw.items() if k != "aliases"}


def _resolve(table: _Table, name: str) -> tuple[str, Entry] | None:
    """Mirror litellm's ``get_model_cost_key``: the exact key, else the case-insensitive one."""
    entry = _served(table, name)
    if entry is not None:
        return name, entry
    for key in reversed(table.names_ci(name)):
        entry = _served(table, key)
        if entry is not None:
            return key, entry
    return None


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


def _fill_rules(table: _Table) -> list[_FillRule]:
    block = table.raw(_RULES_KEY)
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


def _fill_missing(table: _Table, key: str, entry: Entry) -> Entry:
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
# Rates


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


def _as_rate(value: object) -> float | None:
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


def _tier_rate(tier: Entry, key: str, fallback: str | None = None) -> float:
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
    low, high = (_as_rate(b) for b in bounds)
    return None if low is None or high is None else (low, high)


def _select_tier(tiers: object, input_tokens: int) -> Entry | None:
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


def _off_peak(entry: Entry, at: datetime | None) -> Entry | None:
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
class _Rates:
    input: float
    output: float
    cache_read: float
    cache_creation: float
    reasoning: float | None = None


def _with_off_peak(rates: _Rates, block: Entry | None) -> _Rates:
    if block is None:
        return rates

    def pick(key: str, standard: float) -> float:
        rate = _as_rate(block.get(key))
        return standard if rate is None else rate

    reasoning = _as_rate(block.get("output_cost_per_reasoning_token"))
    return _Rates(
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


def _generic_rates(entry: Entry, prompt: int, inclusive: bool, block: Entry | None) -> _Rates:
    """Mirror litellm's ``_get_token_base_cost`` for the standard tier."""
    tier = _select_tier(entry.get("tiered_pricing"), prompt)
    if tier is not None and "input_cost_per_token" in tier:
        output = (
            _tier_rate(tier, "output_cost_per_token")
            if "output_cost_per_token" in tier
            else _unit(entry, "output_cost_per_token") or 0.0
        )
        rates = _Rates(
            input=_tier_rate(tier, "input_cost_per_token"),
            output=output,
            cache_read=_tier_rate(tier, "cache_read_input_token_cost", "input_cost_per_token"),
            cache_creation=_tier_rate(
                tier, "cache_creation_input_token_cost", "input_cost_per_token"
            ),
        )
        return _with_off_peak(rates, block)
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
        off_peak_input = _as_rate(block.get("input_cost_per_token"))
        missing = input_rate if off_peak_input is None else off_peak_input
    rates = _Rates(
        input=input_rate,
        output=output_rate,
        cache_read=missing if read is None else read,
        cache_creation=missing if creation is None else creation,
    )
    return _with_off_peak(rates, block)


def _reasoning_rate(entry: Entry, prompt: int, rates: _Rates, block: Entry | None) -> float:
    """Mirror litellm's ``_resolve_billed_reasoning_rate`` for the standard tier."""
    if block is not None:
        off_peak = _as_rate(block.get("output_cost_per_reasoning_token"))
        if off_peak is not None:
            return off_peak
    tier = _select_tier(entry.get("tiered_pricing"), prompt)
    if (
        tier is not None
        and "input_cost_per_token" in tier
        and ("output_cost_per_reasoning_token" in tier or "output_cost_per_token" in tier)
    ):
        return _tier_rate(tier, "output_cost_per_reasoning_token", "output_cost_per_token")
    own = _unit(entry, "output_cost_per_reasoning_token", None)
    return rates.output if own is None else own


_FIREWORKS_CACHE_READ_RATIO = 0.5
"""Mirror litellm's ``FIREWORKS_AI_DEFAULT_CACHE_READ_RATE_RATIO``."""

_DASHSCOPE_FAMILY = frozenset({"dashscope", "qwencloud", "qwen_ai_platform"})
_PER_SECOND_KEYS = ("cost_per_second", "input_cost_per_second", "output_cost_per_second")


def _fireworks_cache_default(entry: Entry) -> Entry:
    """Fireworks cache reads at half the input rate when the table has none (as litellm)."""
    input_rate = _as_rate(entry.get("input_cost_per_token"))
    if entry.get("cache_read_input_token_cost") is not None or input_rate is None:
        return entry
    read = input_rate * _FIREWORKS_CACHE_READ_RATIO
    out = {**entry, "cache_read_input_token_cost": read}
    block = entry.get("off_peak_pricing")
    if isinstance(block, dict) and "cache_read_input_token_cost" not in block:
        block_input = _as_rate(block.get("input_cost_per_token"))
        out["off_peak_pricing"] = {
            **block,
            "cache_read_input_token_cost": (
                read if block_input is None else block_input * _FIREWORKS_CACHE_READ_RATIO
            ),
        }
    return out


# --------------------------------------------------------------------------------------------
# Public API


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
            entry = _fireworks_cache_default(entry)
        block = _off_peak(entry, at)
        rates = _generic_rates(entry, prompt, provider == "xai", block)
        text = max(prompt - cached - creation, 0)
        prompt_cost = float(text) * rates.input
        prompt_cost += float(cached) * rates.cache_read
        if creation:
            prompt_cost += creation * rates.cache_creation
        if reasoning and provider != "xai":  # xAI bills reasoning as ordinary output
            completion_cost = float(max(0, completion - reasoning)) * rates.output
            completion_cost += float(reasoning) * _reasoning_rate(entry, prompt, rates, block)
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
    flat_rates = _Rates(
        input=float(entry.get("input_cost_per_token") or 0.0),
        output=float(entry.get("output_cost_per_token") or 0.0),
        cache_read=flat("cache_read_input_token_cost"),
        cache_creation=flat("cache_creation_input_token_cost"),
        reasoning=None if own_reasoning is None else float(own_reasoning),
    )
    tier = _select_tier(entry.get("tiered_pricing"), text + cached + creation)
    if tier is None:
        rates = flat_rates
    else:
        has_output = "output_cost_per_token" in tier
        rates = _Rates(
            input=_tier_rate(tier, "input_cost_per_token"),
            output=_tier_rate(tier, "output_cost_per_token") if has_output else flat_rates.output,
            cache_read=_tier_rate(tier, "cache_read_input_token_cost", "input_cost_per_token"),
            cache_creation=_tier_rate(
                tier, "cache_creation_input_token_cost", "input_cost_per_token"
            ),
            reasoning=(
                _tier_rate(tier, "output_cost_per_reasoning_token")
                if "output_cost_per_reasoning_token" in tier
                else None
                if has_output
                else flat_rates.reasoning
            ),
        )
    rates = _with_off_peak(rates, _off_peak(entry, at))
    reasoning_rate = rates.output if rates.reasoning is None else rates.reasoning
    prompt_cost = (
        (text * rates.input) + (cached * rates.cache_read) + (creation * rates.cache_creation)
    )
    return prompt_cost + ((visible * rates.output) + (reasoning * reasoning_rate))


def _lookup(data: bytes, litellm_model: str) -> ModelInfo | None:
    """Look ``litellm_model`` up in the table ``data`` (the file's bytes)."""
    try:
        return _lookup_in(_open_table(data), litellm_model)
    except _Anomaly:
        return _lookup_in(_ScannedTable(data), litellm_model)


def _lookup_in(table: _Table, litellm_model: str) -> ModelInfo | None:
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
        found = _resolve(table, name)
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


def _info(table: _Table, key: str, entry: Entry, provider: str, model: str) -> ModelInfo:
    reasoning = entry.get("supports_reasoning")
    if reasoning is None:
        # litellm's supports_factory falls back on the bare model's own entry.
        bare = _resolve(table, model)
        reasoning = bare[1].get("supports_reasoning") if bare is not None else None
    listed = entry.get("litellm_provider")
    return ModelInfo(
        key=key,
        provider=provider or (listed if isinstance(listed, str) else ""),
        litellm_provider=listed if isinstance(listed, str) else None,
        max_input_tokens=_count(entry.get("max_input_tokens")),
        max_output_tokens=_count(entry.get("max_output_tokens")),
        supports_reasoning=reasoning is True,
        input_cost_per_token=_as_rate(entry.get("input_cost_per_token")),
        output_cost_per_token=_as_rate(entry.get("output_cost_per_token")),
        cache_read_input_token_cost=_as_rate(entry.get("cache_read_input_token_cost")),
        cache_creation_input_token_cost=_as_rate(entry.get("cache_creation_input_token_cost")),
        output_cost_per_reasoning_token=_as_rate(entry.get("output_cost_per_reasoning_token")),
        entry=MappingProxyType(dict(entry)),
    )


@functools.lru_cache(maxsize=64)
def model_info(litellm_model: str) -> ModelInfo | None:
    """Facts about ``litellm_model`` (``openai/gpt-4.1``) from litellm's price table.

    Returns None if the model is not in the table, or litellm (or its table) is not installed.
    Never imports litellm and never raises; results are cached per model string, in the process
    and across processes (:func:`_cache_file`), so a run's first request does not wait for a
    search of the 3.5 MB table (about 10 ms) every time.
    """
    path = _table_path()
    if path is None:
        return None
    try:
        stat = path.stat()
        table = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{_CACHE_VERSION}"
        cached = _read_cache(table)
        if litellm_model in cached:
            try:
                return _from_cache(cached[litellm_model])
            except (TypeError, ValueError, AttributeError):
                pass  # a damaged entry: look the model up again
        info = _lookup(path.read_bytes(), litellm_model)
        _write_cache(table, cached, litellm_model, info)
        return info
    except Exception:
        _log.debug("price lookup failed for %s", litellm_model, exc_info=True)
        return None


_CACHE_VERSION = "1"
"""Bumped whenever what a cached lookup holds, or how it is found, changes."""
_CACHE_MODELS = 64
"""Models kept in the cache file (the most recently added)."""


def _cache_file() -> Path:
    """``$XDG_CACHE_HOME/perstack/model-info.json`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "perstack" / "model-info.json"


def _read_cache(table: str) -> dict[str, Any]:
    """The cached lookups made in ``table`` (the table file's path, size and mtime).

    A cache written for another version of litellm's table, or unreadable, is empty.
    """
    try:
        data = json.loads(_cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("table") != table:
        return {}
    models = data.get("models")
    return models if isinstance(models, dict) else {}


def _plain(value: object) -> object:
    """JSON for the read-only mappings a table entry is kept in."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _from_cache(fields: Any) -> ModelInfo | None:
    """A cached lookup back as a ModelInfo (None: the model is not in the table)."""
    if fields is None:
        return None
    entry = fields.pop("entry", {})
    return ModelInfo(**fields, entry=MappingProxyType(entry))


def _write_cache(
    table: str, cached: dict[str, Any], litellm_model: str, info: ModelInfo | None
) -> None:
    """Add one lookup to the cache file: written whole and renamed, and never an error."""
    fields = None
    if info is not None:
        fields = {f.name: getattr(info, f.name) for f in dataclasses.fields(info)}
    models = {**cached, litellm_model: fields}
    models = dict(list(models.items())[-_CACHE_MODELS:])
    target = _cache_file()
    try:
        text = json.dumps({"table": table, "models": models}, default=_plain)
        # A cache: rebuilt when lost, so not worth an fsync on the way to the first request.
        atomic_write(target, text, durable=False, make_parents=True)
    except OSError:  # a read-only home: look the model up again next time
        _log.debug("cannot write %s", target, exc_info=True)
