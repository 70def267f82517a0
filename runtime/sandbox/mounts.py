"""What a sandboxed process sees of the host's files: the bwrap mount options for one command.

In the order given, since later mounts cover earlier ones:

1. The host's root file system, read-only (``--ro-bind / /``): programs, libraries and
   ``/etc`` work as on the host, nothing outside the workspace can be changed.
2. A fresh ``/dev`` and ``/proc`` (its own pid namespace: no host process is visible).
3. Empty tmpfs over the places secrets and other users' data live: ``/tmp``, ``/var/tmp``,
   ``/run`` (sockets: docker, ssh-agent, D-Bus), ``/root``, ``/home``, ``/mnt``, ``/media`` and
   ``$HOME``. So ``/tmp`` is private and the home directory is empty and writable but forgotten.
4. Read-only re-exposure of what the command needs from under those: the install prefix of the
   program (e.g. ``~/.nvm/versions/node/v22`` for ``npx``), of its ``#!`` interpreter, and
   (with allowed domains) of the runtime's Python, which runs the forwarder on the fallback.
5. The workspace, read-write, at its real path.
6. Masks over what must stay hidden even there: the storage directory (jobs and checkpoints,
   an empty read-only tmpfs), the workspace's ``.env`` files (secrets the skill did not declare in
   ``requiredEnv``), ``/etc/shadow`` and friends, and any ``~/.ssh``, ``~/.aws``, … that a
   re-exposed directory would otherwise show.

The network set-up (:mod:`runtime.sandbox.egress`) may add binds of its own between 4 and 5,
under :attr:`FileView.inner_dir`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import sys
import tempfile
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["FileView", "Mounts"]

# Directories hidden behind an empty tmpfs (those that exist); $HOME is added per call.
_HIDDEN_DIRS = ("/tmp", "/var/tmp", "/run", "/root", "/home", "/mnt", "/media")
# Never hidden even if HOME points there: hiding them would break every program.
_SYSTEM_DIRS = frozenset({"/", "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/var", "/opt"})
# Readable by root even without capabilities (root owns them): masked with an empty file.
_SECRET_FILES = (
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/security/opasswd",
)
# Credentials and histories under a home directory; masked wherever a bind would expose them.
_HOME_SECRETS = (
    ".ssh",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".config/gh",
    ".config/hub",
    ".config/op",
    ".docker",
    ".kube",
    ".gnupg",
    ".password-store",
    ".local/share/keyrings",
    ".terraform.d",
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    ".netrc",
    ".pypirc",
    ".git-credentials",
    ".vault-token",
    ".pgpass",
    ".my.cnf",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".gradle/gradle.properties",
    ".m2/settings.xml",
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".node_repl_history",
    ".env",
)


def _workspace_env_files(workspace: str) -> list[str]:
    """The env files at the workspace's top: ``.env``, ``.env.local``, ``.env.production``...

    They hold keys the skill was not given (§2.7).
    """
    from runtime.config.env import is_env_file_name

    try:
        return [name for name in os.listdir(workspace) if is_env_file_name(name)]
    except OSError:
        return [".env", ".env.local"]


_BIN_DIRS = frozenset({"bin", "sbin", "shims"})


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


@dataclass(frozen=True)
class FileView:
    """One command's view of the files, as bwrap options.

    Attributes:
        lower: The root, ``/dev``, ``/proc``, the hidden directories and the re-exposed paths
            (groups 1 to 4).
        upper: The workspace and the masks (groups 5 and 6), which must come after any other
            bind.
        inner_dir: A directory behind an empty tmpfs where the runtime may bind what the
            command needs from it (the forwarder and its proxy socket).
    """

    lower: list[str]
    upper: list[str]
    inner_dir: str


class Mounts:
    """The file-system side of a :class:`~runtime.sandbox.wrap.Sandbox`, for one workspace.

    Args:
        workspace: The resolved workspace (read-write in the sandbox).
        hidden: Resolved paths masked even when a bind would show them: the storage
            directories, then the caller's extra hidden paths.
        read_only: Resolved host paths to make visible read-only.
    """

    def __init__(self, workspace: str, hidden: Iterable[str], read_only: Iterable[str]) -> None:
        self._workspace = workspace
        self._hidden = list(hidden)
        self._read_only = list(read_only)
        self._empty: str | None = None

    def view(
        self, program: str, env: Mapping[str, str], workdir: str, *, with_python: bool
    ) -> FileView:
        """The mounts that let ``program`` run with ``env`` in ``workdir``, and nothing more.

        ``with_python``: keep the runtime's own Python visible too (the forwarder needs it).
        """
        homes = self._homes(env)
        hidden_roots = self._hidden_roots(homes, env.get("HOME", ""))
        inner_dir = "/run/perstack-sandbox" if "/run" in hidden_roots else "/tmp/.perstack-sandbox"
        programs = [self._locate(program, env, workdir)]
        if with_python:
            # Needed by the forwarder; with a shared namespace kept visible all the same, so a
            # command sees the same files on either path (as it always did with network).
            programs.append(sys.executable)
        exposed = self._exposures(programs, hidden_roots, with_python=with_python)
        lower = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/dev/shm"]
        for root in hidden_roots:
            lower += ["--tmpfs", root]
        for path in exposed:
            lower += ["--ro-bind", path, path]
        upper = ["--bind", self._workspace, self._workspace]
        upper += self._masks(exposed, homes, hidden_roots)
        return FileView(lower, upper, inner_dir)

    @staticmethod
    def _homes(env: Mapping[str, str]) -> list[str]:
        homes = [env.get("HOME", ""), os.environ.get("HOME", "")]
        with contextlib.suppress(KeyError):
            homes.append(pwd.getpwuid(os.geteuid()).pw_dir)
        homes.append("/root")
        with contextlib.suppress(OSError):
            homes += [entry.path for entry in os.scandir("/home") if entry.is_dir()]
        resolved = (os.path.realpath(h) for h in homes if h and os.path.isabs(h))
        return [h for h in dict.fromkeys(resolved) if h not in _SYSTEM_DIRS and os.path.isdir(h)]

    def _hidden_roots(self, homes: list[str], child_home: str) -> list[str]:
        """Directories to cover with an empty tmpfs, parents before children."""
        roots = [d for d in _HIDDEN_DIRS if os.path.isdir(d) and not os.path.islink(d)]
        if os.path.isdir("/var/run") and not os.path.islink("/var/run"):
            roots.append("/var/run")
        for home in homes:
            if not any(_under(home, root) for root in roots):
                roots.append(home)
        # The process's own $HOME must exist and be writable (npm, uv and pip keep caches
        # there), even when it lies inside a hidden directory: an empty tmpfs of its own.
        if child_home and os.path.isabs(child_home):
            home = os.path.realpath(child_home)
            if (
                home not in roots
                and home not in _SYSTEM_DIRS
                and not _under(home, self._workspace)
                and not _under(self._workspace, home)
                and (os.path.isdir(home) or any(_under(home, root) for root in roots))
            ):
                roots.append(home)
        return roots

    @staticmethod
    def _locate(program: str, env: Mapping[str, str], cwd: str) -> str | None:
        if "/" in program:
            return os.path.normpath(os.path.join(cwd, program))
        return shutil.which(program, path=env.get("PATH", os.defpath))

    def _exposures(
        self, programs: list[str | None], hidden_roots: list[str], *, with_python: bool
    ) -> list[str]:
        """Read-only binds that make the programs runnable although their prefix is hidden."""
        paths: list[str] = []
        for program in programs:
            if program is None:
                continue
            paths += [program, os.path.realpath(program)]
            interpreter = _shebang(program)
            if interpreter is not None:
                paths += [interpreter, os.path.realpath(interpreter)]
        prefixes = [_prefix(p, hidden_roots) for p in paths]
        if with_python:
            prefixes += [os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)]
        prefixes += self._read_only
        exposed: list[str] = []
        for path in dict.fromkeys(prefixes):
            if (
                any(_under(path, root) for root in hidden_roots)
                and not _under(path, self._workspace)
                and os.path.exists(path)
            ):
                exposed.append(path)
        return exposed

    def _masks(self, exposed: list[str], homes: list[str], hidden_roots: list[str]) -> list[str]:
        """Options hiding secrets that would otherwise be visible in the sandbox."""
        visible = [*exposed, self._workspace]
        candidates = list(_SECRET_FILES)
        candidates += [os.path.join(home, rel) for home in homes for rel in _HOME_SECRETS]
        candidates += [
            os.path.join(self._workspace, name) for name in _workspace_env_files(self._workspace)
        ]
        candidates += self._hidden
        opts: list[str] = []
        for path in dict.fromkeys(candidates):
            if not os.path.lexists(path):
                continue
            hidden = any(_under(path, root) for root in hidden_roots)
            if hidden and not any(_under(path, v) for v in visible):
                continue  # already behind an empty tmpfs
            if os.path.isdir(path) and not os.path.islink(path):
                opts += ["--tmpfs", path, "--remount-ro", path]
            elif os.path.islink(path):
                continue  # a symlink resolves inside the sandbox, to a place masked or hidden
            else:
                opts += ["--ro-bind", self._empty_file(), path]
        return opts

    def _empty_file(self) -> str:
        """A read-only empty file to bind over secret files.

        Not ``/dev/null``: bwrap mounts binds ``nodev``, so a bound device node cannot be opened
        at all, and programs that merely read e.g. ``~/.npmrc`` would fail instead of finding
        nothing.
        """
        if self._empty is None:
            fd, path = tempfile.mkstemp(prefix="perstack-sandbox-empty-")
            os.close(fd)
            os.chmod(path, 0o444)
            self._empty = path
            weakref.finalize(self, _unlink, path)
        return self._empty


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _prefix(path: str, hidden_roots: list[str]) -> str:
    """The directory to expose for ``path``: its install prefix when it sits in a bin dir."""
    directory = os.path.dirname(path)
    candidates = [directory, path]
    if os.path.basename(directory) in _BIN_DIRS:
        candidates.insert(0, os.path.dirname(directory))
    for candidate in candidates:
        # Never a hidden root itself or a parent of one: that would undo the hiding.
        if candidate != "/" and not any(_under(root, candidate) for root in hidden_roots):
            return candidate
    return path


def _shebang(path: str) -> str | None:
    """The interpreter a ``#!`` script names (resolving ``/usr/bin/env NAME``), if any."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    if not words:
        return None
    if os.path.basename(words[0]) == "env":
        names = [w for w in words[1:] if not w.startswith("-")]
        return shutil.which(names[0]) if names else None
    return words[0]
