"""Facts litellm ships as data files, read without importing litellm (a 3–4 s, 200 MB import).

litellm's package directory holds its price table, the list of providers it serves and the
OpenAI-compatible providers it knows by base URL. The native clients, the unknown-provider check
and cost reporting read these files; only a call that really goes through litellm imports it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["chat_providers", "openai_like_providers", "package_dir"]


@functools.cache
def package_dir() -> Path | None:
    """Litellm's package directory, found without running its ``__init__``; None if absent."""
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _read_json(*parts: str) -> Any:
    root = package_dir()
    if root is None:
        return None
    try:
        return json.loads(root.joinpath(*parts).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@functools.cache
def chat_providers() -> frozenset[str]:
    """The provider names litellm serves chat completions for (empty if litellm is absent)."""
    data = _read_json("provider_endpoints_support_backup.json")
    providers = data.get("providers") if isinstance(data, dict) else None
    names: set[str] = set()
    if isinstance(providers, dict):
        names.update(
            name
            for name, entry in providers.items()
            if isinstance(entry, dict) and (entry.get("endpoints") or {}).get("chat_completions")
        )
    names.update(openai_like_providers())
    return frozenset(names)


@functools.cache
def openai_like_providers() -> Mapping[str, tuple[str, str | None]]:
    """OpenAI-compatible providers litellm knows by base URL: name → (base URL, key variable)."""
    data = _read_json("llms", "openai_like", "providers.json")
    out: dict[str, tuple[str, str | None]] = {}
    if isinstance(data, dict):
        for name, entry in data.items():
            if isinstance(entry, dict) and isinstance(entry.get("base_url"), str):
                key_env = entry.get("api_key_env")
                out[name] = (entry["base_url"], key_env if isinstance(key_env, str) else None)
    return out
