"""Terminal output rules shared by the command lines and the studio's plain view.

Kept apart and import-free (no runtime module) so ``runtime.cli`` and ``runtime.log``, which may
not import each other, share one rule; the studio reaches it through :mod:`runtime.cli`.
"""

from __future__ import annotations

import os
from typing import TextIO


def use_color(stream: TextIO) -> bool:
    """Colour only for a terminal, and never when ``NO_COLOR`` is set (https://no-color.org).

    Args:
        stream: Where the coloured text would go; colour needs its ``isatty()`` to be true.
    """
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
