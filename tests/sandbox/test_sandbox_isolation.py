"""Real processes in a real bubblewrap sandbox: what they can and cannot see, write and reach.

Each test runs a small Python program inside the sandbox and asserts on what it printed. The
network tests start servers on the host's loopback and check that the sandbox cannot reach them
directly (its own network namespace), only through the proxy and only when allowed.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.sandbox import ProxyDecision, Sandbox
from tests.sandbox.sandbox_helpers import AWS_SECRET, ROOT, SSH_KEY, exists, run, run_python


async def test_reads_outside_the_workspace_are_blocked(
    sandbox: Sandbox, child_env: dict[str, str], tmp_path: Path, fake_home: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside-secret")
    code = textwrap.dedent(
        f"""
        import os
        for path in [{str(outside / "secret.txt")!r}, {str(fake_home / ".ssh/id_rsa")!r},
                     {str(fake_home / ".aws/credentials")!r}, os.path.expanduser("~/.ssh/id_rsa"),
                     "/etc/shadow"]:
            try:
                with open(path) as f:
                    print(path, "READ", repr(f.read()))
            except OSError as e:
                print(path, "DENIED", type(e).__name__)
        print("HOME-LISTING", sorted(os.listdir(os.path.expanduser("~"))))
        """
    )
    result = await run_python(sandbox, code, child_env)
    assert result.returncode == 0, result.stderr
    assert "outside-secret" not in result.stdout
    assert SSH_KEY not in result.stdout and AWS_SECRET not in result.stdout
    lines = result.stdout.splitlines()
    assert all("DENIED" in line for line in lines[:4]), result.stdout
    # /etc/shadow stays in place (programs expect it) but reads empty, even for root.
    assert lines[4] == "/etc/shadow READ ''"
    assert lines[5] == "HOME-LISTING []"


async def test_writes_outside_the_workspace_fail_and_inside_succeed(
    sandbox: Sandbox, child_env: dict[str, str], workspace: Path, tmp_path: Path
) -> None:
    marker = f"perstack-sandbox-test-{uuid.uuid4().hex}"
    targets = [
        str(tmp_path / "escaped.txt"),
        "/etc/" + marker,
        "/usr/" + marker,
        str(ROOT / marker),
    ]
    code = textwrap.dedent(
        f"""
        import os
        for path in {targets!r}:
            try:
                with open(path, "w") as f:
                    f.write("x")
                print(path, "WROTE")
            except OSError as e:
                print(path, "DENIED", type(e).__name__)
        with open("inside.txt", "w") as f:
            f.write("written in the sandbox")
        with open("/tmp/{marker}", "w") as f:
            f.write("private tmp")
        print("TMP", os.listdir("/tmp"))
        """
    )
    result = await run_python(sandbox, code, child_env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("WROTE")  # tmp_path is under the sandbox's private /tmp...
    assert not (tmp_path / "escaped.txt").exists()  # ...so nothing reached the host's
    for line in lines[1:4]:
        assert "DENIED" in line, result.stdout
    for target in targets[1:]:
        assert not exists(target)
    assert (workspace / "inside.txt").read_text() == "written in the sandbox"
    assert not exists(Path("/tmp", marker))  # /tmp is private


async def test_symlinks_out_of_the_workspace_lead_nowhere(
    sandbox: Sandbox, child_env: dict[str, str], workspace: Path, tmp_path: Path, fake_home: Path
) -> None:
    (tmp_path / "outside.txt").write_text("outside-secret")
    (workspace / "to-outside").symlink_to(tmp_path / "outside.txt")
    (workspace / "to-key").symlink_to(fake_home / ".ssh" / "id_rsa")
    (workspace / "to-home").symlink_to(fake_home)
    code = textwrap.dedent(
        """
        import os
        for name in ["to-outside", "to-key", "to-home/.aws/credentials"]:
            try:
                print(name, "READ", open(name).read())
            except OSError as e:
                print(name, "DENIED", type(e).__name__)
        try:
            open("to-home/planted", "w").write("x")
            print("WROTE")
        except OSError as e:
            print("write DENIED", type(e).__name__)
        """
    )
    result = await run_python(sandbox, code, child_env)
    assert result.returncode == 0, result.stderr
    assert "secret" not in result.stdout and "fake-aws" not in result.stdout
    assert result.stdout.count("DENIED") >= 3
    assert not (fake_home / "planted").exists()


async def test_home_secrets_masked_even_when_the_workspace_is_the_home(
    bwrap: str, child_env: dict[str, str], fake_home: Path
) -> None:
    (fake_home / "project.txt").write_text("work")
    (fake_home / ".env").write_text("FIREWORKS_API_KEY=sk-dotenv-secret")
    sandbox = Sandbox(fake_home, bwrap=bwrap, read_only_paths=[ROOT])
    code = textwrap.dedent(
        """
        import os
        print(open("project.txt").read())
        print(sorted(os.listdir(".ssh")), sorted(os.listdir(".aws")))
        print(repr(open(".netrc").read()), repr(open(".env").read()))
        """
    )
    result = await run_python(sandbox, code, child_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["work", "[] []", "'' ''"]


async def test_storage_and_env_files_in_the_workspace_are_hidden(
    sandbox: Sandbox, child_env: dict[str, str], workspace: Path
) -> None:
    jobs = workspace / "perstack" / "jobs" / "job1"
    jobs.mkdir(parents=True)
    (jobs / "job.json").write_text('{"secret": "checkpoint"}')
    (workspace / ".env").write_text("OPENAI_API_KEY=sk-dotenv-secret")
    (workspace / ".env.local").write_text("ANTHROPIC_API_KEY=sk-local-secret")
    (workspace / ".env.production").write_text("DEPLOY_TOKEN=sk-prod-secret")
    (workspace / ".env.example").write_text("OPENAI_API_KEY=")
    code = textwrap.dedent(
        """
        import os
        print(os.listdir("perstack"))
        try:
            open("perstack/forged.json", "w")
            print("WROTE")
        except OSError as e:
            print("DENIED", type(e).__name__)
        print(repr(open(".env").read()), repr(open(".env.local").read()))
        print(repr(open(".env.production").read()), repr(open(".env.example").read()))
        """
    )
    result = await run_python(sandbox, code, child_env)
    assert result.returncode == 0, result.stderr
    # Every env file at the top is blank; a template of variable names stays readable.
    assert result.stdout.splitlines() == [
        "[]",
        "DENIED OSError",
        "'' ''",
        "'' 'OPENAI_API_KEY='",
    ]
    assert not (workspace / "perstack" / "forged.json").exists()


async def test_only_the_given_environment_reaches_the_process(
    sandbox: Sandbox, child_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "parent-aws-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "parent-github-token")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/run/user/0/ssh-agent.sock")
    monkeypatch.setenv("HTTPS_PROXY", "http://corporate-proxy:8080")
    given = {**child_env, "SKILL_TOKEN": "declared-in-requiredEnv"}
    result = await run_python(
        sandbox, "import os, json; print(json.dumps(dict(os.environ)))", given
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["SKILL_TOKEN"] == "declared-in-requiredEnv"
    for name in ("AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "SSH_AUTH_SOCK", "HTTPS_PROXY"):
        assert name not in seen
    assert "parent-" not in result.stdout
    # Besides what we passed: the sandbox marker and what bwrap/Python set themselves.
    assert set(seen) - set(given) <= {"PERSTACK_SANDBOX", "PWD", "LC_CTYPE"}


async def test_no_capabilities_and_no_host_processes(
    sandbox: Sandbox, child_env: dict[str, str]
) -> None:
    code = textwrap.dedent(
        """
        import os
        status = open("/proc/self/status").read()
        print([l.split()[1] for l in status.splitlines() if l.startswith("CapEff")][0])
        print(len([p for p in os.listdir("/proc") if p.isdigit()]))
        """
    )
    result = await run_python(sandbox, code, child_env)
    assert result.returncode == 0, result.stderr
    caps, processes = result.stdout.split()
    assert int(caps, 16) == 0
    assert int(processes) <= 3  # bwrap's init, the program, maybe its own /proc reader


# Network -------------------------------------------------------------------------------------


class LocalServers:
    """An HTTP server and a TCP echo server on the host's loopback, recording what they got."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.http_port = 0
        self.echo_port = 0

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head.decode())
        body = b"hello from the host"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data.upper())
            await writer.drain()
        writer.close()


