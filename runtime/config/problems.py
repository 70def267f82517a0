"""What can be wrong with perstack.toml, as data and as messages that name the file, line and key.

A :class:`ConfigProblem` is why a file was rejected, a :class:`ConfigWarning` something that is
ignored or will likely not work; both print as ``perstack.toml:12 experts."writer".instruction:
field required``. :class:`ConfigFileError` carries every problem of a file at once, and
:class:`ConfigLimitError` the one limit a file was refused for unparsed.

The helpers at the end shape text for those messages: values and keys from the file are quoted,
cut short and stripped of control characters before they reach a terminal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from runtime.errors import ConfigError

CONFIG_FILE_NAME = "perstack.toml"
"""The file searched for in the working directory and its parents."""

MAX_LISTED_PROBLEMS = 50
"""Problems spelled out in a :class:`ConfigFileError` message; the rest are only counted."""


def _located(label: str, line: int | None, key: str, message: str) -> str:
    where = label if line is None else f"{label}:{line}"
    return f"{where} {key}: {message}" if key else f"{where}: {message}"


@dataclass(frozen=True)
class ConfigWarning:
    """Something in perstack.toml that is ignored or will likely not work, but is not an error.

    ``str(warning)`` reads ``perstack.toml:7 provider.envPath: unknown key (ignored; ...)``.
    """

    line: int | None
    """1-based line of the key (or of its table header); ``None`` when it cannot be located."""
    key: str
    """Dotted key as written in TOML, e.g. ``experts."writer".instrucion``."""
    message: str
    """What is wrong and what to do about it."""
    label: str = CONFIG_FILE_NAME
    """The file as shown to the user."""
    column: int | None = field(default=None, compare=False)
    """1-based column where the key (or its table header) starts, for an editor's cursor."""

    def __str__(self) -> str:
        return _located(self.label, self.line, self.key, self.message)


@dataclass(frozen=True)
class ConfigProblem:
    """One reason perstack.toml was rejected; formatted like :class:`ConfigWarning`."""

    line: int | None
    """1-based line of the key (or of its table header when the key is missing)."""
    key: str
    """Dotted key as written in TOML; empty for syntax errors."""
    message: str
    """What is wrong and, where it is obvious, how to fix it."""
    label: str = CONFIG_FILE_NAME
    """The file as shown to the user."""
    column: int | None = field(default=None, compare=False)
    """1-based column where the key (or its table header) starts; ``None`` when not known."""

    def __str__(self) -> str:
        return _located(self.label, self.line, self.key, self.message)


def line_order(item: ConfigWarning | ConfigProblem) -> tuple[int, str]:
    """Sort key: by line (unplaced first), then by key."""
    return (item.line or 0, item.key)


class ConfigFileError(ConfigError):
    """perstack.toml is not valid TOML or does not match the schema.

    The message lists every problem, one per line. The same problems are available as data for
    a UI that marks lines in an editor.

    Attributes:
        problems: Every problem found, ordered by line.
        warnings: Warnings found before validation failed (e.g. the typo behind a missing key).
    """

    def __init__(
        self,
        problems: Sequence[ConfigProblem],
        *,
        warnings: Sequence[ConfigWarning] = (),
        label: str = CONFIG_FILE_NAME,
        detail: str = "",
    ) -> None:
        self.problems = tuple(problems)
        self.warnings = tuple(warnings)
        lines = [str(problem) for problem in self.problems[:MAX_LISTED_PROBLEMS]]
        if len(self.problems) > 1:
            lines.insert(0, f"{label} has {len(self.problems):,} problems:")
        if len(self.problems) > MAX_LISTED_PROBLEMS:
            lines.append(f"... and {len(self.problems) - MAX_LISTED_PROBLEMS:,} more")
        message = "\n".join(lines)
        super().__init__(f"{message}\n{detail}" if detail else message)


class ConfigLimitError(ConfigFileError):
    """perstack.toml is refused unparsed: too large, too deeply nested or with too many keys.

    Its one problem names the limit (see :data:`runtime.config.limits.MAX_CONFIG_BYTES` and the
    ones after it).
    """


# Text for messages ---------------------------------------------------------------------------

UNPRINTABLE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""Characters a message must not pass to a terminal: controls, line and bidi separators."""

SHOWN_KEY_CHARS = 80
"""Characters of one key name shown in a message; a longer one is cut, with its length."""


def printable(text: str) -> str:
    """``text`` safe to show on a terminal: control characters become U+FFFD, one for one."""
    return UNPRINTABLE_RE.sub("\ufffd", text)


def quoted(key: str) -> str:
    """``key`` as a TOML basic string; a very long key is cut (for messages, never files)."""
    cut = f"…({len(key):,} characters)" if len(key) > SHOWN_KEY_CHARS else ""
    escaped = key[:SHOWN_KEY_CHARS].replace("\\", "\\\\").replace('"', '\\"')
    escaped = UNPRINTABLE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", escaped)
    return f'"{escaped}{cut}"'


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"
