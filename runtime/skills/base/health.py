"""The base tool ``healthCheck``: the runtime is alive, with its workspace, uptime and memory."""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import time
from typing import Any

from runtime.skills.base.tool import Tool
from runtime.skills.base.workspace import MB

__all__ = ["HealthCheck"]


def _memory_mb() -> tuple[int, int]:
    """Current and peak resident set size in MB (Node's heapUsed / heapTotal stand-ins)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_bytes = peak if sys.platform == "darwin" else peak * 1024
    current_bytes = peak_bytes
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/statm", encoding="ascii") as statm:
            current_bytes = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return round(current_bytes / MB), round(peak_bytes / MB)


class HealthCheck:
    """``healthCheck`` for one base skill; its uptime counts from construction."""

    def __init__(self, root: str) -> None:
        self._root = root
        self._started = time.monotonic()

    def tools(self) -> list[Tool]:
        """The ``healthCheck`` tool."""
        return [
            Tool(
                "healthCheck",
                "Report that the runtime is alive: workspace path, uptime, memory use and "
                "process id. Touches no files.",
                (),
                self._health_check,
            )
        ]

    def _health_check(self, args: dict[str, Any]) -> dict[str, Any]:
        used, total = _memory_mb()
        return {
            "status": "ok",
            "workspace": self._root,
            "uptime": f"{int(time.monotonic() - self._started)}s",
            "memory": {"heapUsed": f"{used}MB", "heapTotal": f"{total}MB"},
            "pid": os.getpid(),
        }
