"""Collision-resistant ids in the shape of Perstack's cuid2 ids (lowercase, letter first, 24 chars)."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits


def new_id(length: int = 24) -> str:
    """Return a new random id: a lowercase letter followed by lowercase letters and digits."""
    return secrets.choice(string.ascii_lowercase) + "".join(
        secrets.choice(_ALPHABET) for _ in range(length - 1)
    )
