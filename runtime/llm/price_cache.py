"""The cross-process cache of price-table lookups: ``$XDG_CACHE_HOME/perstack/model-info.json``.

A lookup in litellm's 3.5 MB table takes about 10 ms; a run's first request should not wait for
it every time. The file keeps the latest lookups (a :class:`ModelInfo` each, or None for a model
the table lacks) for one version of the table, named by :func:`table_signature`; any other
version, or a damaged file, reads as empty. Writes replace the file whole and never raise.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from runtime.files import atomic_write
from runtime.llm.model_facts import ModelInfo

__all__ = ["cache_file", "from_cache", "read_cache", "table_signature", "write_cache"]

_log = logging.getLogger(__name__)

_CACHE_VERSION = "1"
"""Bumped whenever what a cached lookup holds, or how it is found, changes."""
_CACHE_MODELS = 64
"""Models kept in the cache file (the most recently added)."""


def cache_file() -> Path:
    """``$XDG_CACHE_HOME/perstack/model-info.json`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "perstack" / "model-info.json"


def table_signature(path: Path) -> str:
    """Names one version of the table file at ``path``: its path, size and mtime.

    Raises:
        OSError: The file cannot be examined.
    """
    stat = path.stat()
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{_CACHE_VERSION}"


def read_cache(table: str) -> dict[str, Any]:
    """The cached lookups made in ``table`` (a :func:`table_signature`).

    A cache written for another version of litellm's table, or unreadable, is empty.
    """
    try:
        data = json.loads(cache_file().read_text(encoding="utf-8"))
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


def from_cache(fields: Any) -> ModelInfo | None:
    """A cached lookup back as a ModelInfo (None: the model is not in the table)."""
    if fields is None:
        return None
    entry = fields.pop("entry", {})
    return ModelInfo(**fields, entry=MappingProxyType(entry))


def write_cache(
    table: str, cached: dict[str, Any], litellm_model: str, info: ModelInfo | None
) -> None:
    """Add one lookup to the cache file: written whole and renamed, and never an error."""
    fields = None
    if info is not None:
        fields = {f.name: getattr(info, f.name) for f in dataclasses.fields(info)}
    models = {**cached, litellm_model: fields}
    models = dict(list(models.items())[-_CACHE_MODELS:])
    target = cache_file()
    try:
        text = json.dumps({"table": table, "models": models}, default=_plain)
        # A cache: rebuilt when lost, so not worth an fsync on the way to the first request.
        atomic_write(target, text, durable=False, make_parents=True)
    except OSError:  # a read-only home: look the model up again next time
        _log.debug("cannot write %s", target, exc_info=True)
