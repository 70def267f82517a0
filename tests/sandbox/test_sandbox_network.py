"""The shared network namespace of a sandbox's commands with allowed domains (``netns.py``).

Commands of one Sandbox with the same allowed domains join one loopback-only network namespace,
made at the first of them, whose listener the runtime's proxy serves; other domain sets get
their own. Where joining does not work, each command runs behind its own forwarder instead.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.sandbox import ProxyDecision, Sandbox, netns
from tests.sandbox.sandbox_helpers import ROOT, TIMEOUT_S, run, run_python

NETNS = "import os; print(os.readlink('/proc/self/ns/net'))"


@pytest.fixture(autouse=True)
def _fresh_join_support() -> Iterator[None]:
    """Each test decides afresh whether joining works (some tests make it fail)."""
    netns.reset_join_support()
    yield
    netns.reset_join_support()


def _open_namespace_inodes() -> set[str]:
    """The network namespaces this process holds a descriptor of."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("net:["):
            found.add(target)
    return found


def _processes_in(namespace: str) -> list[int]:
    """Live processes (of any uid we can see) whose network namespace is ``namespace``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/net") == namespace:
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


async def test_commands_with_the_same_domains_share_one_namespace(
    sandbox: Sandbox, child_env: dict[str, str]
) -> None:
    host = os.readlink("/proc/self/ns/net")
    first = sandbox.wrap([sys.executable, "-c", NETNS], env=child_env, allowed_domains=["a.com"])
    second = sandbox.wrap([sys.executable, "-c", NETNS], env=child_env, allowed_domains=["a.com"])
    other = sandbox.wrap([sys.executable, "-c", NETNS], env=child_env, allowed_domains=["b.com"])
    for command in (first, second, other):
        command.cleanup()
    assert os.path.basename(first.command) == "nsenter"
    assert first.proxy is not None and first.proxy is second.proxy
    assert other.proxy is not first.proxy

    seen = [
        (await run_python(sandbox, NETNS, child_env, domains=domains)).stdout.strip()
        for domains in (["a.com"], ["A.com."], ["b.com"], [])
    ]
    assert seen[0] == seen[1]  # same domain set (as the allow-list normalizes it)
    assert len({seen[0], seen[2], seen[3], host}) == 4  # the rest: each its own, never the host's
    assert seen[0] in _open_namespace_inodes()
    # No process of ours lives in the namespace between commands: the runtime holds it by fd.
    assert _processes_in(seen[0]) == []


async def test_blocked_and_allowed_in_a_shared_namespace(
    bwrap: str, workspace: Path, child_env: dict[str, str]
) -> None:
    decisions: list[ProxyDecision] = []
    sandbox = Sandbox(
        workspace, bwrap=bwrap, read_only_paths=[ROOT], on_proxy_access=decisions.append
    )
    code = textwrap.dedent(
        """
        import os, socket, urllib.request, urllib.error
        try:
            urllib.request.urlopen("http://blocked.example/", timeout=10)
        except urllib.error.HTTPError as e:
            print(e.code)
        s = socket.socket()
        try:
            s.connect(("1.1.1.1", 80))
        except OSError as e:
            print("direct", e.errno)
        """
    )
    with sandbox:
        for _ in range(2):  # the first command makes the namespace, the second joins it
            result = await run_python(sandbox, code, child_env, domains=["allowed.example"])
            assert result.returncode == 0, result.stderr
            assert result.stdout.split("\n")[:2] == ["403", "direct 101"]
    assert [(d.action, d.domain, d.reason) for d in decisions] == [
        ("blocked", "blocked.example", "Domain not in allowlist")
    ] * 2


async def test_no_capabilities_and_no_user_namespaces_after_joining(
    sandbox: Sandbox, child_env: dict[str, str]
) -> None:
    code = textwrap.dedent(
        """
        import ctypes, fcntl, os, socket, struct
        status = open("/proc/self/status").read()
        print([l.split()[1] for l in status.splitlines() if l.startswith("CapEff")][0])
        libc = ctypes.CDLL(None, use_errno=True)
        print("unshare", libc.unshare(0x10000000), ctypes.get_errno() != 0)
        # Taking loopback down needs CAP_NET_ADMIN over the namespace: refused.
        request = struct.pack("16sH14x", b"lo", 0)
        try:
            fcntl.ioctl(socket.socket(), 0x8914, request)  # SIOCSIFFLAGS
            print("lo down")
        except OSError as e:
            print("ioctl", e.errno)
        """
    )
    result = await run_python(sandbox, code, child_env, domains=["example.com"])
    assert result.returncode == 0, result.stderr
    caps, unshare, ioctl = result.stdout.splitlines()
    assert int(caps, 16) == 0
    assert unshare == "unshare -1 True"
    assert ioctl == "ioctl 1"  # EPERM


async def test_close_stops_the_proxy_and_releases_the_namespace(
    sandbox: Sandbox, child_env: dict[str, str]
) -> None:
    code = textwrap.dedent(
        """
        import os, socket, sys
        print(os.readlink("/proc/self/ns/net"), flush=True)
        sys.stdin.readline()
        try:
            socket.create_connection(("127.0.0.1", 3128), timeout=5)
            print("connected")
        except OSError as e:
            print("refused", e.errno)
        """
    )
    command = sandbox.wrap([sys.executable, "-c", code], env=child_env, allowed_domains=["x.io"])
    try:
        process = await asyncio.create_subprocess_exec(
            *command.argv,
            env=command.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdin is not None and process.stdout is not None
        async with asyncio.timeout(TIMEOUT_S):
            namespace = (await process.stdout.readline()).decode().strip()
            sandbox.close()
            assert command.proxy is not None and command.proxy.closed
            await asyncio.sleep(0.05)  # the server task unwinds and closes the listener
            process.stdin.write(b"go\n")
            await process.stdin.drain()
            out, _ = await process.communicate()
        assert out.decode().strip() == "refused 111"  # ECONNREFUSED: nothing listens anymore
        # Still held while a command built for it was not cleaned up...
        assert namespace in _open_namespace_inodes()
    finally:
        command.cleanup()
    # ...and released after.
    assert namespace not in _open_namespace_inodes()
    with pytest.raises(RuntimeError, match="closed"):
        sandbox.wrap(["true"], env=child_env, allowed_domains=["x.io"])
    sandbox.wrap(["true"], env=child_env).cleanup()  # no network: still fine


async def test_signals_and_exit_status_like_without_network(
    sandbox: Sandbox, child_env: dict[str, str]
) -> None:
    code = "import sys, time; print('up', flush=True); time.sleep(30)"
    codes = []
    for domains in ([], ["example.com"]):
        command = sandbox.wrap([sys.executable, "-c", code], env=child_env, allowed_domains=domains)
        try:
            process = await asyncio.create_subprocess_exec(
                *command.argv, env=command.env, stdout=asyncio.subprocess.PIPE
            )
            assert process.stdout is not None
            async with asyncio.timeout(TIMEOUT_S):
                assert await process.stdout.readline() == b"up\n"
                process.send_signal(signal.SIGTERM)
                codes.append(await process.wait())
        finally:
            command.cleanup()
    assert codes[0] == codes[1] == -signal.SIGTERM


def test_a_sandbox_used_from_two_event_loops(
    bwrap: str, workspace: Path, child_env: dict[str, str]
) -> None:
    sandbox = Sandbox(workspace, bwrap=bwrap, read_only_paths=[ROOT])
    proxies = []

    async def once() -> str:
        command = sandbox.wrap(["true"], env=child_env, allowed_domains=["example.com"])
        command.cleanup()
        proxies.append(command.proxy)
        fetch = (
            "import urllib.request, urllib.error\n"
            "try:\n    urllib.request.urlopen('http://evil.example/', timeout=10)\n"
            "except urllib.error.HTTPError as e:\n    print(e.code)\n"
        )
        result = await run_python(sandbox, fetch, child_env, domains=["example.com"])
        return result.stdout.strip()

    assert asyncio.run(once()) == "403"
    assert asyncio.run(once()) == "403"  # a new namespace and proxy on the new loop
    assert proxies[0] is not proxies[1] and proxies[0] is not None and proxies[0].closed
    sandbox.close()


@pytest.mark.parametrize("how", ["no-nsenter", "nsenter-fails", "disabled"])
async def test_forwarder_fallback(
    bwrap: str,
    workspace: Path,
    child_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    if how == "no-nsenter":
        monkeypatch.setattr(netns, "nsenter_path", lambda: None)
    elif how == "nsenter-fails":
        broken = tmp_path / "nsenter"
        broken.write_text("#!/bin/sh\necho 'nsenter: Operation not permitted' >&2\nexit 1\n")
        broken.chmod(0o755)
        monkeypatch.setattr(netns, "nsenter_path", lambda: str(broken))
    decisions: list[ProxyDecision] = []
    sandbox = Sandbox(
        workspace,
        bwrap=bwrap,
        read_only_paths=[ROOT],
        on_proxy_access=decisions.append,
        shared_network=how != "disabled",
    )
    command = sandbox.wrap(["true"], env=child_env, allowed_domains=["example.com"])
    command.cleanup()
    assert command.command == bwrap
    assert any(arg.endswith("/forward.py") for arg in command.args)
    if how != "disabled":
        assert netns.join_support(bwrap) is not None
    fetch = (
        "import socket, urllib.request, urllib.error\n"
        "try:\n    urllib.request.urlopen('http://evil.example/', timeout=10)\n"
        "except urllib.error.HTTPError as e:\n    print(e.code)\n"
        "try:\n    socket.create_connection(('1.1.1.1', 80), timeout=5)\n"
        "except OSError as e:\n    print('direct', e.errno)\n"
    )
    result = await run_python(sandbox, fetch, child_env, domains=["example.com"])
    assert result.stdout.split("\n")[:2] == ["403", "direct 101"], result.stderr
    assert [d.domain for d in decisions] == ["evil.example"]
    result = await run(sandbox, ["sh", "-c", "exit 3"], child_env, domains=["example.com"])
    assert result.returncode == 3
    sandbox.close()


def test_the_spare_namespace_is_released_on_close(bwrap: str, workspace: Path) -> None:
    before = _open_namespace_inodes()
    sandbox = Sandbox(workspace, bwrap=bwrap)
    spare = sandbox._networks.spare  # made in the background from the start
    assert spare is not None
    spare._thread.join(TIMEOUT_S)
    assert len(_open_namespace_inodes() - before) == 1
    sandbox.close()
    assert _open_namespace_inodes() == before

    # Closed before the spare is ready: released when it is.
    sandbox = Sandbox(workspace, bwrap=bwrap)
    spare = sandbox._networks.spare
    sandbox.close()
    assert spare is not None
    spare._thread.join(TIMEOUT_S)
    assert _open_namespace_inodes() == before


async def test_a_new_spare_follows_a_new_domain_set(
    sandbox: Sandbox, child_env: dict[str, str]
) -> None:
    sandbox.wrap(["true"], env=child_env, allowed_domains=["a.com"]).cleanup()
    assert sandbox._networks.spare is None  # taken by the first domain set
    await asyncio.sleep(0.5)  # after the command had time to start
    spare = sandbox._networks.spare
    assert spare is not None
    sandbox.wrap(["true"], env=child_env, allowed_domains=["a.com"]).cleanup()
    assert sandbox._networks.spare is spare  # the same domains reuse their namespace
    sandbox.wrap(["true"], env=child_env, allowed_domains=["b.com"]).cleanup()
    assert sandbox._networks.spare is None
    sandbox.close()
