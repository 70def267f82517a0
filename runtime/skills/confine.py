"""Workspace rules for file tools, enforced without races: confinement, storage and env files.

Checking a path and then opening it leaves a window: between ``realpath`` and ``open`` another
process in the workspace (a sandboxed ``exec`` can be one) may swap a directory for a symlink to
anywhere, and the kernel follows it. So nothing here hands the kernel a path with more than one
component. :meth:`Confinement.entry` starts from a descriptor of the workspace directory and opens
one directory at a time with ``O_NOFOLLOW``; the tool then acts on the last name relative to the
last directory's descriptor (``dir_fd=``, ``O_NOFOLLOW``, ``follow_symlinks=False``). A swap can
change which entry a tool sees, never where it is: every descriptor on the way was reached from
the workspace without following a link.

Symlinks met on the way are resolved here, not by the kernel: the link is read, its target joined
to the (real) directory holding it and normalised, and the walk starts again from the workspace
with that path. So a link inside the workspace pointing inside keeps working, one pointing out
(or into storage) is refused, and ``..`` never reaches the kernel. Whether the last component is
followed is the caller's choice (content tools refuse a symlink there; listing and
``getFileInfo`` follow it).

Env files (``.env``, ``.env.*`` and the run's ``envPath`` files) hold the run's API keys: the
file tools refuse them by name, by resolved path and, for a file they opened, by inode (a hard
link under another name is still the same file).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runtime.config.env import is_env_file_name

__all__ = [
    "LINK_OUTSIDE",
    "STORAGE_DENIED",
    "Confinement",
    "Denied",
    "Entry",
    "copy_entry",
]

LINK_OUTSIDE = "Access denied - symlink target outside allowed directories"
STORAGE_DENIED = "Access denied - perstack directory is not allowed"

# Linux's MAXSYMLINKS: a loop of links fails instead of spinning.
_MAX_LINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# What opening a symlink with O_NOFOLLOW reports: Linux says ENOTDIR when O_DIRECTORY is also
# given, ELOOP otherwise; FreeBSD says EMLINK.
_LINK_ERRNOS = frozenset({errno.ELOOP, errno.EMLINK, errno.ENOTDIR})


class Denied(Exception):
    """A path the workspace rules forbid; ``message`` is what the model is told."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Entry:
    """One directory entry reached inside the workspace, open for the ``with`` block only.

    Attributes:
        dir_fd: Descriptor of the directory holding the entry.
        name: The entry's name in ``dir_fd``; ``"."`` when the entry is that directory itself
            (the workspace root, or a link that resolved to a directory).
        path: Absolute path of the entry: the real path of ``dir_fd`` joined with ``name``.
    """

    dir_fd: int
    name: str
    path: str