@pytest.fixture
async def servers() -> AsyncIterator[LocalServers]:
    local = LocalServers()
    http = await asyncio.start_server(local._http, "127.0.0.1", 0)
    echo = await asyncio.start_server(local._echo, "127.0.0.1", 0)
    local.http_port = http.sockets[0].getsockname()[1]
    local.echo_port = echo.sockets[0].getsockname()[1]
    async with http, echo:
        yield local


def _direct_connect_code(targets: list[tuple[str, int]]) -> str:
    """Connect with a raw socket, ignoring every proxy variable."""
    return textwrap.dedent(
        f"""
        import socket
        for host, port in {targets!r}:
            s = socket.socket()
            s.settimeout(5)
            try:
                s.connect((host, port))
                print(host, "CONNECTED")
            except OSError as e:
                print(host, "FAILED", e.errno, type(e).__name__)
            finally:
                s.close()
        """
    )


def _fetch_code(url: str) -> str:
    """Fetch through HTTP_PROXY (NO_PROXY dropped so localhost goes through the proxy too)."""
    return textwrap.dedent(
        f"""
        import os, urllib.request, urllib.error
        os.environ.pop("NO_PROXY", None); os.environ.pop("no_proxy", None)
        try:
            with urllib.request.urlopen({url!r}, timeout=10) as response:
                print(response.status, response.read().decode())
        except urllib.error.HTTPError as e:
            print(e.code, e.read().decode().strip())
        except OSError as e:
            print("FAILED", e)
        """
    )


