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


def take_no_color(args: list[str]) -> list[str]:
    """``args`` without ``--no-color``; when it was there, ``NO_COLOR`` is set for this process.

    One switch for every output: ``perstack log``, ``--no-tui``, error messages, the studio
    (Textual honours ``NO_COLOR``) and the skills' processes, which inherit it. Arguments after
    ``--`` are left alone.
    """
    end = args.index("--") if "--" in args else len(args)
    if "--no-color" not in args[:end]:
        return args
    os.environ["NO_COLOR"] = "1"
    return [arg for arg in args[:end] if arg != "--no-color"] + args[end:]