class Confinement:
    """The rules of one workspace, applied to paths the model sends.

    Args:
        workspace: The directory every path is confined to; resolved (symlinks included) once.
        storage_dir: The job storage directory; denied with everything under it, as is
            ``workspace/perstack`` in any case.
        env_files: The run's env files (``envPath``); refused besides ``.env`` and ``.env.*``.

    The workspace directory is opened on first use and kept open (closed when this object is
    garbage collected), so the walk always starts from the same directory.
    """

    def __init__(
        self,
        workspace: Path | str,
        *,
        storage_dir: Path | str | None = None,
        env_files: Iterable[Path | str] = (),
    ) -> None:
        self.root = os.path.realpath(os.path.expanduser(workspace))
        self._prefix = self.root if self.root.endswith(os.sep) else self.root + os.sep
        denied = [os.path.join(self.root, "perstack")]
        if storage_dir is not None:
            storage = os.path.join(self.root, os.path.expanduser(storage_dir))
            denied += [os.path.normpath(storage), os.path.realpath(storage)]
        # Compared case-folded: on a case-insensitive file system PERSTACK/ is the same directory.
        # Only directories strictly inside the workspace matter; the rest is unreachable anyway.
        self._denied = sorted(
            {d.casefold() for d in denied if d.startswith(self._prefix) and d != self.root}
        )
        self._env_paths: set[str] = set()
        self._env_inodes: set[tuple[int, int]] = set()
        for env_file in env_files:
            path = os.path.expanduser(env_file)
            self._env_paths.add(os.path.realpath(path).casefold())
            with contextlib.suppress(OSError):
                st = os.stat(path)
                self._env_inodes.add((st.st_dev, st.st_ino))
        self._fd: int | None = None
        self._finalizer: Callable[[], object] | None = None

    # Rules on paths ---------------------------------------------------------------------------

    def inside(self, path: str) -> bool:
        """Whether the absolute, normalised ``path`` is the workspace or inside it."""
        return path == self.root or path.startswith(self._prefix)

    def is_denied(self, path: str) -> bool:
        """Whether ``path`` is the storage directory or inside it."""
        folded = path.casefold()
        return any(folded == d or folded.startswith(d + os.sep) for d in self._denied)

    def contains_storage(self, path: str) -> bool:
        """Whether ``path`` is a directory that holds the storage directory."""
        prefix = path.casefold() + os.sep
        return any(denied.startswith(prefix) for denied in self._denied)

    def is_env_file(self, path: str, st: os.stat_result | None = None) -> bool:
        """Whether ``path`` (absolute) names an env file, or ``st`` describes one."""
        if is_env_file_name(os.path.basename(path)) or path.casefold() in self._env_paths:
            return True
        return st is not None and (st.st_dev, st.st_ino) in self._env_inodes

    def lexical(self, requested: str) -> str:
        """``requested`` as an absolute normalised path, checked before touching the disk.

        Raises:
            Denied: The path is outside the workspace, or in the storage directory.
        """
        if requested == "~" or requested.startswith("~/"):
            requested = os.path.expanduser("~") + requested[1:]
        # Working on the normalised path (not the raw one) keeps "link/.." from meaning
        # something different to the OS than to this check.
        lexical = os.path.normpath(os.path.join(self.root, requested))
        if not self.inside(lexical):
            raise Denied(
                f"Access denied - path outside allowed directories: {lexical} not in {self.root}"
            )
        if self.is_denied(lexical):
            raise Denied(STORAGE_DENIED)
        return lexical

    # Walking ----------------------------------------------------------------------------------

    def root_fd(self) -> int:
        """The open workspace directory (opened on first use)."""
        if self._fd is None:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            self._fd = fd
            self._finalizer = weakref.finalize(self, os.close, fd)
        return self._fd

    def close(self) -> None:
        """Close the workspace descriptor now (a later walk opens it again)."""
        if self._finalizer is not None:
            self._finalizer()
        self._fd = self._finalizer = None

    @contextlib.contextmanager
    def entry(
        self, requested: str, *, follow: bool = False, create: bool = False
    ) -> Iterator[Entry]:
        """The entry ``requested`` names, reached without leaving the workspace.

        Args:
            requested: A path as the model sent it: relative to the workspace, or absolute.
            follow: Resolve a symlink in the last component too (else the entry is the link).
            create: Create missing directories on the way (not the last component).

        Yields:
            The entry; its ``dir_fd`` is closed when the block ends.

        Raises:
            Denied: The path, or a symlink on the way, leads outside the workspace or into the
                storage directory.
            FileNotFoundError: A directory on the way does not exist (and ``create`` is false).
            OSError: A component on the way is not a directory, or there are too many links.
        """
        parts = self._parts(self.lexical(requested))
        walk = _Walk(self)
        try:
            yield walk.run(parts, follow=follow, create=create)
        finally:
            walk.close()

    def check_link(self, entry: Entry) -> None:
        """Refuse the symlink ``entry`` names if it leads outside the workspace or into storage.

        Raises:
            Denied: It does. A dangling link inside the workspace passes.
        """
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            with self.entry(entry.path, follow=True):
                pass

    def _parts(self, path: str) -> list[str]:
        if path == self.root:
            return []
        return path[len(self._prefix) :].split(os.sep)

    def _link_parts(self, directory: str, target: str) -> list[str]:
        """Workspace-relative components of a link in ``directory`` pointing to ``target``."""
        joined = os.path.normpath(os.path.join(directory, target))
        if not self.inside(joined) and os.path.isabs(target):
            # An absolute target may name the workspace through another spelling of its path
            # (macOS: /tmp is /private/tmp). The resolved path only chooses what to walk; the
            # walk itself still starts from the workspace descriptor.
            joined = os.path.realpath(target)
        if not self.inside(joined):
            raise Denied(LINK_OUTSIDE)
        return self._parts(joined)


