"""Loading perstack.toml from a URL: only https://raw.githubusercontent.com, no redirects,
clear fetch errors and the size limit, with the network replaced by a mock transport."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from runtime.config import loader as config_loader
from runtime.config.loader import load_config
from runtime.config.problems import ConfigLimitError
from runtime.errors import ConfigError


@pytest.mark.parametrize(
    "url",
    [
        "http://raw.githubusercontent.com/org/repo/main/perstack.toml",
        "https://example.com/perstack.toml",
        "https://gist.githubusercontent.com/org/abc/raw/perstack.toml",
    ],
)
def test_only_https_raw_githubusercontent_urls_are_allowed(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(url, cwd=tmp_path)
    assert str(info.value) == (
        f'Config URL "{url}" is not allowed: only https://raw.githubusercontent.com/... URLs '
        "can be loaded. Download the file and pass its local path to --config instead."
    )


RAW_URL = "https://raw.githubusercontent.com/org/repo/main/perstack.toml"


@pytest.fixture
def remote(monkeypatch: pytest.MonkeyPatch) -> dict[str, httpx.Response]:
    """Responses by URL, served instead of the network."""
    responses: dict[str, httpx.Response] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        return responses.get(str(request.url), httpx.Response(404))

    monkeypatch.setattr(config_loader, "_remote_transport", httpx.MockTransport(handler))
    return responses


def test_remote_config_is_fetched(remote: dict[str, httpx.Response], tmp_path: Path) -> None:
    remote[RAW_URL] = httpx.Response(
        200, content=b'modle = "m"\n[experts."a"]\ninstruction = "x"\n'
    )
    loaded = load_config(RAW_URL, cwd=tmp_path)
    assert loaded.path is None
    assert loaded.label == RAW_URL
    assert loaded.base_dir == tmp_path
    assert loaded.config.experts["a"].instruction == "x"
    assert [str(w) for w in loaded.warnings] == [
        f"{RAW_URL}:1 modle: unknown key (ignored; did you mean model?)"
    ]


def test_remote_redirects_are_not_followed(
    remote: dict[str, httpx.Response], tmp_path: Path
) -> None:
    remote[RAW_URL] = httpx.Response(302, headers={"location": "https://evil.example.com/x"})
    with pytest.raises(ConfigError) as info:
        load_config(RAW_URL, cwd=tmp_path)
    assert str(info.value) == (
        f'Config URL "{RAW_URL}" redirects to "https://evil.example.com/x"; redirects are not '
        "followed. Use the final raw.githubusercontent.com URL."
    )


def test_remote_http_errors(remote: dict[str, httpx.Response], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(RAW_URL, cwd=tmp_path)
    assert str(info.value) == f'Could not fetch config "{RAW_URL}": HTTP 404 Not Found'


def test_remote_network_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    monkeypatch.setattr(config_loader, "_remote_transport", httpx.MockTransport(refuse))
    with pytest.raises(ConfigError) as info:
        load_config(RAW_URL, cwd=tmp_path)
    assert str(info.value) == f'Could not fetch config "{RAW_URL}": connection refused'


def test_a_remote_config_over_the_limit_is_not_read_to_the_end(
    remote: dict[str, httpx.Response], tmp_path: Path
) -> None:
    remote[RAW_URL] = httpx.Response(200, content=b"#" * 3_000_000)
    with pytest.raises(ConfigLimitError) as info:
        load_config(RAW_URL, cwd=tmp_path)
    assert str(info.value).startswith(
        f"{RAW_URL}: too large: over the limit of 1,048,576 bytes (1 MiB)"
    )
