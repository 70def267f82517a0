"""Which runs of a job were made with an expert definition other than the one saved now.

Each run reports the hash of the expert definition it ran (``startRun.definitionSha256``);
:class:`SavedDefinitions` compares it with the definition in perstack.toml as saved now,
reloading the file only when its size or modification time changed. No Textual here: the run
screen asks it on a timer and redraws the runs whose mark changed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime import LoadedConfig
    from studio.view_model import JobTree, RunNode

CHECK_SECONDS = 1.0
"""How often the saved perstack.toml is looked at (a stat; it is read only when it changed)."""

FileStamp = tuple[Path, int, int]
"""What tells a file changed: its path, modification time (ns) and size."""


def file_stamp(path: Path | None) -> FileStamp | None:
    """The file's stamp; ``None`` when it cannot be read."""
    if path is None:
        return None
    try:
        info = path.stat()
    except OSError:
        return None
    return (path, info.st_mtime_ns, info.st_size)


class SavedDefinitions:
    """The expert definitions of perstack.toml as saved now, for one expert's runs.

    Args:
        expert_key: The expert the runs start from (it decides which file is loaded).
        config_path: ``--config``, or ``None`` to search as ``perstack run`` does.
        workspace: Where the runs work.
    """

    def __init__(self, expert_key: str, config_path: str | None, workspace: Path) -> None:
        self.expert_key = expert_key
        self.config_path = config_path
        self.workspace = workspace
        self.config: LoadedConfig | None = None
        """The file as last loaded; ``None`` until it loads (or while it cannot)."""
        self._stamp: FileStamp | None = None
        self._current: dict[str, str | None] = {}
        self._checked_at = 0.0
        self._judged_runs = 0

    def due(self, job: JobTree) -> bool:
        """Whether to check ``job`` now: :data:`CHECK_SECONDS` passed, or its runs changed."""
        now = time.monotonic()
        if now - self._checked_at < CHECK_SECONDS and len(job.runs) == self._judged_runs:
            return False
        self._checked_at = now
        return True

    def reload_if_changed(self) -> LoadedConfig | None:
        """Load the file again when it changed on disk; returns it when it was (re)loaded.

        While the file cannot be read or is invalid, the last good version stays: there is no
        newer definition to compare with.
        """
        stamp = file_stamp(self.config.path if self.config is not None else None)
        if stamp is not None and stamp == self._stamp:
            return None
        from runtime import PerstackError, load_config_for

        try:
            loaded = load_config_for(self.expert_key, self.config_path, self.workspace)
        except (PerstackError, OSError):
            self._stamp = None
            return None
        self.config = loaded
        self._current = {}
        self._stamp = file_stamp(loaded.path)
        return loaded

    def current(self, expert_key: str) -> str | None:
        """The hash of ``expert_key``'s definition now (``None``: it is not in the file)."""
        if expert_key not in self._current:
            from runtime import PerstackError, resolve_expert

            assert self.config is not None
            try:
                current: str | None = resolve_expert(self.config, expert_key).sha256
            except PerstackError:
                current = None  # removed from the file: every run of it is older
            self._current[expert_key] = current
        return self._current[expert_key]

    def mark_stale(self, job: JobTree) -> list[RunNode]:
        """Set each run's ``stale`` mark; returns the runs whose mark changed.

        Nothing changes before the file has loaded once.
        """
        self._judged_runs = len(job.runs)
        if self.config is None:
            return []
        changed = []
        for node in job.runs.values():
            stale = any(h != self.current(node.expert_key) for h in node.definitions)
            if stale != node.stale:
                node.stale = stale
                changed.append(node)
        return changed
