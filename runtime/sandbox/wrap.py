"""Building the bubblewrap command line that runs one process in the sandbox.

What the sandboxed process sees (each line is one group of bwrap options, in the order given,
since later mounts cover earlier ones):

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
7. New namespaces, no capabilities, no nested user namespaces, killed with its parent
   (:func:`~runtime.sandbox.engine.isolation_flags`). The network namespace has only loopback.

With allowed domains, the command joins a network namespace the :class:`Sandbox` keeps for that
domain set (:mod:`runtime.sandbox.netns`): loopback only, with a listener on ``127.0.0.1:3128``
that a :class:`~runtime.sandbox.proxy.ProxyServer` on the runtime's event loop serves directly;
``HTTP(S)_PROXY`` point at it. The command line then starts with ``nsenter`` and bwrap keeps
that network namespace (``--share-net``) while unsharing everything else. Where joining a
namespace does not work (no ``nsenter``, nested user namespaces refused), each command runs
behind its own forwarder instead (``forward.py``), which relays ``127.0.0.1:3128`` in a private
network namespace to a proxy on a UNIX socket the sandbox gets bind-mounted. Without allowed
domains there is neither: no network at all, and no start-up cost beyond bwrap's.

The environment is exactly the one the caller passes (the skill's filtered env), minus the
host's proxy settings, plus the sandbox's own. Values go through the process environment, never
the command line, where other users could read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import sys
import tempfile
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runtime.errors import ConfigError
from runtime.sandbox.engine import isolation_flags, require_bwrap
from runtime.sandbox.netns import (
    NetworkNamespace,
    SpareNamespace,
    join_support,
    open_network_namespace,
)
from runtime.sandbox.policy import AllowList, ProxyDecision
from runtime.sandbox.proxy import DEFAULT_ALLOWED_PORTS, ProxyServer

__all__ = ["PROXY_PORT", "Sandbox", "SandboxedCommand", "registry_domains", "wrap"]

PROXY_PORT = 3128
"""Port of the proxy on the sandbox's own loopback (no clash possible: private netns)."""

_FORWARD_SCRIPT = str(Path(__file__).with_name("forward.py"))
_SPARE_DELAY_S = 0.25
_PROXY_ENV_NAMES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "PERSTACK_PROXY_URL",
    "NPM_CONFIG_PROXY",
    "NPM_CONFIG_HTTPS_PROXY",
    "npm_config_proxy",
    "npm_config_https_proxy",
    "NODE_USE_ENV_PROXY",
)
# Pointed at the proxy's port when domains are allowed: what curl, Python, uv, pip and npm read.
_PROXY_URL_ENV_NAMES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "PERSTACK_PROXY_URL",
    "NPM_CONFIG_PROXY",
    "NPM_CONFIG_HTTPS_PROXY",
)
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


