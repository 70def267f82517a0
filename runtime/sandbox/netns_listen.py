"""Run once in a fresh network namespace: create the proxy's listener there and hand it out.

Usage (as :mod:`runtime.sandbox.netns` builds it, under ``bwrap --unshare-user --unshare-net``)::

    python -S -I netns_listen.py FD HOST:PORT

Binds and listens on ``HOST:PORT`` in the namespace it runs in, opens ``/proc/self/ns/net``, sends
both descriptors in one message (``SCM_RIGHTS``) over the inherited UNIX socket ``FD`` and exits.
A socket belongs for good to the network namespace it was created in, so the runtime can then
accept, on its own event loop, the connections that sandboxed processes joining the namespace make
to ``HOST:PORT``: no process of ours has to stay inside. Stdlib C modules only, like
``forward.py``, because this runs while a sandboxed process waits to start.
"""

from __future__ import annotations

import _socket
import _struct
import posix
import sys


def main(argv: list[str]) -> None:
    """Create the listener, send it and the namespace to the runtime."""
    if len(argv) != 2:
        sys.stderr.write("usage: netns_listen.py FD HOST:PORT\n")
        posix._exit(2)
    channel = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, int(argv[0]))
    host, _, port = argv[1].rpartition(":")
    listener = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    listener.bind((host, int(port)))
    listener.listen(128)
    namespace = posix.open("/proc/self/ns/net", posix.O_RDONLY | posix.O_CLOEXEC)
    fds = _struct.pack("2i", listener.fileno(), namespace)
    channel.sendmsg([b"ok"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])


if __name__ == "__main__":
    main(sys.argv[1:])
