"""Network namespaces that several sandboxed processes join, so none has to start a forwarder.

A sandboxed process with allowed domains needs, inside its network namespace (loopback only), a
listener on ``127.0.0.1:3128`` that leads to the host-side proxy. Starting one per process (the
Python forwarder, ``forward.py``) costs 10 to 30 ms per process. Instead, a
:class:`NetworkNamespace` is made once per :class:`~runtime.sandbox.wrap.Sandbox` and domain set:

1. ``bwrap --unshare-user --unshare-net`` runs ``netns_listen.py`` once (a Python start, once).
   bwrap gives it a new user namespace owning a new network namespace whose only interface is
   loopback, brought up. The script creates the listening socket there and sends it, with a
   descriptor of the namespace, back over a socket pair, then exits. A :class:`SpareNamespace`
   does this ahead of time on a thread, so the first command seldom waits for it.
2. The runtime keeps both descriptors (and the owning user namespace's, from ``NS_GET_USERNS``)
   and serves the listener with the proxy on its own event loop. A socket stays in the namespace
   it was created in, so the proxy is reached only from inside the namespace; no process of ours
   lives there and nothing has to be stopped if the runtime dies (the kernel closes the
   descriptors, and the namespace goes when its last process does).
3. Each sandboxed process is started as ``nsenter --user=/proc/RUNTIME/fd/U --net=/proc/RUNTIME/
   fd/N --preserve-credentials -- bwrap ... --unshare-all --share-net ...``: nsenter (util-linux,
   a small C program that execs without forking) joins the namespaces and becomes bwrap, which
   builds the rest of the sandbox as usual, including a nested user namespace with no
   capabilities and user namespaces disabled. The listener exists before the process starts, so
   its first connection cannot race it; stdin, stdout, stderr, signals and the exit status are
   bwrap's own, exactly as without network.

Joining needs nested user namespaces, ``nsenter`` and access to ``/proc/RUNTIME/fd``. The first
namespace made for a bwrap binary is checked by running ``readlink /proc/self/ns/net`` through
the whole chain; where anything fails, :func:`open_network_namespace` returns None and the
sandbox falls back to the per-process forwarder (same isolation, slower start).
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

from runtime.sandbox.engine import isolation_flags

__all__ = [
    "NamespaceError",
    "NetworkNamespace",
    "SpareNamespace",
    "create_network_namespace",
    "join_support",
    "open_network_namespace",
]

_LISTEN_SCRIPT = str(Path(__file__).with_name("netns_listen.py"))
_NS_GET_USERNS = 0xB701  # <linux/nsfs.h>: _IO(0xb7, 0x1), the user namespace owning a namespace
_TIMEOUT_S = 10.0
_logger = logging.getLogger("runtime")
# Per (bwrap, nsenter): None when joining a namespace was verified to work, else why not.
_support: dict[tuple[str, str], str | None] = {}


class NamespaceError(Exception):
    """A network namespace could not be made or joined here (the message says why)."""


class NetworkNamespace:
    """A network namespace with only loopback, a listening socket in it, and how to join it.

    Attributes:
        listener: The listening TCP socket inside the namespace (non-blocking is up to whoever
            serves it).
        inode: The namespace's inode, as ``readlink /proc/self/ns/net`` shows it inside.
    """

    def __init__(
        self,
        listener: socket.socket,
        net_fd: int,
        user_fd: int,
        nsenter: str,
        helper: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.listener = listener
        self._net_fd = net_fd
        self._user_fd = user_fd
        self._nsenter = nsenter
        self._helper = helper
        self.inode = os.fstat(net_fd).st_ino
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def join_prefix(self) -> list[str]:
        """The command line that runs what follows it inside the namespace (then ``bwrap ...``).

        The paths name this process's descriptors, so the command must be spawned by this
        process while the namespace is open.
        """
        fds = f"/proc/{os.getpid()}/fd"
        return [
            self._nsenter,
            f"--user={fds}/{self._user_fd}",
            f"--net={fds}/{self._net_fd}",
            "--preserve-credentials",
            "--",
        ]

    def close_listener(self) -> None:
        """Close the listener here (when nothing serves it); idempotent."""
        self.listener.close()

    def close(self) -> None:
        """Release the namespace descriptors; processes inside keep it until they exit."""
        if self._closed:
            return
        self._closed = True
        for fd in (self._net_fd, self._user_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._helper is not None:
            _reap(self._helper)  # exited right after sending, long ago
            self._helper = None


def nsenter_path() -> str | None:
    """util-linux ``nsenter``, or None."""
    return shutil.which("nsenter") or shutil.which("nsenter", path="/usr/bin:/bin")


def create_network_namespace(bwrap: str, nsenter: str, host: str, port: int) -> NetworkNamespace:
    """Make a loopback-only network namespace with a listener on ``host:port`` (one Python start).

    Raises:
        NamespaceError: bwrap or the helper failed, or sent no descriptors.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours:
        with theirs:
            argv = [bwrap, "--unshare-user", "--unshare-net", "--ro-bind", "/", "/"]
            argv += ["--die-with-parent", "--new-session", "--", sys.executable, "-S", "-I"]
            argv += [_LISTEN_SCRIPT, str(theirs.fileno()), f"{host}:{port}"]
            try:
                helper = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    pass_fds=(theirs.fileno(),),
                    env={},
                )
            except OSError as error:
                raise NamespaceError(f"cannot run {bwrap}: {error}") from None
        # Take the descriptors as soon as they are sent (the helper's exit is not waited for
        # here, it is reaped on close); EOF instead means the helper failed.
        ours.settimeout(_TIMEOUT_S)
        try:
            _data, ancillary, _flags, _address = ours.recvmsg(
                16, socket.CMSG_SPACE(2 * array.array("i").itemsize), socket.MSG_CMSG_CLOEXEC
            )
        except OSError as error:
            helper.kill()
            _reap(helper)
            raise NamespaceError(f"no namespace received: {error}") from None
    if not ancillary:
        error_text = _reap(helper)
        raise NamespaceError(error_text or f"{bwrap} sent no namespace")
    fds = array.array("i")
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if len(fds) != 2:
        for fd in fds:
            os.close(fd)
        _reap(helper)
        raise NamespaceError(f"expected 2 descriptors, received {len(fds)}")
    listener = socket.socket(fileno=fds[0])
    try:
        # The user namespace that owns the network namespace: joining it first gives the
        # capability to join the network namespace, without any privilege on the host.
        user_fd = fcntl.ioctl(fds[1], _NS_GET_USERNS)
    except OSError as error:
        listener.close()
        os.close(fds[1])
        _reap(helper)
        raise NamespaceError(f"cannot find the namespace's owner: {error}") from None
    return NetworkNamespace(listener, fds[1], user_fd, nsenter, helper)


