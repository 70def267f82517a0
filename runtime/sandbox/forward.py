"""In-sandbox forwarder: relay 127.0.0.1:PORT to the host proxy's UNIX socket, then run a command.

Usage (inside the sandbox, as the sandbox's command line builds it)::

    python -S -I forward.py --listen 127.0.0.1:3128 --unix /run/perstack/proxy/proxy.sock -- CMD...

The sandbox's network namespace has only loopback, so HTTP clients configured with
``HTTP_PROXY=http://127.0.0.1:3128`` reach this relay and through it the host-side proxy, which
enforces the allow-list. Anything that ignores the proxy variables has nowhere to connect to.

Used only where sandboxed processes cannot join a shared network namespace (see
:mod:`runtime.sandbox.netns`: no ``nsenter``, nested user namespaces refused), or with
``Sandbox(shared_network=False)``. There it runs before every sandboxed command that has
network access, so start-up time is the budget: it uses only C modules (``_socket``,
``_thread``, ``_signal``, ``posix``; ``socket``, ``signal`` and ``os`` would pull in ``enum``
and more, several milliseconds), imports nothing from ``runtime`` and is run with ``-S -I`` (no
site, no user paths). It listens before starting the command, so the command's first request
cannot race it, passes its own stdin, stdout and stderr to the command untouched (MCP stdio
servers speak through them), forwards termination signals, and exits with the command's status.
"""

from __future__ import annotations

# No stub exists for _signal; ``signal`` itself would import enum (several ms).
import _signal  # type: ignore[import-not-found]
import _socket
import _thread
import posix  # ``os`` is not loaded under -S; it would cost ~1.5 ms more
import sys

# Not ``from typing import TYPE_CHECKING``: importing typing costs ~8 ms; mypy knows this name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

_CHUNK = 65536
_FORWARDED_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
_child = [0]


def _usage(message: str) -> NoReturn:
    sys.stderr.write("forward: " + message + "\n")
    posix._exit(2)


def _parse(argv: list[str]) -> tuple[str | None, str | None, list[str]]:
    listen: str | None = None
    unix: str | None = None
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            return listen, unix, argv[index + 1 :]
        if arg in ("--listen", "--unix") and index + 1 < len(argv):
            if arg == "--listen":
                listen = argv[index + 1]
            else:
                unix = argv[index + 1]
            index += 2
            continue
        _usage("unexpected argument " + repr(arg))
    return listen, unix, []


def _pump(source: _socket.socket, sink: _socket.socket, done: list[Any]) -> None:
    try:
        while True:
            data = source.recv(_CHUNK)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    try:
        sink.shutdown(_socket.SHUT_WR)
    except OSError:
        pass
    # The second direction to finish closes both sockets.
    with done[0]:
        done[1] += 1
        last = done[1] == 2
    if last:
        source.close()
        sink.close()


def _serve(client: _socket.socket, unix_path: str) -> None:
    upstream = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        upstream.connect(unix_path)
    except OSError:
        upstream.close()
        client.close()
        return
    done: list[Any] = [_thread.allocate_lock(), 0]
    _thread.start_new_thread(_pump, (client, upstream, done))
    _pump(upstream, client, done)


def _accept_loop(listener: _socket.socket, unix_path: str) -> None:
    while True:
        try:
            fd, _address = listener._accept()  # type: ignore[attr-defined]
        except OSError:
            continue
        client = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM, 0, fd)
        _thread.start_new_thread(_serve, (client, unix_path))


def _forward_signal(signum: int, _frame: object) -> None:
    if _child[0]:
        try:
            posix.kill(_child[0], signum)
        except OSError:
            pass
    else:
        posix._exit(128 + signum)


def main(argv: list[str]) -> NoReturn:
    """Listen, start the command, relay until it exits, exit with its status."""
    listen, unix_path, command = _parse(argv)
    if not listen or not unix_path or not command:
        _usage("usage: forward.py --listen HOST:PORT --unix PATH -- COMMAND [ARGS...]")
    host, _, port = listen.rpartition(":")
    listener = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    listener.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, int(port)))
        listener.listen(128)
    except (OSError, ValueError) as error:
        _usage("cannot listen on " + listen + ": " + str(error))
    for name in _FORWARDED_SIGNALS:
        _signal.signal(getattr(_signal, name), _forward_signal)
    try:
        # Sockets are created non-inheritable, so the command does not get the listener.
        # SIGPIPE and SIGXFSZ back to default: Python ignores them, and `cmd | head` needs them.
        _child[0] = posix.posix_spawnp(
            command[0],
            command,
            posix.environ,
            setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ),
        )
    except OSError as error:
        sys.stderr.write("forward: cannot run " + command[0] + ": " + str(error) + "\n")
        posix._exit(127)
    _thread.start_new_thread(_accept_loop, (listener, unix_path))
    _pid, status = posix.waitpid(_child[0], 0)
    code = posix.waitstatus_to_exitcode(status)
    if code < 0:
        # Die of the same signal, so whoever waits on us sees what happened to the command.
        _signal.signal(-code, _signal.SIG_DFL)
        posix.kill(posix.getpid(), -code)
        code = 128 - code
    posix._exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
