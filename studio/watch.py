"""Hot reload: watch perstack.toml and report every change on disk as a message.

:func:`watch_config` runs in a worker owned by the main screen. It only reads the file and posts
:class:`~studio.messages.ConfigFileChanged`; the editor pane
(:class:`~studio.widgets.editor_pane.EditorPane`) decides what to do (reload, or ask when there
are unsaved edits).

The directory is watched, not the file: an editor's atomic save replaces the file (write a temp
file, rename it over), which watchfiles reports as ``added``. Every kind of change to the file's
name is treated alike, by reading what is there now.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from textual.message_pump import MessagePump

from studio.messages import ConfigFileChanged, ConfigWatchStarted

GROUP_MS = 300
"""Longest time changes are grouped before they are reported."""
QUIET_MS = 30
"""A change is reported once the file has been quiet this long."""
IDLE_MS = 250
"""How often the watcher wakes up with nothing to report (the first wake-up says it is ready)."""


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


async def watch_config(path: Path, target: MessagePump) -> None:
    """Post a message to ``target`` each time ``path`` changes on disk, until cancelled.

    Once the watcher is listening, posts :class:`ConfigFileChanged` with the file as it is then
    (a change made before the watch began is not lost) and :class:`ConfigWatchStarted`; then
    :class:`ConfigFileChanged` with the file's new bytes (``None`` when it was deleted) after
    each burst of changes.
    """
    from watchfiles import Change, awatch

    name = path.name

    def concerns_config(change: Change, changed: str) -> bool:
        return os.path.basename(changed) == name

    started = False
    async for changes in awatch(
        path.parent,
        watch_filter=concerns_config,
        recursive=False,
        debounce=GROUP_MS,
        step=QUIET_MS,
        rust_timeout=IDLE_MS,
        yield_on_timeout=True,
    ):
        if not started:
            started = True
            # What changed between the studio reading the file and the watcher listening was
            # never seen: report the file as it is now (the pane ignores it when unchanged),
            # before saying the watch has started, so later writes come after this read.
            target.post_message(ConfigFileChanged(path, await asyncio.to_thread(_read, path)))
            target.post_message(ConfigWatchStarted(path))
        if changes:
            data = await asyncio.to_thread(_read, path)
            target.post_message(ConfigFileChanged(path, data))
