"""Terminal output rules shared by the command lines and the studio's plain view.

Kept apart and import-free (no runtime module) so the commands (``runtime.cli``, ``runtime.log``,
``runtime.diff``...), which may not import each other, share one rule; the studio reaches it
through :mod:`runtime.cli`.
"""

from __future__ import annotations

import os
import re
from typing import TextIO

BIDI_AND_SEPARATORS = r"\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
_HIDDEN = re.compile(rf"[\x00-\x08\x0a-\x1f\x7f-\x9f{BIDI_AND_SEPARATORS}]")
"""What :func:`visible` escapes: every control character but tab, C1, bidi controls, U+2028/9 and
lone surrogates (which a UTF-8 stream cannot even write)."""
_HIDDEN_IN_JSON = re.compile(rf"[\x7f-\x9f{BIDI_AND_SEPARATORS}]")
"""What json.dumps (``ensure_ascii=False``) leaves raw that :func:`visible` escapes."""


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


def visible(text: str) -> str:
    r"""``text`` with the characters a terminal would act on shown as escapes, not executed.

    ESC becomes ``\x1b`` (so ``ESC[31m`` is shown as ``\x1b[31m``), any other C0 or C1 control
    ``\xNN`` (newline and carriage return too: ``\n``, ``\r``, so stored text never starts a
    line of its own), and bidi controls, U+2028/U+2029 and lone surrogates ``\uNNNN``. Tabs
    stay. A backslash is not escaped, so ``\x1b`` may also be those four characters as stored.
    """
    if _HIDDEN.search(text) is None:
        return text
    return _HIDDEN.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code == 0x0A:
        return "\\n"
    if code == 0x0D:
        return "\\r"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def json_visible(text: str) -> str:
    r"""JSON text (from ``json.dumps(..., ensure_ascii=False)``) with nothing a terminal acts on.

    What json.dumps leaves raw (DEL, C1, bidi controls, U+2028/9, lone surrogates) only ever
    occurs inside strings, where a ``\uXXXX`` escape decodes to the same character: the
    document means exactly what it meant.
    """
    if _HIDDEN_IN_JSON.search(text) is None:
        return text
    return _HIDDEN_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def counted(number: int, noun: str) -> str:
    """``1 step``, ``3 steps``, ``1,200 tokens``: a count and its noun, plural when it is not 1."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