class _Walk:
    """The directories opened on the way to one entry; :meth:`close` releases them."""

    def __init__(self, rules: Confinement) -> None:
        self._rules = rules
        self._fds: list[int] = []
        self._names: list[str] = []

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        self._names.clear()

    def _top(self) -> int:
        return self._fds[-1] if self._fds else self._rules.root_fd()

    def _path(self, *more: str) -> str:
        return os.path.join(self._rules.root, *self._names, *more)

    def run(self, parts: list[str], *, follow: bool, create: bool) -> Entry:
        pending = list(reversed(parts))
        links = 0
        while pending:
            name = pending.pop()
            parent = self._top()
            last = not pending
            if last:
                if not follow:
                    return self._entry(parent, name)
                try:
                    st = os.stat(name, dir_fd=parent, follow_symlinks=False)
                except FileNotFoundError:
                    return self._entry(parent, name)
                if not stat.S_ISLNK(st.st_mode):
                    return self._entry(parent, name)
            else:
                fd = self._open_dir(parent, name, create=create)
                if fd is not None:
                    self._fds.append(fd)
                    self._names.append(name)
                    if self._rules.is_denied(self._path()):
                        raise Denied(STORAGE_DENIED)
                    continue
            # A symlink: walk its target from the workspace instead.
            try:
                target = os.readlink(name, dir_fd=parent)
            except OSError as error:
                if error.errno not in (errno.EINVAL, errno.ENOENT):
                    raise
                target = None  # swapped back to something else since: look again
            links += 1
            if links > _MAX_LINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), self._path(name))
            if target is None:
                pending.append(name)
                continue
            rest = self._rules._link_parts(self._path(), target)
            self.close()
            pending.extend(reversed(rest))
        # Everything was a directory (the workspace itself, or a link to a directory).
        return self._entry(self._top(), ".")

    def _entry(self, parent: int, name: str) -> Entry:
        path = self._path() if name == "." else self._path(name)
        if self._rules.is_denied(path):
            raise Denied(STORAGE_DENIED)
        return Entry(dir_fd=parent, name=name, path=path)

    def _open_dir(self, parent: int, name: str, *, create: bool) -> int | None:
        """Open directory ``name`` in ``parent``; None when it is a symlink."""
        for _ in range(_MAX_LINKS):
            try:
                return os.open(name, _DIR_FLAGS, dir_fd=parent)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):  # made since: open it
                    os.mkdir(name, 0o777, dir_fd=parent)
            except OSError as error:
                if error.errno not in _LINK_ERRNOS:
                    raise
                try:
                    st = os.stat(name, dir_fd=parent, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # gone since: try again
                if stat.S_ISLNK(st.st_mode):
                    return None
                if not stat.S_ISDIR(st.st_mode):
                    raise OSError(
                        errno.ENOTDIR, os.strerror(errno.ENOTDIR), self._path(name)
                    ) from None
                # A directory again by now: try again.
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), self._path(name))


def copy_entry(src_dir: int, src_name: str, dst_dir: int, dst_name: str) -> None:
    """Copy a file, symlink or directory tree between directory descriptors, then delete it.

    The move across file systems (a bind mount inside the workspace) that ``rename`` cannot do,
    with the same care as the walk: nothing is opened by path, nothing followed. Symlinks are
    copied as links. The destination must not exist.
    """
    _copy(src_dir, src_name, dst_dir, dst_name)
    st = os.stat(src_name, dir_fd=src_dir, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(src_name, dir_fd=src_dir)
    else:
        os.unlink(src_name, dir_fd=src_dir)


def _copy(src_dir: int, src_name: str, dst_dir: int, dst_name: str) -> None:
    st = os.stat(src_name, dir_fd=src_dir, follow_symlinks=False)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src_name, dir_fd=src_dir), dst_name, dir_fd=dst_dir)
    elif stat.S_ISDIR(st.st_mode):
        os.mkdir(dst_name, 0o700, dir_fd=dst_dir)
        source = os.open(src_name, _DIR_FLAGS, dir_fd=src_dir)
        try:
            target = os.open(dst_name, _DIR_FLAGS, dir_fd=dst_dir)
            try:
                with os.scandir(source) as entries:
                    for child in entries:
                        _copy(source, child.name, target, child.name)
                os.chmod(target, mode)
            finally:
                os.close(target)
        finally:
            os.close(source)
    elif stat.S_ISREG(st.st_mode):
        flags = os.O_NOFOLLOW | os.O_CLOEXEC
        reader = os.open(src_name, os.O_RDONLY | os.O_NONBLOCK | flags, dir_fd=src_dir)
        with open(reader, "rb") as source_file:
            writer = os.open(
                dst_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | flags, mode, dir_fd=dst_dir
            )
            with open(writer, "wb") as target_file:
                shutil.copyfileobj(source_file, target_file)
    else:
        raise OSError(errno.EINVAL, "Cannot move a special file across file systems", src_name)