@dataclass
class SandboxedCommand:
    """A command ready to spawn: run ``argv`` with exactly ``env``, call ``cleanup`` afterwards.

    Attributes:
        argv: The full command line, starting with the bwrap binary (or, with allowed domains,
            with ``nsenter``, which joins the sandbox's network namespace and runs bwrap).
        env: The environment to spawn it with (replaces the parent's, not merged).
        cleanup: Releases what the command used (on the forwarder fallback: stops its proxy and
            removes its socket); idempotent, synchronous. Call it once the process has exited.
        proxy: The proxy serving this command, when it has allowed domains (shared by the
            commands of one :class:`Sandbox` with the same domains, unless on the fallback).
    """

    argv: list[str]
    env: dict[str, str]
    cleanup: Callable[[], None] = field(repr=False)
    proxy: ProxyServer | None = field(default=None, repr=False)

    @property
    def command(self) -> str:
        """The program to spawn (bwrap, or nsenter running bwrap)."""
        return self.argv[0]

    @property
    def args(self) -> list[str]:
        """The arguments after :attr:`command`."""
        return self.argv[1:]


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class _SharedNetwork:
    """A sandbox network namespace and the proxy serving its listener, for one domain set.

    Closing stops the proxy at once (nothing in the namespace can connect anywhere after that);
    the namespace descriptors are released once no command still refers to them, so a command
    line built earlier can never name a descriptor number reused for another namespace.
    """

    def __init__(
        self, namespace: NetworkNamespace, proxy: ProxyServer, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.namespace = namespace
        self.proxy = proxy
        self.loop = loop
        self._users = 0
        self._closed = False

    def acquire(self) -> Callable[[], None]:
        """Count one more command; returns its idempotent release."""
        self._users += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._users -= 1
                if self._closed and self._users == 0:
                    self.namespace.close()

        return release

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.proxy.close()
        if self._users == 0:
            self.namespace.close()


class _Networks:
    """A sandbox's shared networks by domain set, and the spare namespace for the next one."""

    def __init__(self) -> None:
        self.by_domains: dict[tuple[str, ...], _SharedNetwork] = {}
        self.spare: SpareNamespace | None = None
        self.closed = False

    def replenish(self, bwrap: str) -> None:
        if not self.closed and self.spare is None and join_support(bwrap) is None:
            self.spare = SpareNamespace(bwrap, "127.0.0.1", PROXY_PORT)

    def close(self) -> None:
        self.closed = True
        if self.spare is not None:
            self.spare.cancel()
            self.spare = None
        for network in list(self.by_domains.values()):
            network.close()
        self.by_domains.clear()


class Sandbox:
    """Sandbox settings for one run; :meth:`wrap` turns a command into a sandboxed one.

    Creating it checks that bubblewrap works, so ``--sandbox`` fails before the run starts.

    Args:
        workspace: The directory the process may read and write.
        storage_dir: Where the runtime keeps jobs (relative to the workspace or absolute);
            ``workspace/perstack`` is always hidden too.
        on_proxy_access: Receives every proxy decision (the runtime publishes ``proxyAccess``).
        bwrap: A bwrap binary to use instead of the detected one.
        read_only_paths: More host paths to make visible read-only (e.g. a tool cache).
        hidden_paths: More paths to hide (files read as empty, directories as empty).
        allowed_ports: Ports the proxy allows; None for any.
        allow_private_for_tests: Let the proxy reach loopback and private addresses. Only for
            tests with a local server; never set it for real runs.
        shared_network: Let the commands with the same allowed domains join one network
            namespace and proxy (made at the first of them), instead of starting a forwarder
            each. False gives every command its own namespace and forwarder (10 to 30 ms more
            per start), as happens anyway where joining a namespace does not work.

    Call :meth:`close` (or use it as a context manager) when the run ends: it stops the proxies.
    Otherwise that happens when the sandbox and every command it wrapped are garbage collected.

    Raises:
        SandboxUnavailableError: No working bubblewrap (from :func:`require_bwrap`).
        ConfigError: The workspace is the root directory.
    """

    def __init__(
        self,
        workspace: Path | str,
        *,
        storage_dir: Path | str | None = None,
        on_proxy_access: Callable[[ProxyDecision], None] | None = None,
        bwrap: str | None = None,
        read_only_paths: Iterable[Path | str] = (),
        hidden_paths: Iterable[Path | str] = (),
        allowed_ports: Iterable[int] | None = DEFAULT_ALLOWED_PORTS,
        allow_private_for_tests: bool = False,
        shared_network: bool = True,
    ) -> None:
        self._bwrap = bwrap or require_bwrap()
        self._workspace = os.path.realpath(os.path.expanduser(workspace))
        if self._workspace == "/":
            raise ConfigError("The sandbox cannot use / as the workspace: it would be writable.")
        storage = [os.path.join(self._workspace, "perstack")]
        if storage_dir is not None:
            storage.append(
                os.path.realpath(os.path.join(self._workspace, os.path.expanduser(storage_dir)))
            )
        self._storage = list(dict.fromkeys(storage))
        self._on_access = on_proxy_access
        self._read_only = [os.path.realpath(os.path.expanduser(p)) for p in read_only_paths]
        self._hidden = [os.path.realpath(os.path.expanduser(p)) for p in hidden_paths]
        self._ports = allowed_ports
        self._allow_private = allow_private_for_tests
        self._share_network = shared_network
        self._networks = _Networks()
        self._closed = False
        self._empty: str | None = None
        weakref.finalize(self, self._networks.close)
        if shared_network:
            # Made in the background now, so the first command with network need not wait.
            self._networks.replenish(self._bwrap)

    @property
    def bwrap(self) -> str:
        """The bwrap binary in use."""
        return self._bwrap

    @property
    def workspace(self) -> Path:
        """The resolved workspace."""
        return Path(self._workspace)

    def close(self) -> None:
        """Stop the proxies of the shared network namespaces; idempotent, synchronous.

        Processes still running keep their namespace but can no longer connect anywhere. After
        this, :meth:`wrap` refuses commands with allowed domains.
        """
        self._closed = True
        self._networks.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def wrap(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        allowed_domains: Iterable[str] = (),
        cwd: Path | str | None = None,
    ) -> SandboxedCommand:
        """Build the sandboxed command line for ``argv``.

        Args:
            argv: The program and its arguments, as they would be spawned unsandboxed.
            env: The environment the program may see (already filtered by the caller).
            allowed_domains: Domain patterns it may reach over HTTP(S); empty for no network.
            cwd: Working directory inside the sandbox; defaults to the workspace.

        Returns:
            The command to spawn. With allowed domains a proxy is now listening on the running
            event loop; call ``cleanup`` after the process exits.

        Raises:
            ValueError: ``argv`` is empty.
            RuntimeError: Domains are allowed but no asyncio loop is running (the proxy needs
                one), or the sandbox was closed.
        """
        if not argv:
            raise ValueError("argv must not be empty")
        domains = [d for d in allowed_domains if d]
        network = self._network(domains) if domains else None
        workdir = os.path.realpath(cwd) if cwd is not None else self._workspace
        child_env = {k: v for k, v in env.items() if k not in _PROXY_ENV_NAMES}
        child_env["PERSTACK_SANDBOX"] = "1"
        homes = self._homes(env)
        hidden_roots = self._hidden_roots(homes, env.get("HOME", ""))
        inner_dir = "/run/perstack-sandbox" if "/run" in hidden_roots else "/tmp/.perstack-sandbox"

        programs = [self._locate(argv[0], child_env, workdir)]
        if domains:
            # Needed by the forwarder; with a shared namespace kept visible all the same, so a
            # command sees the same files on either path (as it always did with network).
            programs.append(sys.executable)
        exposed = self._exposures(programs, hidden_roots, with_python=bool(domains))

        opts = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/dev/shm"]
        for root in hidden_roots:
            opts += ["--tmpfs", root]
        for path in exposed:
            opts += ["--ro-bind", path, path]
        # Computed before the proxy starts, so nothing below can fail and leave it listening.
        masks = self._masks(exposed, homes, hidden_roots)

        proxy: ProxyServer | None = None
        socket_dir: str | None = None
        inner = list(argv)
        prefix: list[str] = []
        release: Callable[[], None] | None = None
        if network is not None:
            proxy = network.proxy
            prefix = network.namespace.join_prefix()
            release = network.acquire()
        elif domains:
            socket_dir = tempfile.mkdtemp(prefix="perstack-sandbox-")
            proxy = ProxyServer(
                domains,
                on_access=self._on_access,
                allowed_ports=self._ports,
                allow_private=self._allow_private,
            )
            try:
                proxy.listen(os.path.join(socket_dir, "proxy.sock"))
            except BaseException:
                shutil.rmtree(socket_dir, ignore_errors=True)
                raise
            opts += ["--ro-bind", _FORWARD_SCRIPT, f"{inner_dir}/forward.py"]
            opts += ["--ro-bind", socket_dir, f"{inner_dir}/proxy"]
            inner = [
                sys.executable,
                "-S",
                "-I",
                f"{inner_dir}/forward.py",
                "--listen",
                f"127.0.0.1:{PROXY_PORT}",
                "--unix",
                f"{inner_dir}/proxy/proxy.sock",
                "--",
                *argv,
            ]
        if domains:
            url = f"http://127.0.0.1:{PROXY_PORT}"
            for name in _PROXY_URL_ENV_NAMES:
                child_env[name] = url
            child_env["NO_PROXY"] = child_env["no_proxy"] = "localhost,127.0.0.1,::1"
            # Node 24+ honours HTTP(S)_PROXY only with this; older versions ignore it.
            child_env["NODE_USE_ENV_PROXY"] = "1"

        opts += ["--bind", self._workspace, self._workspace]
        opts += masks
        opts += ["--chdir", workdir, *isolation_flags(share_net=network is not None), "--"]

        # Holds the sandbox: its shared namespaces stay open while a command may still use them.
        def cleanup(_sandbox: Sandbox = self) -> None:
            if release is not None:
                release()
            elif proxy is not None:
                proxy.close()
            if socket_dir is not None:
                shutil.rmtree(socket_dir, ignore_errors=True)

        argv_out = [*prefix, self._bwrap, *opts, *inner]
        return SandboxedCommand(argv_out, child_env, cleanup, proxy)

    def _network(self, domains: list[str]) -> _SharedNetwork | None:
        """The shared network namespace for ``domains``, made now if needed; None to fall back.

        Raises:
            RuntimeError: No running asyncio loop, or the sandbox is closed.
        """
        if self._closed:
            raise RuntimeError("The sandbox is closed")
        loop = asyncio.get_running_loop()
        if not self._share_network:
            return None
        networks = self._networks.by_domains
        key = tuple(AllowList(domains).patterns)
        network = networks.get(key)
        if network is not None and network.loop is loop and not network.proxy.closed:
            return network
        if network is not None:  # made on another event loop (e.g. an earlier asyncio.run)
            network.close()
            del networks[key]
        spare, self._networks.spare = self._networks.spare, None
        namespace = spare.take() if spare is not None else None
        if namespace is None:
            namespace = open_network_namespace(self._bwrap, "127.0.0.1", PROXY_PORT)
        if namespace is None:
            return None
        # A spare for the next domain set, once this command is under way: made right now, the
        # helper would compete with the command's start for the CPU.
        loop.call_later(_SPARE_DELAY_S, self._networks.replenish, self._bwrap)
        proxy = ProxyServer(
            domains,
            on_access=self._on_access,
            allowed_ports=self._ports,
            allow_private=self._allow_private,
        )
        proxy.serve(namespace.listener)
        network = _SharedNetwork(namespace, proxy, loop)
        networks[key] = network
        return network

    # Paths ----------------------------------------------------------------------------------

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
        candidates += self._storage + self._hidden
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


_REGISTRIES = {
    "npx": ("registry.npmjs.org",),
    "npm": ("registry.npmjs.org",),
    "pnpm": ("registry.npmjs.org",),
    "yarn": ("registry.npmjs.org", "registry.yarnpkg.com"),
    "bunx": ("registry.npmjs.org",),
    "uvx": ("pypi.org", "files.pythonhosted.org"),
    "uv": ("pypi.org", "files.pythonhosted.org"),
    "pipx": ("pypi.org", "files.pythonhosted.org"),
}


def registry_domains(command: str) -> list[str]:
    """Package registries a launcher fetches from: ``npx`` needs npm's, ``uvx`` PyPI's.

    The sandbox's home directory starts empty on every start, so ``npx -y pkg`` and ``uvx pkg``
    download the package each time; Perstack's Docker runtime always allows
    ``registry.npmjs.org`` for the same reason (§12.2). The runtime adds these to a stdio
    skill's ``allowedDomains``.

    Args:
        command: The skill's ``command`` (a name or a path).

    Returns:
        The domains to allow; empty for other commands.
    """
    return list(_REGISTRIES.get(os.path.basename(command), ()))


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


def wrap(
    argv: Sequence[str],
    *,
    workspace: Path | str,
    env: Mapping[str, str],
    allowed_domains: Iterable[str] = (),
    cwd: Path | str | None = None,
    storage_dir: Path | str | None = None,
    on_proxy_access: Callable[[ProxyDecision], None] | None = None,
    bwrap: str | None = None,
    allowed_ports: Iterable[int] | None = DEFAULT_ALLOWED_PORTS,
    allow_private_for_tests: bool = False,
) -> SandboxedCommand:
    """One-shot form of :meth:`Sandbox.wrap`; see :class:`Sandbox` for the arguments.

    The command's ``cleanup`` also closes the sandbox made for it.

    Raises:
        SandboxUnavailableError: No working bubblewrap.
    """
    sandbox = Sandbox(
        workspace,
        storage_dir=storage_dir,
        on_proxy_access=on_proxy_access,
        bwrap=bwrap,
        allowed_ports=allowed_ports,
        allow_private_for_tests=allow_private_for_tests,
    )
    command = sandbox.wrap(argv, env=env, allowed_domains=allowed_domains, cwd=cwd)
    release = command.cleanup

    def cleanup() -> None:
        release()
        sandbox.close()

    command.cleanup = cleanup
    return command
