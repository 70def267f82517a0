"""Fixtures of the model client tests (tests/runtime/test_model_clients_*.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from runtime.llm import LanguageModel
from tests.fakellm import FakeLLM
from tests.runtime.model_client_helpers import CLIENTS, PROVIDERS, api_model, make_model


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> str:
    """Which model client a test runs on: each test runs on both."""
    return str(request.param)


@pytest.fixture
async def model(fake_llm: FakeLLM, client: str) -> AsyncIterator[LanguageModel]:
    model = make_model(fake_llm.base_url, client=client)
    yield model
    await model.aclose()  # type: ignore[attr-defined]


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    """Which API a test speaks: OpenAI chat completions or Anthropic messages."""
    return str(request.param)


@pytest.fixture
async def api(fake_llm: FakeLLM, provider: str, client: str) -> AsyncIterator[LanguageModel]:
    model = api_model(fake_llm, provider, client)
    yield model
    await model.aclose()  # type: ignore[attr-defined]
