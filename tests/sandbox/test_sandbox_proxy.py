"""The allow-list and the proxy on their own, without bubblewrap (these run on any Linux)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.sandbox import AllowList, ProxyDecision, ProxyServer, registry_domains
from runtime.sandbox.policy import is_ip_literal, is_public_address, normalize_host


def test_allow_list_patterns() -> None:
    allow = AllowList(["api.example.com", "*.npmjs.org", "Registry.Example.NET."])
    assert allow.allows("api.example.com")
    assert allow.allows("API.EXAMPLE.COM.")
    assert not allow.allows("example.com")
    assert not allow.allows("evil-api.example.com")
    assert not allow.allows("api.example.com.evil.org")
    # As Perstack's Squid rule .npmjs.org: the apex and every subdomain.
    assert allow.allows("npmjs.org")
    assert allow.allows("registry.npmjs.org")
    assert allow.allows("a.b.npmjs.org")
    assert not allow.allows("npmjs.org.evil.com")
    assert not allow.allows("evilnpmjs.org")
    assert allow.allows("registry.example.net")
    assert not AllowList([])
    assert allow.patterns == ["api.example.com", "registry.example.net", "*.npmjs.org"]


def test_addresses() -> None:
    for address in ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.4", "169.254.169.254"]:
        assert not is_public_address(address)
    for address in ["::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "0.0.0.0", "100.64.0.1"]:
        assert not is_public_address(address)
    assert not is_public_address("224.0.0.1")
    assert not is_public_address("not an address")
    assert is_public_address("1.1.1.1")
    assert is_public_address("2606:4700:4700::1111")
    assert is_ip_literal("[::1]") and is_ip_literal("169.254.169.254")
    assert not is_ip_literal("example.com")
    assert normalize_host("[::1]") == "::1"
    assert normalize_host("Example.COM.") == "example.com"


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[tuple[ProxyServer, list[ProxyDecision]]]:
    decisions: list[ProxyDecision] = []
    server = ProxyServer(["localhost", "*.example.com"], on_access=decisions.append)
    server.listen(str(tmp_path / "proxy.sock"))
    yield server, decisions
    server.close()
    assert not (tmp_path / "proxy.sock").exists()


async def _ask(proxy: ProxyServer, request: bytes) -> bytes:
    assert proxy.path is not None
    reader, writer = await asyncio.open_unix_connection(proxy.path)
    writer.write(request)
    await writer.drain()
    async with asyncio.timeout(10):
        answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"garbage\r\n\r\n", b"400"),
        (b"GET /relative HTTP/1.1\r\nHost: example.com\r\n\r\n", b"400"),
        (b"GET https://a.example.com/ HTTP/1.1\r\n\r\n", b"400"),
        (b"CONNECT a.example.com:99999 HTTP/1.1\r\n\r\n", b"400"),
    ],
)
async def test_malformed_requests_are_refused(
    proxy: tuple[ProxyServer, list[ProxyDecision]], request_bytes: bytes, status: bytes
) -> None:
    server, decisions = proxy
    answer = await _ask(server, request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status)
    assert decisions == []


async def test_decisions_without_network(proxy: tuple[ProxyServer, list[ProxyDecision]]) -> None:
    server, decisions = proxy
    cases = [
        b"CONNECT evil.org:443 HTTP/1.1\r\n\r\n",
        b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n",
        b"CONNECT localhost:22 HTTP/1.1\r\n\r\n",
        b"CONNECT localhost:443 HTTP/1.1\r\n\r\n",
        b"GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\n\r\n",
    ]
    for request in cases:
        answer = await _ask(server, request)
        assert answer.startswith(b"HTTP/1.1 403 Forbidden"), answer
        assert b"Perstack sandbox" in answer
    assert [(d.action, d.domain, d.port) for d in decisions] == [
        ("blocked", "evil.org", 443),
        ("blocked", "::1", 443),
        ("blocked", "localhost", 22),
        ("blocked", "localhost", 443),
        ("blocked", "169.254.169.254", 80),
    ]


async def test_listen_needs_a_running_loop(tmp_path: Path) -> None:
    server = ProxyServer(["example.com"])
    result: list[BaseException] = []

    def outside_loop() -> None:
        try:
            server.listen(str(tmp_path / "x.sock"))
        except RuntimeError as error:
            result.append(error)

    await asyncio.to_thread(outside_loop)
    assert result and not (tmp_path / "x.sock").exists()


def test_launchers_get_their_package_registry() -> None:
    assert registry_domains("npx") == ["registry.npmjs.org"]
    assert registry_domains("/usr/local/bin/uvx") == ["pypi.org", "files.pythonhosted.org"]
    assert registry_domains("python") == []
