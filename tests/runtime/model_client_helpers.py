"""Shared helpers of the model client tests (tests/runtime/test_model_clients_*.py).

Their fixtures (``client``, ``model``, ``provider``, ``api``) are in tests/runtime/conftest.py.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from runtime.errors import ModelError
from runtime.llm import GenerationRequest, LanguageModel, ModelChunk, ToolSpec
from runtime.llm.factory import create_model
from runtime.schema.messages import TextPart, UserMessage
from tests.fakellm import FakeLLM

API_KEY = "sk-fake-0123456789"


TOOLS = [
    ToolSpec(
        name="readTextFile",
        description="Read a text file",
        input_schema={"type": "object", "properties": {"path": {"type": "string"}}},
    ),
    ToolSpec(name="todo", description="Manage todos", input_schema={"type": "object"}),
]


CLIENTS = ["native", "litellm"]


PROVIDERS = ["openai", "anthropic"]


def make_model(base_url: str, model: str = "gpt-4.1", client: str = "native") -> LanguageModel:
    return create_model(
        "openai", model, {"baseUrl": base_url, "client": client}, {"OPENAI_API_KEY": API_KEY}
    )


def api_model(fake: FakeLLM, provider: str, client: str, model: str | None = None) -> LanguageModel:
    if provider == "openai":
        return make_model(fake.base_url, model or "gpt-4.1", client)
    return create_model(
        "anthropic",
        model or "claude-sonnet-4-5",
        {"baseUrl": fake.anthropic_base_url, "client": client},
        {"ANTHROPIC_API_KEY": API_KEY},
    )


def ask(text: str = "hi", **kwargs: Any) -> GenerationRequest:
    return GenerationRequest(
        messages=[UserMessage(contents=[TextPart(text=text)])], tools=[], **kwargs
    )


def tool_request() -> GenerationRequest:
    return GenerationRequest(messages=ask().messages, tools=TOOLS)


async def collect(model: LanguageModel, request: GenerationRequest) -> list[ModelChunk]:
    async with asyncio.timeout(20):
        return [chunk async for chunk in model.stream(request)]


async def fails(model: LanguageModel, request: GenerationRequest) -> ModelError:
    with pytest.raises(ModelError) as info:
        await collect(model, request)
    return info.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