@pytest.mark.parametrize("domains", [(), ("localhost",)], ids=["no-network", "with-proxy"])
async def test_direct_connections_fail_at_the_network_level(
    sandbox: Sandbox, child_env: dict[str, str], servers: LocalServers, domains: tuple[str, ...]
) -> None:
    targets = [("169.254.169.254", 80), ("127.0.0.1", servers.http_port), ("1.1.1.1", 443)]
    result = await run_python(sandbox, _direct_connect_code(targets), child_env, domains=domains)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all("FAILED" in line for line in lines), result.stdout
    # No route at all to the metadata address or the internet; the host's loopback service is
    # not there (the sandbox has its own loopback).
    assert lines[0].split()[2] == "101"  # ENETUNREACH
    assert lines[1].split()[2] == "111"  # ECONNREFUSED
    assert servers.requests == []


async def test_proxy_blocks_what_is_not_allowed(
    bwrap: str, workspace: Path, child_env: dict[str, str], servers: LocalServers
) -> None:
    decisions: list[ProxyDecision] = []
    sandbox = Sandbox(
        workspace, bwrap=bwrap, read_only_paths=[ROOT], on_proxy_access=decisions.append
    )
    urls = [
        "http://example.com/",  # not on the list
        "http://169.254.169.254/latest/meta-data/",  # metadata by address
        f"http://localhost:{servers.http_port}/",  # on the list, but loopback and odd port
        "http://localhost/",  # on the list, port 80, but resolves to loopback
    ]
    for url in urls:
        result = await run_python(sandbox, _fetch_code(url), child_env, domains=["localhost"])
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("403 "), (url, result.stdout)
    assert servers.requests == []
    assert [(d.action, d.domain, d.port) for d in decisions] == [
        ("blocked", "example.com", 80),
        ("blocked", "169.254.169.254", 80),
        ("blocked", "localhost", servers.http_port),
        ("blocked", "localhost", 80),
    ]
    reasons = [d.reason or "" for d in decisions]
    assert reasons[0] == "Domain not in allowlist"
    assert reasons[1] == "IP address destinations are not allowed"
    assert reasons[2].startswith("Port ")
    assert reasons[3].startswith("Resolves to a non-public address")


async def test_proxy_allows_an_allowed_domain(
    bwrap: str, workspace: Path, child_env: dict[str, str], servers: LocalServers
) -> None:
    decisions: list[ProxyDecision] = []
    # Tests only: the allowed "domain" is a server on the host's loopback, any port.
    sandbox = Sandbox(
        workspace,
        bwrap=bwrap,
        read_only_paths=[ROOT],
        on_proxy_access=decisions.append,
        allowed_ports=None,
        allow_private_for_tests=True,
    )
    url = f"http://localhost:{servers.http_port}/data?x=1"
    result = await run_python(sandbox, _fetch_code(url), child_env, domains=["localhost"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "200 hello from the host"
    assert decisions == [ProxyDecision("allowed", "localhost", servers.http_port)]
    [request] = servers.requests
    assert request.startswith("GET /data?x=1 HTTP/1.1\r\n")  # origin form for the server
    assert "Connection: close" in request

    # HTTPS clients use CONNECT: a raw tunnel, here to the echo server.
    tunnel = textwrap.dedent(
        f"""
        import os, socket
        host, port = os.environ["HTTPS_PROXY"].rsplit("/", 1)[1].split(":")
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(b"CONNECT localhost:{servers.echo_port} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        head = b""
        while not head.endswith(b"\\r\\n\\r\\n"):
            head += s.recv(1)
        print(head.split(b"\\r\\n")[0].decode())
        s.sendall(b"ping through the tunnel")
        print(s.recv(100).decode())
        """
    )
    result = await run_python(sandbox, tunnel, child_env, domains=["localhost"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "HTTP/1.1 200 Connection established",
        "PING THROUGH THE TUNNEL",
    ]
    assert decisions[-1] == ProxyDecision("allowed", "localhost", servers.echo_port)


async def test_exit_status_and_stdio_pass_through_the_forwarder(
    sandbox: Sandbox, child_env: dict[str, str]
) -> None:
    code = "import sys; sys.stdout.write(sys.stdin.read() or 'no stdin'); sys.exit(7)"
    for domains in ((), ("example.com",)):
        result = await run_python(sandbox, code, child_env, domains=domains)
        assert (result.returncode, result.stdout) == (7, "no stdin")


async def test_missing_command_fails_cleanly(sandbox: Sandbox, child_env: dict[str, str]) -> None:
    for domains in ((), ("example.com",)):
        result = await run(sandbox, ["no-such-program-xyz"], child_env, domains=domains)
        assert result.returncode != 0
        assert "no-such-program-xyz" in result.stderr
