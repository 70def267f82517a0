"""The workspace as the base tools reach it: confined entries, env files refused, safe opens.

Every path a tool receives is walked by :class:`~runtime.skills.confine.Confinement`, one
component at a time from a descriptor of the workspace; :class:`Workspace` adds what the tools
share on top of that walk: the failures the model is told, the env-file refusal and opening a
regular file without following a link or blocking on a FIFO.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from runtime.skills.base.tool import Param, ToolFailure
from runtime.skills.confine import Confinement, Entry

__all__ = ["MB", "OPEN_FLAGS", "PATH_PARAM", "Workspace", "is_writable"]

MB = 1024 * 1024

# Every file a tool opens: never through a symlink, and a FIFO swapped in must not block the run.
OPEN_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

PATH_PARAM = Param("path", "string", "File path, relative to the workspace or absolute.")
"""The ``path`` parameter of the tools that act on one file."""


def is_writable(st: os.stat_result) -> bool:
    """Whether the owner-write bit is set, as Perstack checks it."""
    # Not os.access(): that would say yes to root for everything.
    return bool(st.st_mode & stat.S_IWUSR)


class Workspace:
    """The confined workspace one base skill works in.

    Args:
        workspace: The directory every path is confined to. Resolved (symlinks included) once.
        storage_dir: Where jobs and checkpoints live; denied to every tool.
        env_files: The run's env files, refused like ``.env`` and ``.env.*`` anywhere.
    """

    def __init__(
        self, workspace: Path, *, storage_dir: Path | None, env_files: Sequence[Path]
    ) -> None:
        self.fs = Confinement(workspace, storage_dir=storage_dir, env_files=env_files)
        """The confinement rules and the race-free walk."""
        self.root = self.fs.root
        """The resolved workspace directory."""

    def close(self) -> None:
        """Release the workspace descriptor."""
        self.fs.close()

    def refuse_env(self, requested: str, path: str, st: os.stat_result | None = None) -> None:
        """Fail when ``path`` (the entry ``requested`` names) is an env file.

        Raises:
            ToolFailure: It is one; env files hold API keys.
        """
        if self.fs.is_env_file(path, st):
            raise ToolFailure(
                f"Refused: {requested} holds secrets (API keys); the base skill does not read "
                "or change env files."
            )

    @contextlib.contextmanager
    def entry(
        self,
        requested: str,
        *,
        follow: bool = False,
        create: bool = False,
        missing: str | None = None,
        env_ok: bool = False,
    ) -> Iterator[Entry]:
        """The entry ``requested`` names (see :meth:`Confinement.entry`), env files refused.

        ``missing`` is the failure reported when a directory on the way does not exist;
        ``env_ok`` lets a directory named like an env file through (listing, exec's cwd).
        """
        lexical = self.fs.lexical(requested)
        if not env_ok:
            self.refuse_env(requested, lexical)
        with contextlib.ExitStack() as stack:
            try:
                entry = stack.enter_context(self.fs.entry(requested, follow=follow, create=create))
            except FileNotFoundError:
                if missing is None:
                    raise
                raise ToolFailure(missing) from None
            if not env_ok:
                self.refuse_env(requested, entry.path)
            yield entry

    @staticmethod
    def lstat(entry: Entry) -> os.stat_result | None:
        """The entry's own status (a link's, not its target's), or None when it is missing."""
        try:
            return os.stat(entry.name, dir_fd=entry.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    @classmethod
    def existing(cls, entry: Entry, missing: str) -> os.stat_result:
        """The entry's own status (a link's, not its target's); fails with ``missing``."""
        st = cls.lstat(entry)
        if st is None:
            raise ToolFailure(missing)
        return st

    def check_file(
        self, entry: Entry, requested: str, st: os.stat_result, *, writable: bool = False
    ) -> None:
        """Refuse anything but a regular file (a symlink, a directory, a FIFO) and env files."""
        if stat.S_ISLNK(st.st_mode):
            self.fs.check_link(entry)
            raise ToolFailure("Operation denied: target is a symbolic link")
        if stat.S_ISDIR(st.st_mode):
            raise ToolFailure(f"Path {requested} is a directory.")
        if not stat.S_ISREG(st.st_mode):
            raise ToolFailure(f"Path {requested} is not a regular file.")
        self.refuse_env(requested, entry.path, st)
        if writable and not is_writable(st):
            raise ToolFailure(f"File {requested} is not writable")

    def open_file(self, entry: Entry, requested: str, flags: int) -> tuple[int, os.stat_result]:
        """Open the regular file ``entry`` names, checked on the open descriptor itself.

        O_NOFOLLOW and the check after opening close the window a check before opening would
        leave; O_NONBLOCK keeps a FIFO swapped in from blocking the run.

        Raises:
            FileNotFoundError: It does not exist (and ``flags`` does not create it).
        """
        try:
            fd = os.open(entry.name, flags | OPEN_FLAGS, 0o666, dir_fd=entry.dir_fd)
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.EMLINK):
                st = self.lstat(entry)
                if st is not None:
                    self.check_file(entry, requested, st)
            if error.errno == errno.EISDIR:
                raise ToolFailure(f"Path {requested} is a directory.") from None
            if error.errno == errno.ENXIO:
                raise ToolFailure(f"Path {requested} is not a regular file.") from None
            raise
        try:
            st = os.fstat(fd)
            self.check_file(entry, requested, st)
        except BaseException:
            os.close(fd)
            raise
        return fd, st

    def open_existing(self, entry: Entry, requested: str, flags: int) -> tuple[int, os.stat_result]:
        """:meth:`open_file` for a file that must exist: fails with "File ... does not exist."."""
        try:
            return self.open_file(entry, requested, flags)
        except FileNotFoundError:
            raise ToolFailure(f"File {requested} does not exist.") from None

    def directory(self, requested: str) -> str:
        """The real path of the directory ``requested`` names (exec's working directory)."""
        missing = f"Directory {requested} does not exist."
        with self.entry(requested, follow=True, missing=missing, env_ok=True) as entry:
            st = self.lstat(entry)
            if st is None or not stat.S_ISDIR(st.st_mode):
                raise ToolFailure(missing)
            return entry.path
