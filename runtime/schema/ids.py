"""Collision-resistant ids shaped like Perstack's cuid2 ids (lowercase, letter first, 24 chars)."""

from __future__ import annotations

import os
import string

_ALPHABET = string.ascii_lowercase + string.digits
_LETTERS = string.ascii_lowercase


def new_id(length: int = 24) -> str:
    """Return a new random id: a lowercase letter followed by lowercase letters and digits."""
    # One urandom call per id: ids are made for every message part, so this is a hot path.
    raw = os.urandom(length)
    return _LETTERS[raw[0] % 26] + "".join(_ALPHABET[b % 36] for b in raw[1:])
