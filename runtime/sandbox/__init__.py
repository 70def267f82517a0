"""An OS sandbox for tools and stdio skills on bubblewrap (``--sandbox``, ``sandbox = true``).

A sandboxed process sees the host's root file system read-only, the workspace read-write, a
private ``/tmp``, an empty home directory, only the environment variables it was given, and no
network except HTTP(S) to its skill's ``allowedDomains`` through an allow-listing proxy. The
network rule holds at the network level: the process has its own network namespace with nothing
but loopback, so ignoring the proxy variables gets it nowhere.

Typical use (the runtime creates one :class:`Sandbox` per run)::

    sandbox = Sandbox(workspace, storage_dir=storage, on_proxy_access=publish_decision)
    command = sandbox.wrap(["npx", "-y", "some-mcp"], env=env, allowed_domains=["api.x.com"])
    # spawn command.argv with env=command.env, then call command.cleanup() after it exits

Where bubblewrap is missing or cannot run, :class:`Sandbox` raises
:class:`SandboxUnavailableError` naming what to install; nothing ever runs unsandboxed instead.
"""

from __future__ import annotations

from runtime.sandbox.egress import PROXY_PORT, registry_domains
from runtime.sandbox.engine import (
    INSTALL_HINT,
    SandboxUnavailableError,
    find_bwrap,
    require_bwrap,
    reset_detection,
)
from runtime.sandbox.policy import AllowList, ProxyDecision
from runtime.sandbox.proxy import DEFAULT_ALLOWED_PORTS, ProxyServer
from runtime.sandbox.wrap import Sandbox, SandboxedCommand, wrap

__all__ = [
    "DEFAULT_ALLOWED_PORTS",
    "INSTALL_HINT",
    "PROXY_PORT",
    "AllowList",
    "ProxyDecision",
    "ProxyServer",
    "Sandbox",
    "SandboxUnavailableError",
    "SandboxedCommand",
    "find_bwrap",
    "registry_domains",
    "require_bwrap",
    "reset_detection",
    "wrap",
]
