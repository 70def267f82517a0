"""Remote transports: legacy SSE and streamable HTTP, to public HTTPS (or loopback) endpoints.

Streamable-HTTP headers may use ``${VAR}`` references, resolved against the run's environment.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from runtime.config.schema import (
    McpSseSkill,
    McpStreamableHttpSkill,
    is_loopback_host,
    is_private_host,
)
from runtime.errors import SkillError

if TYPE_CHECKING:
    from mcp.client._transport import TransportStreams

__all__ = ["remote_transport"]

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def remote_transport(
    name: str, config: McpSseSkill | McpStreamableHttpSkill, env: Mapping[str, str]
) -> AbstractAsyncContextManager[TransportStreams]:
    """The transport to a remote skill's endpoint, checked before anything connects.

    Args:
        name: The skill's name, for error messages.
        config: The skill's configuration.
        env: The run's environment, for the headers' ``${VAR}`` references.

    Returns:
        A context manager that connects on entry and disconnects on exit.

    Raises:
        SkillError: The endpoint is neither public HTTPS nor loopback, or a header uses a
            variable that is not set.
    """
    endpoint = config.endpoint
    parsed = urlparse(endpoint)
    # Re-checked at connect time (Perstack does too): the config may come from elsewhere.
    public_https = parsed.scheme == "https" and not is_private_host(parsed.hostname)
    loopback = parsed.scheme in ("http", "https") and is_loopback_host(parsed.hostname)
    if not (public_https or loopback):
        raise SkillError(
            f'Skill "{name}": endpoint {endpoint!r} must be a public HTTPS URL '
            "(or a loopback URL for testing)",
            title="Invalid skill endpoint",
        )
    if isinstance(config, McpStreamableHttpSkill):
        headers = {key: _expand(name, key, value, env) for key, value in config.headers.items()}
        return _streamable_transport(endpoint, headers)
    from mcp.client.sse import sse_client

    return sse_client(endpoint, timeout=30.0)


def _expand(name: str, header: str, value: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        variable = match.group(1)
        found = env.get(variable)
        if not found:
            raise SkillError(
                f'Skill "{name}": header {header!r} uses ${{{variable}}}, but '
                f"environment variable {variable} is not set. Set it in the environment "
                "or in .env.",
                title="Missing environment variable",
            )
        return found

    return _ENV_REFERENCE.sub(replace, value)


@asynccontextmanager
async def _streamable_transport(
    endpoint: str, headers: Mapping[str, str]
) -> AsyncIterator[TransportStreams]:
    # Our own HTTP client so the headers apply to every request; the transport does not close
    # a client it was given, so it is closed here, in the same task.
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    timeout = httpx2.Timeout(30.0, read=300.0)
    async with httpx2.AsyncClient(headers=dict(headers), timeout=timeout) as http:
        async with streamable_http_client(endpoint, http_client=http) as streams:
            yield streams
