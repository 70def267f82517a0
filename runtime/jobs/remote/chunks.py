"""How an appended file is kept in the store, and what a cache folder holds of each job.

An appended file (events, a recording) is a series of chunk objects ``<file>.chunks/<from>-<to>``
(chunks ``from`` to ``to - 1`` of the file, ten-digit numbers so keys sort in file order); a
reader covers the file from chunk 0 with the longest objects it finds (:func:`cover`). A
:class:`Manifest` records, in ``.sync/{jobId}.json``, what the cache holds of a job.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runtime.files import atomic_write
from runtime.jobs.remote.client import ObjectInfo

_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=+@-]{0,254}")


def chunk_key(file_key: str, start: int, end: int) -> str:
    """The key of chunks ``start`` to ``end - 1`` of an appended file."""
    return f"{file_key}.chunks/{start:010d}-{end:010d}"


@dataclass(frozen=True)
class Chunk:
    """One chunk object of an appended file: chunks ``start`` to ``end - 1``."""

    start: int
    end: int
    info: ObjectInfo


def cover(chunks: Sequence[Chunk]) -> list[Chunk]:
    """The objects that hold the file from chunk 0 on, longest first; stops at a gap."""
    by_start: dict[int, Chunk] = {}
    for chunk in chunks:
        best = by_start.get(chunk.start)
        if chunk.end > chunk.start and (best is None or chunk.end > best.end):
            by_start[chunk.start] = chunk
    path: list[Chunk] = []
    position = 0
    while (step := by_start.get(position)) is not None:
        path.append(step)
        position = step.end
    return path


def safe_relative(rel: str) -> bool:
    """Whether a key below a job's prefix may name a file in the cache (nothing escapes it)."""
    parts = rel.split("/")
    return len(rel) <= 1024 and all(_PART.fullmatch(part) for part in parts)


@dataclass
class Manifest:
    """What the cache holds of one job: document ETags; chunks and bytes of appended files."""

    docs: dict[str, str] = field(default_factory=dict)
    appends: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read a manifest (an empty one when missing or damaged: the next pull redoes it)."""
        try:
            data = json.loads(path.read_bytes())
            docs = {str(k): str(v) for k, v in data["docs"].items()}
            appends = {str(k): (int(v[0]), int(v[1])) for k, v in data["appends"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
            return cls()
        return cls(docs, appends)

    def save(self, path: Path) -> None:
        """Write it (not durably: after a power cut the next pull redoes what it lost)."""
        data = {"version": 1, "docs": self.docs, "appends": self.appends}
        atomic_write(path, json.dumps(data), durable=False, make_parents=True)