def _reap(helper: subprocess.Popen[bytes]) -> str:
    """Wait for the helper to exit; the last line it wrote to stderr."""
    try:
        _out, err = helper.communicate(timeout=_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        helper.kill()
        _out, err = helper.communicate()
    lines = (err or b"").decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else ""


def _verify(namespace: NetworkNamespace, bwrap: str) -> None:
    """Run a process through the whole chain and check it lands in ``namespace``."""
    argv = [*namespace.join_prefix(), bwrap, "--ro-bind", "/", "/", "--dev", "/dev"]
    argv += ["--proc", "/proc", *isolation_flags(share_net=True), "--"]
    argv += ["readlink", "/proc/self/ns/net"]
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env={"PATH": "/usr/bin:/bin"},
            timeout=_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise NamespaceError(f"cannot run nsenter: {error}") from None
    seen = done.stdout.decode("utf-8", "replace").strip()
    if done.returncode != 0 or seen != f"net:[{namespace.inode}]":
        detail = done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
        raise NamespaceError(f"joining the namespace failed ({detail}; saw {seen!r})")


def join_support(bwrap: str) -> str | None:
    """Why shared namespaces cannot be used with ``bwrap`` here, or None if they can (so far).

    None before the first check too: :func:`open_network_namespace` does the check.
    """
    nsenter = nsenter_path()
    if nsenter is None:
        return "nsenter (util-linux) not found"
    return _support.get((bwrap, nsenter))


def open_network_namespace(bwrap: str, host: str, port: int) -> NetworkNamespace | None:
    """A new joinable namespace listening on ``host:port``, or None where joining cannot work.

    The first namespace for a bwrap binary is verified end to end (about 5 ms more); a failure
    is remembered for the life of the process, so the caller's fallback costs nothing more.
    """
    nsenter = nsenter_path()
    if nsenter is None:
        _unsupported(bwrap, "?", "nsenter (util-linux) not found")
        return None
    key = (bwrap, nsenter)
    if key in _support and _support[key] is not None:
        return None
    try:
        namespace = create_network_namespace(bwrap, nsenter, host, port)
    except NamespaceError as error:
        _unsupported(bwrap, nsenter, str(error))
        return None
    if key not in _support:
        try:
            _verify(namespace, bwrap)
        except NamespaceError as error:
            namespace.close_listener()
            namespace.close()
            _unsupported(bwrap, nsenter, str(error))
            return None
        _support[key] = None
    return namespace


class SpareNamespace:
    """A namespace made (and, the first time, verified) on a background thread, ready for later.

    A :class:`~runtime.sandbox.wrap.Sandbox` starts one when it is created and again each time
    it takes one, so the first command of a domain set usually finds its namespace ready instead
    of waiting for the helper's Python start. Namespaces are not tied to a domain set: the proxy
    that decides is attached when one is taken.
    """

    def __init__(self, bwrap: str, host: str, port: int) -> None:
        self._lock = threading.Lock()
        self._namespace: NetworkNamespace | None = None
        self._done = False  # taken or cancelled: whatever the thread makes now is closed
        self._thread = threading.Thread(
            target=self._make, args=(bwrap, host, port), name="sandbox-netns", daemon=True
        )
        self._thread.start()

    def _make(self, bwrap: str, host: str, port: int) -> None:
        try:
            namespace = open_network_namespace(bwrap, host, port)
        except Exception as error:  # never lose the thread's failure silently
            _logger.debug("sandbox: making a network namespace failed: %s", error)
            return
        with self._lock:
            if not self._done:
                self._namespace = namespace
                return
        if namespace is not None:
            namespace.close_listener()
            namespace.close()

    def take(self) -> NetworkNamespace | None:
        """The namespace, waiting for it if needed; None if it could not be made."""
        self._thread.join(2 * _TIMEOUT_S)
        with self._lock:
            self._done = True
            namespace, self._namespace = self._namespace, None
        return namespace

    def cancel(self) -> None:
        """Close the namespace (now, or when the thread has made it); idempotent."""
        with self._lock:
            self._done = True
            namespace, self._namespace = self._namespace, None
        if namespace is not None:
            namespace.close_listener()
            namespace.close()


def _unsupported(bwrap: str, nsenter: str, reason: str) -> None:
    if _support.get((bwrap, nsenter)) is None:
        _logger.debug(
            "sandbox: processes with allowed domains use a forwarder each (slower start): %s",
            reason,
        )
    _support[(bwrap, nsenter)] = reason


def reset_join_support() -> None:
    """Forget what was verified (tests)."""
    _support.clear()
