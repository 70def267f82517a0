"""A server's stderr: kept off the terminal, stored as bounded ``skillStderr`` messages.

The child's stderr is a pipe we read; every chunk becomes ``skillStderr`` events of at most
``maxStderrMessageBytes`` each, and storing stops after ``maxStderrBytes`` per run with one
notice. It is echoed to our own stderr only in verbose mode, and its last lines explain a server
that failed to start.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable

from runtime.skills.mcp.results import OutputLimits

__all__ = ["StderrCapture"]

_STDERR_TAIL_LINES = 20
"""Stderr lines kept to explain a server that failed to start."""

_STDERR_TAIL_CHARS = 500
"""Characters kept of each of those lines."""


def _cut_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits in ``max_bytes``."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


class _StderrBudget:
    """Turns a server's stderr into bounded messages and stops storing it at a total."""

    def __init__(self, skill_name: str, limits: OutputLimits) -> None:
        self._skill_name = skill_name
        self._per_message = limits.stderr_message_bytes
        self._total = limits.stderr_bytes
        self._left = limits.stderr_bytes
        self.exhausted = False
        """The total was reached and the notice given: nothing more is stored."""

    def messages(self, text: str) -> list[str]:
        """The messages to store for one (stripped, non-empty) chunk of stderr."""
        if self.exhausted:
            return []
        found: list[str] = []
        for message in self._split(text):
            size = len(message.encode("utf-8"))
            if size <= self._left:
                self._left -= size
                found.append(message)
                continue
            head = _cut_utf8(message, self._left).rstrip()
            if head:
                found.append(head)
            found.append(
                f'[stderr truncated: skill "{self._skill_name}" wrote more than '
                f"{self._total:,} bytes of stderr in this run; the rest is not stored. Raise "
                f'maxStderrBytes on skill "{self._skill_name}" to keep more]'
            )
            self.exhausted = True
            break
        return found

    def _split(self, text: str) -> list[str]:
        """Split at line ends into messages of at most the per-message size; cut longer lines."""
        limit = self._per_message
        if len(text.encode("utf-8")) <= limit:
            return [text]
        found: list[str] = []
        lines: list[str] = []
        size = 0

        def flush() -> None:
            nonlocal size
            message = "\n".join(lines).strip()
            if message:
                found.append(message)
            lines.clear()
            size = 0

        for line in text.split("\n"):
            line_size = len(line.encode("utf-8"))
            if line_size > limit:
                flush()
                head = _cut_utf8(line, limit)
                rest = line_size - len(head.encode("utf-8"))
                found.append(
                    f"{head} [... {rest:,} more bytes of this line not stored; raise "
                    f'maxStderrMessageBytes on skill "{self._skill_name}" to keep more]'
                )
                continue
            if lines and size + 1 + line_size > limit:
                flush()
            size += line_size + (1 if lines else 0)
            lines.append(line)
        flush()
        return found


class StderrCapture:
    """One skill's stderr: bounded messages to store, the last lines, the verbose echo.

    Args:
        skill_name: The skill, named in the echo and the truncation notes.
        limits: The skill's limits (``stderr_bytes``, ``stderr_message_bytes``).
        store: Receives each message to store as a ``skillStderr`` event.
        echo: Also print every line to our stderr, prefixed with the skill's name.
    """

    def __init__(
        self, skill_name: str, limits: OutputLimits, store: Callable[[str], None], *, echo: bool
    ) -> None:
        self._skill_name = skill_name
        self._budget = _StderrBudget(skill_name, limits)
        self._store = store
        self._echo = echo
        self._tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)

    def feed(self, text: str) -> None:
        """Take one decoded chunk of stderr, as the pipe delivered it."""
        for line in text.splitlines():
            if line.strip():
                self._tail.append(line.rstrip()[:_STDERR_TAIL_CHARS])
        message = text.strip()
        if message:
            for stored in self._budget.messages(message):
                self._store(stored)
        if self._echo:
            for line in text.splitlines():
                print(f"[{self._skill_name}] {line}", file=sys.stderr)

    def hint(self) -> str:
        """The last lines, to append to a start failure; empty when the server wrote none."""
        if not self._tail:
            return ""
        return "\nLast lines of its stderr:\n  " + "\n  ".join(self._tail)
