"""Writing files so that a reader never sees half of one: the runtime's single atomic writer.

perstack.toml, perstack.lock, job and checkpoint files and the model-info cache are all read by
other processes (a watcher, a second run, ``perstack log``) while they may be rewritten, and a
crash must leave the old or the new content, never a truncated mix.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def atomic_write(
    path: Path,
    data: str | bytes,
    *,
    durable: bool = True,
    keep_mode: bool = False,
    make_parents: bool = False,
) -> None:
    """Replace ``path`` with ``data`` in one step: readers see the old or the new file.

    The data goes to a temporary file in the same directory, which is then renamed over the
    target (a rename within one file system is atomic). A symlink is followed: the file it
    points to is replaced and the link kept.

    Args:
        path: The file to write.
        data: Its new content; text is written as UTF-8 with line endings as they are.
        durable: Flush the data to disk before the rename, so a power loss cannot leave an
            empty file behind the new name. A cache that can be rebuilt may skip it.
        keep_mode: Give the new file the old one's permission bits (``0644`` when there was
            none) instead of ``mkstemp``'s ``0600``.
        make_parents: Create missing parent directories first.

    Raises:
        OSError: The directory cannot be written (permissions, missing directory, full disk).
    """
    target = path.resolve() if path.is_symlink() else path
    if make_parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    mode = None
    if keep_mode:
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
        except FileNotFoundError:
            mode = 0o644
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
