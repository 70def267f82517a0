"""How a sandboxed command reaches its allowed domains, and nothing else.

Without allowed domains a command has no network at all (only loopback, in a network namespace
of its own), and no start-up cost beyond bwrap's.

With allowed domains, the command joins a network namespace the sandbox keeps for that domain
set (:mod:`runtime.sandbox.netns`): loopback only, with a listener on ``127.0.0.1:3128`` that a
:class:`~runtime.sandbox.proxy.ProxyServer` on the runtime's event loop serves directly
(:class:`SharedNetwork`); ``HTTP(S)_PROXY`` point at it. The command line then starts with
``nsenter`` and bwrap keeps that network namespace (``--share-net``) while unsharing everything
else. Where joining a namespace does not work (no ``nsenter``, nested user namespaces refused),
each command runs behind its own forwarder instead (``forward.py``, :class:`Forwarder`), which
relays ``127.0.0.1:3128`` in a private network namespace to a proxy on a UNIX socket the sandbox
gets bind-mounted.

The host's proxy settings never reach the command (:func:`without_proxy_env`); with allowed
domains the sandbox's own replace them (:func:`point_at_proxy`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.sandbox.netns import (
    NetworkNamespace,
    SpareNamespace,
    join_support,
    open_network_namespace,
)
from runtime.sandbox.policy import AllowList, ProxyDecision
from runtime.sandbox.proxy import ProxyServer

__all__ = [
    "PROXY_PORT",
    "Forwarder",
    "Networks",
    "ProxySettings",
    "SharedNetwork",
    "point_at_proxy",
    "registry_domains",
    "without_proxy_env",
]

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


def without_proxy_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the host's proxy settings (they would point outside the sandbox)."""
    return {k: v for k, v in env.items() if k not in _PROXY_ENV_NAMES}


def point_at_proxy(env: dict[str, str]) -> None:
    """Point ``env``'s proxy settings at the proxy on the sandbox's loopback."""
    url = f"http://127.0.0.1:{PROXY_PORT}"
    for name in _PROXY_URL_ENV_NAMES:
        env[name] = url
    env["NO_PROXY"] = env["no_proxy"] = "localhost,127.0.0.1,::1"
    # Node 24+ honours HTTP(S)_PROXY only with this; older versions ignore it.
    env["NODE_USE_ENV_PROXY"] = "1"


@dataclass(frozen=True)
class ProxySettings:
    """How a sandbox's proxies decide; see :class:`~runtime.sandbox.wrap.Sandbox`."""

    on_access: Callable[[ProxyDecision], None] | None
    allowed_ports: Iterable[int] | None
    allow_private: bool

    def server(self, domains: Iterable[str]) -> ProxyServer:
        """A proxy allowing ``domains``, not yet listening."""
        return ProxyServer(
            domains,
            on_access=self.on_access,
            allowed_ports=self.allowed_ports,
            allow_private=self.allow_private,
        )


class SharedNetwork:
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
        """Stop the proxy; the namespace goes once no command uses it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.proxy.close()
        if self._users == 0:
            self.namespace.close()


class Networks:
    """A sandbox's shared networks by domain set, and the spare namespace for the next one."""

    def __init__(self) -> None:
        self.by_domains: dict[tuple[str, ...], SharedNetwork] = {}
        self.spare: SpareNamespace | None = None
        self.closed = False

    def shared(
        self,
        domains: list[str],
        loop: asyncio.AbstractEventLoop,
        bwrap: str,
        settings: ProxySettings,
    ) -> SharedNetwork | None:
        """The shared network for ``domains`` on ``loop``, made now if needed; None to fall back."""
        key = tuple(AllowList(domains).patterns)
        network = self.by_domains.get(key)
        if network is not None and network.loop is loop and not network.proxy.closed:
            return network
        if network is not None:  # made on another event loop (e.g. an earlier asyncio.run)
            network.close()
            del self.by_domains[key]
        spare, self.spare = self.spare, None
        namespace = spare.take() if spare is not None else None
        if namespace is None:
            namespace = open_network_namespace(bwrap, "127.0.0.1", PROXY_PORT)
        if namespace is None:
            return None
        # A spare for the next domain set, once this command is under way: made right now, the
        # helper would compete with the command's start for the CPU.
        loop.call_later(_SPARE_DELAY_S, self.replenish, bwrap)
        proxy = settings.server(domains)
        proxy.serve(namespace.listener)
        network = SharedNetwork(namespace, proxy, loop)
        self.by_domains[key] = network
        return network

    def replenish(self, bwrap: str) -> None:
        """Start making a spare namespace, unless there is one or joining does not work."""
        if not self.closed and self.spare is None and join_support(bwrap) is None:
            self.spare = SpareNamespace(bwrap, "127.0.0.1", PROXY_PORT)

    def close(self) -> None:
        """Close every shared network and cancel the spare; idempotent."""
        self.closed = True
        if self.spare is not None:
            self.spare.cancel()
            self.spare = None
        for network in list(self.by_domains.values()):
            network.close()
        self.by_domains.clear()


@dataclass
class Forwarder:
    """One command's own proxy, relayed into its private network namespace by ``forward.py``.

    Attributes:
        proxy: The proxy, listening on a UNIX socket in a private temporary directory.
        binds: bwrap options that show the forwarder and the socket's directory in the sandbox.
        argv: The command line to run in the sandbox: the forwarder, then the command.
    """

    proxy: ProxyServer
    binds: list[str]
    argv: list[str]
    _socket_dir: str

    @classmethod
    def start(
        cls, argv: Sequence[str], domains: Sequence[str], settings: ProxySettings, inner_dir: str
    ) -> Forwarder:
        """Start the proxy for ``argv``; ``inner_dir`` is where the sandbox shows it.

        Raises:
            OSError: The proxy's socket could not be made.
        """
        socket_dir = tempfile.mkdtemp(prefix="perstack-sandbox-")
        proxy = settings.server(domains)
        try:
            proxy.listen(os.path.join(socket_dir, "proxy.sock"))
        except BaseException:
            shutil.rmtree(socket_dir, ignore_errors=True)
            raise
        binds = ["--ro-bind", _FORWARD_SCRIPT, f"{inner_dir}/forward.py"]
        binds += ["--ro-bind", socket_dir, f"{inner_dir}/proxy"]
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
        return cls(proxy, binds, inner, socket_dir)

    def close(self) -> None:
        """Stop the proxy and remove its socket; idempotent."""
        self.proxy.close()
        shutil.rmtree(self._socket_dir, ignore_errors=True)


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
