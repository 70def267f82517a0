"""The FakeLLM: a scripted server in a daemon thread, its addresses, script and records."""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from .ids import _Ids
from .replies import Reply, ScriptItem, reply_error
from .server import _Handler, _Server


def no_proxy_env(environ: Mapping[str, str]) -> dict[str, str]:
    """NO_PROXY / no_proxy values extended with the loopback hosts."""
    out: dict[str, str] = {}
    for name in ("NO_PROXY", "no_proxy"):
        entries = [e for e in environ.get(name, "").split(",") if e.strip()]
        for host in ("127.0.0.1", "localhost"):
            if host not in entries:
                entries.append(host)
        out[name] = ",".join(entries)
    return out


class FakeLLM:
    """A scripted OpenAI- and Anthropic-compatible server on 127.0.0.1.

    Thread-safe: tests, the server's request threads and a subprocess may all use it at once.

    Attributes:
        requests: The JSON bodies of the model requests received (both APIs), in order.
        request_headers: The headers of those requests (same order), names lowercased.
        request_times: Wall-clock time (time.time()) each request arrived, for latency figures.
        request_paths: The path each request was sent to (same order), e.g. ``/v1/messages``.
        default: The reply used when the script is empty (None: answer 500 "script exhausted").
    """

    def __init__(
        self, *, default: ScriptItem | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.default = default
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self.request_times: list[float] = []
        """Wall-clock time (time.time()) each request arrived, for latency figures."""
        self.request_paths: list[str] = []
        """The path (with any query) each request was sent to, e.g. ``/v1/chat/completions``."""
        self._queue: deque[ScriptItem] = deque()
        self._lock = threading.Lock()
        self._ids = _Ids()
        self._stopped = threading.Event()
        self._server = _Server((host, port), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fakellm:{self.port}",
            daemon=True,
        )
        self._thread.start()

    # -- addresses

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no path)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``http://127.0.0.1:<port>/v1``: use as OPENAI_BASE_URL."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The Anthropic base URL, ``http://127.0.0.1:<port>/v1``: clients POST to ``/messages``
        under it (litellm, given it as api_base, POSTs to ``/v1/v1/messages``: also served)."""
        return f"{self.url}/v1"

    def env(self, api_key: str = "sk-fake") -> dict[str, str]:
        """Environment variables that point provider ``openai`` at this server.

        Merge them over ``os.environ`` for a subprocess. They include NO_PROXY entries for the
        loopback host, so a proxy configured on the machine never intercepts the fake.
        """
        return {
            "OPENAI_BASE_URL": self.base_url,
            "OPENAI_API_KEY": api_key,
            **no_proxy_env(os.environ),
        }

    def process_env(self) -> dict[str, str]:
        """The whole environment of a ``perstack`` subprocess that talks to this server.

        This process's environment without its API keys (only the fake's) and without a
        storage override (jobs go to the workspace), plus :meth:`env`.
        """
        inherited = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        inherited.pop("PERSTACK_STORAGE_PATH", None)
        return {**inherited, **self.env()}

    def anthropic_env(self, api_key: str = "sk-ant-fake") -> dict[str, str]:
        """Environment variables that point provider ``anthropic`` at this server.

        ``ANTHROPIC_BASE_URL`` is ``<url>/v1``; NO_PROXY entries as for :meth:`env`.
        """
        return {
            "ANTHROPIC_BASE_URL": self.anthropic_base_url,
            "ANTHROPIC_API_KEY": api_key,
            **no_proxy_env(os.environ),
        }

    # -- script

    def script(self, *replies: ScriptItem) -> FakeLLM:
        """Append replies to the queue (one is consumed per model request)."""
        with self._lock:
            self._queue.extend(replies)
        return self

    def push(self, reply: ScriptItem) -> FakeLLM:
        """Append one reply to the queue."""
        return self.script(reply)

    @property
    def pending(self) -> int:
        """How many scripted replies have not been consumed yet."""
        with self._lock:
            return len(self._queue)

    @property
    def last_request(self) -> dict[str, Any]:
        """The body of the latest model request."""
        with self._lock:
            if not self.requests:
                raise AssertionError("the fake LLM has received no request")
            return self.requests[-1]

    def reset(self) -> None:
        """Forget the script, the default and the recorded requests; ids restart at 1."""
        with self._lock:
            self._ids = _Ids()
            self._queue.clear()
            self.requests.clear()
            self.request_headers.clear()
            self.request_times.clear()
            self.request_paths.clear()
            self.default = None

    def _next(self, body: dict[str, Any], headers: dict[str, str], path: str = "") -> Reply:
        with self._lock:
            self.requests.append(body)
            self.request_headers.append(headers)
            self.request_times.append(time.time())
            self.request_paths.append(path)
            number = len(self.requests)
            item = self._queue.popleft() if self._queue else self.default
        if item is None:
            return reply_error(
                500,
                f"fake LLM script exhausted: request #{number} has no scripted reply "
                "(script more replies or set a default)",
            )
        if callable(item):
            return item(body)
        return item

    # -- lifecycle

    def close(self) -> None:
        """Stop serving; pending delayed replies end without answering."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
