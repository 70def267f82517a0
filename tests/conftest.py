"""Shared fixtures: the fake OpenAI-compatible server and a quiet, offline litellm."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# The package is installed in editable mode through an import hook, and pytest puts tests/ on
# sys.path: tests/runtime/ would then shadow the real `runtime` package as a namespace package.
# The repository root first on sys.path makes the real package win (and `tests.fakellm` importable).
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.fakellm import FakeLLM, no_proxy_env  # noqa: E402 - needs the path fix above

# Set at collection too, so a test module that imports litellm at import time never fetches the
# remote price map.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# The runtime caches model facts under $XDG_CACHE_HOME: the suite, and every process it starts,
# writes there instead of the user's home.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="perstack-test-cache-")
# The studio's demo pauses before each answer so a person can watch it; tests need not wait.
os.environ["PERSTACK_DEMO_PACE"] = "0"


@pytest.fixture(autouse=True)
def _litellm_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """litellm never fetches its price map, and no machine proxy stands before the fake server."""
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    for name, value in no_proxy_env(os.environ).items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def _fake_llm_server() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    yield fake
    fake.close()


@pytest.fixture
def fake_llm(_fake_llm_server: FakeLLM) -> Iterator[FakeLLM]:
    """A FakeLLM with an empty script and no recorded requests.

    One server serves the whole session (starting one costs little, but a stable port keeps
    litellm's client cache warm); each test gets it reset.
    """
    _fake_llm_server.reset()
    yield _fake_llm_server
    _fake_llm_server.reset()
