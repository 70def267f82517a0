"""Deterministic response and tool call ids."""

from __future__ import annotations

import itertools
import threading


class _Ids:
    """Deterministic ids per server, so request/response assertions are stable."""

    def __init__(self) -> None:
        self._responses = itertools.count(1)
        self._calls = itertools.count(1)
        self._lock = threading.Lock()

    def response(self) -> int:
        """The number of the next response (chatcmpl-fake-N, msg_fake-N, sig-fake-N)."""
        with self._lock:
            return next(self._responses)

    def call(self, prefix: str = "call_") -> str:
        with self._lock:
            return f"{prefix}{next(self._calls)}"
