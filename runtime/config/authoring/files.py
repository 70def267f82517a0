"""perstack.toml on disk: saving atomically, backing up, a starter file, and diffs."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path
from typing import Final

from runtime.config.authoring.checks import check_expert_key
from runtime.config.authoring.values import render_key
from runtime.config.problems import CONFIG_FILE_NAME
from runtime.errors import ConfigError
from runtime.files import atomic_write


def save_config(path: Path, text: str) -> None:
    """Write perstack.toml atomically, keeping its mode; do nothing if it is unchanged.

    The text goes to a temporary file in the same directory, is flushed to disk, then renamed
    over the file: readers (the runtime, a watcher) see the old or the new file, never a part.
    Writing the same content would only wake file watchers and change the mtime, so it is
    skipped. A symlink is followed: the file it points to is replaced, the link kept.

    Args:
        path: The file.
        text: The new content (written as UTF-8, line endings as they are).

    Raises:
        ConfigError: The file cannot be written (permissions, missing directory, full disk).
    """
    target = path.resolve() if path.is_symlink() else path
    data = text.encode("utf-8")
    try:
        if target.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    except OSError as error:
        raise ConfigError(f"Cannot read {path}: {error.strerror or error}") from error
    try:
        atomic_write(path, data, keep_mode=True)
    except OSError as error:
        raise ConfigError(f"Cannot write {path}: {error.strerror or error}") from error


def backup_config(path: Path) -> Path:
    """Copy perstack.toml to ``perstack.toml.bak``, or ``.bak.1``, ``.bak.2``... if taken.

    Args:
        path: The file to back up.

    Returns:
        The backup's path.

    Raises:
        ConfigError: The file does not exist or the copy cannot be written.
    """
    candidate = path.with_name(f"{path.name}.bak")
    number = 0
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.name}.bak.{number}")
    try:
        shutil.copy2(path, candidate)
    except OSError as error:
        raise ConfigError(f"Cannot back up {path}: {error.strerror or error}") from error
    return candidate


def minimal_config(expert_key: str = "my-expert") -> str:
    """A minimal valid perstack.toml: one expert, with comments that explain each part.

    Args:
        expert_key: The key of the expert.

    Returns:
        The text.

    Raises:
        ConfigEditError: ``expert_key`` is not a valid expert key.
    """
    key = check_expert_key(expert_key)
    header = render_key(key) if key.startswith("@") else f'"{key}"'
    return (
        "# perstack.toml: the experts of this project and how they run.\n"
        f'# Run an expert with:  perstack start {key} "what you want done"\n'
        "\n"
        '# The model (default "claude-sonnet-4-5"); its API key comes from the environment\n'
        "# or from .env.\n"
        '# model = "claude-sonnet-4-5"\n'
        "\n"
        "# An expert: the table key is its name (lowercase letters, digits, '-' and '_').\n"
        f"[experts.{header}]\n"
        "# Shown to the experts that delegate to this one.\n"
        'description = "Answers questions about this project."\n'
        "# Private to this expert: what it does and how.\n"
        'instruction = """\n'
        "You are a helpful assistant for this project.\n"
        "Read the relevant files before you answer, and keep answers short.\n"
        '"""\n'
        '# Experts it may hand work to:  delegates = ["another-expert"]\n'
    )


MINIMAL_CONFIG: Final = minimal_config()
"""The perstack.toml the studio offers to create when there is none."""


def unified_diff(old: str, new: str, *, label: str = CONFIG_FILE_NAME) -> str:
    """A unified diff from ``old`` to ``new``, empty when they are equal.

    Args:
        old: The text before (e.g. on disk).
        new: The text after (e.g. in the editor).
        label: The file name shown in the ``---``/``+++`` lines.

    Returns:
        The diff, ``git diff`` style, including "No newline at end of file" markers.
    """
    if old == new:
        return ""
    lines: list[str] = []
    for line in difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{label}",
        tofile=f"b/{label}",
    ):
        if line.endswith("\n"):
            lines.append(line)
        else:
            lines.append(line + "\n\\ No newline at end of file\n")
    return "".join(lines)
