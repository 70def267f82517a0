"""Building the bubblewrap command line that runs one process in the sandbox.

A :class:`Sandbox` puts together, for each command:

- its view of the files (:mod:`runtime.sandbox.mounts`): the host read-only, secrets and other
  users' data hidden, the workspace read-write;
- its network (:mod:`runtime.sandbox.egress`): none, or HTTP(S) to its allowed domains through
  an allow-listing proxy;
- new namespaces, no capabilities, no nested user namespaces, killed with its parent
  (:func:`~runtime.sandbox.engine.isolation_flags`).

The environment is exactly the one the caller passes (the skill's filtered env), minus the
host's proxy settings, plus the sandbox's own. Values go through the process environment, never
the command line, where other users could read them.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runtime.errors import ConfigError
from runtime.sandbox.egress import (
    Forwarder,
    Networks,
    ProxySettings,
    SharedNetwork,
    point_at_proxy,
    without_proxy_env,
)
from runtime.sandbox.engine import isolation_flags, require_bwrap
from runtime.sandbox.mounts import Mounts
from runtime.sandbox.policy import ProxyDecision
from runtime.sandbox.proxy import DEFAULT_ALLOWED_PORTS, ProxyServer

__all__ = ["Sandbox", "SandboxedCommand", "wrap"]


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
        hidden = [os.path.realpath(os.path.expanduser(p)) for p in hidden_paths]
        self._mounts = Mounts(
            self._workspace,
            hidden=[*dict.fromkeys(storage), *hidden],
            read_only=[os.path.realpath(os.path.expanduser(p)) for p in read_only_paths],
        )
        self._proxies = ProxySettings(on_proxy_access, allowed_ports, allow_private_for_tests)
        self._share_network = shared_network
        self._networks = Networks()
        self._closed = False
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
        child_env = without_proxy_env(env)
        child_env["PERSTACK_SANDBOX"] = "1"
        # Computed before the proxy starts, so nothing below can fail and leave it listening.
        view = self._mounts.view(argv[0], env, workdir, with_python=bool(domains))

        opts = list(view.lower)
        proxy: ProxyServer | None = None
        forwarder: Forwarder | None = None
        inner = list(argv)
        prefix: list[str] = []
        release: Callable[[], None] | None = None
        if network is not None:
            proxy = network.proxy
            prefix = network.namespace.join_prefix()
            release = network.acquire()
        elif domains:
            forwarder = Forwarder.start(argv, domains, self._proxies, view.inner_dir)
            proxy = forwarder.proxy
            opts += forwarder.binds
            inner = forwarder.argv
        if domains:
            point_at_proxy(child_env)

        opts += view.upper
        opts += ["--chdir", workdir, *isolation_flags(share_net=network is not None), "--"]

        # Holds the sandbox: its shared namespaces stay open while a command may still use them.
        def cleanup(_sandbox: Sandbox = self) -> None:
            if release is not None:
                release()
            elif forwarder is not None:
                forwarder.close()

        argv_out = [*prefix, self._bwrap, *opts, *inner]
        return SandboxedCommand(argv_out, child_env, cleanup, proxy)

    def _network(self, domains: list[str]) -> SharedNetwork | None:
        """The shared network namespace for ``domains``, made now if needed; None to fall back.

        Raises:
            RuntimeError: No running asyncio loop, or the sandbox is closed.
        """
        if self._closed:
            raise RuntimeError("The sandbox is closed")
        loop = asyncio.get_running_loop()
        if not self._share_network:
            return None
        return self._networks.shared(domains, loop, self._bwrap, self._proxies)


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
