"""Figures on one line: durations, costs, ``A → B`` changes. No runtime type is needed here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PREVIEW = 72
"""Characters of a compared value shown in text output (around the first difference)."""


def format_duration(ms: int | None) -> str:
    """``850 ms``, ``2.4 s``, ``3 m 05 s``; ``?`` when unknown."""
    if ms is None:
        return "?"
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes} m {seconds:02d} s"


def format_cost(cost: float | None) -> str:
    """``$0.0123``, or ``cost n/a`` when no price is known."""
    return f"${cost:.4f}" if cost is not None else "cost n/a"


def change(a: Any, b: Any, show: Callable[[Any], str]) -> str:
    """``A → B``, with the signed change for numbers (``15 → 17 (+2)``)."""
    text = f"{show(a)} → {show(b)}"
    if isinstance(a, int | float) and isinstance(b, int | float) and a != b:
        delta = b - a
        sign = "+" if delta > 0 else "-"
        text += f" ({sign}{show(abs(delta))})"
    return text


def flat(text: str) -> str:
    r"""Text on one line: newlines and carriage returns shown as ``\n`` and ``\r``."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def metric(a: Any, b: Any, show: Callable[[Any], str], unit: str) -> str:
    """One figure of both sides: ``15 tok`` when equal, else ``15 → 17 tok (+2)``."""
    if a == b or (isinstance(a, float) and isinstance(b, float) and same_cost(a, b)):
        return f"{show(a)}{unit}"
    if a is None or b is None:
        return f"{show(a)} → {show(b)}{unit}"
    return change(a, b, show).replace(" (", f"{unit} (", 1)


def thousands(number: Any) -> str:
    """``12,345`` for a whole number."""
    return f"{number:,}" if isinstance(number, int) else str(number)


def same_cost(a: float | None, b: float | None) -> bool:
    """Two costs equal up to float noise (None only equals None)."""
    if a is None or b is None:
        return a is b
    return abs(a - b) < 1e-9
