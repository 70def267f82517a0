"""Which client serves each provider, and where the native client sends its requests."""

from __future__ import annotations

import pytest

from runtime.errors import ConfigError
from runtime.llm import TextDelta
from runtime.llm.factory import create_model
from tests.fakellm import FakeLLM, reply_text
from tests.runtime.model_client_helpers import API_KEY, CLIENTS, ask, collect


@pytest.mark.parametrize("client", ["auto", *CLIENTS])
def test_unknown_provider_without_base_url_fails_before_the_run(client: str) -> None:
    with pytest.raises(ConfigError) as info:
        create_model("no-such-provider", "m", {"client": client}, {"NO_SUCH_PROVIDER_API_KEY": "k"})
    message = info.value.message
    assert "'no-such-provider'" in message
    for known in ("anthropic", "openai", "google", "fireworks", "groq"):
        assert known in message
    assert "baseUrl" in message, "the fix for a server of one's own"


def test_a_misspelt_provider_gets_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'anthropic'"):
        create_model("antropic", "m", None, {})


async def test_a_provider_of_ones_own_with_a_base_url_goes_native(fake_llm: FakeLLM) -> None:
    # A llama-server or vLLM under a name of the user's choosing: OpenAI-compatible, no key.
    model = create_model("my-llama", "qwen2.5-coder", {"baseUrl": fake_llm.base_url}, {})
    fake_llm.script(reply_text("local answer"))
    chunks = await collect(model, ask())
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == "local answer"
    assert fake_llm.last_request["model"] == "qwen2.5-coder"
    assert "authorization" not in fake_llm.request_headers[-1]
    with pytest.raises(ConfigError, match="not one litellm serves"):
        create_model("my-llama", "m", {"baseUrl": fake_llm.base_url, "client": "litellm"}, {})


@pytest.mark.parametrize(
    ("provider", "model", "env", "path", "auth"),
    [
        ("openai", "gpt-4.1", {"OPENAI_API_KEY": "k1"}, "/v1/chat/completions", "Bearer k1"),
        (
            "deepseek",
            "deepseek-chat",
            {"DEEPSEEK_API_KEY": "k2"},
            "/v1/chat/completions",
            "Bearer k2",
        ),
        (
            "fireworks",
            "accounts/fireworks/models/x",
            {"FIREWORKS_API_KEY": "k3"},
            "/v1/chat/completions",
            "Bearer k3",
        ),
        # Perstack's Ollama URL ends in /api; its OpenAI-compatible API is under /v1.
        ("ollama", "llama3", {}, "/v1/chat/completions", None),
    ],
)
async def test_openai_compatible_providers_reach_their_endpoint(
    fake_llm: FakeLLM,
    provider: str,
    model: str,
    env: dict[str, str],
    path: str,
    auth: str | None,
) -> None:
    base = fake_llm.url + ("/api" if provider == "ollama" else "/v1")
    client = create_model(provider, model, {"baseUrl": base}, env)
    fake_llm.script(reply_text("ok"))
    await collect(client, ask())
    assert fake_llm.request_paths[-1] == path
    assert fake_llm.last_request["model"] == model
    assert fake_llm.request_headers[-1].get("authorization") == auth
    await client.aclose()  # type: ignore[attr-defined]


async def test_azure_openai_uses_its_deployment_url_and_api_key_header(fake_llm: FakeLLM) -> None:
    client = create_model(
        "azure-openai",
        "my-gpt4-deployment",
        {"baseUrl": fake_llm.url + "/openai", "apiVersion": "2024-10-21"},
        {"AZURE_API_KEY": "az-key"},
    )
    fake_llm.script(reply_text("ok"))
    await collect(client, ask())
    assert fake_llm.request_paths[-1] == (
        "/openai/deployments/my-gpt4-deployment/chat/completions?api-version=2024-10-21"
    )
    headers = fake_llm.request_headers[-1]
    assert headers["api-key"] == "az-key"
    assert "authorization" not in headers
    await client.aclose()  # type: ignore[attr-defined]


async def test_openai_organization_project_and_extra_headers_are_sent(fake_llm: FakeLLM) -> None:
    client = create_model(
        "openai",
        "gpt-4.1",
        {
            "baseUrl": fake_llm.base_url,
            "organization": "org-1",
            "project": "proj-1",
            "headers": {"X-Team": "studio"},
        },
        {"OPENAI_API_KEY": API_KEY},
    )
    fake_llm.script(reply_text("ok"))
    await collect(client, ask())
    headers = fake_llm.request_headers[-1]
    assert (headers["openai-organization"], headers["openai-project"]) == ("org-1", "proj-1")
    assert headers["x-team"] == "studio"
    await client.aclose()  # type: ignore[attr-defined]


def test_google_vertex_and_bedrock_go_through_litellm() -> None:
    env = {
        "GOOGLE_GENERATIVE_AI_API_KEY": "g",
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "us-east-1",
    }
    for provider, model in [
        ("google", "gemini-2.5-pro"),
        ("google-vertex", "gemini-2.5-pro"),
        ("amazon-bedrock", "anthropic.claude-3-haiku-20240307-v1:0"),
    ]:
        assert type(create_model(provider, model, None, env)).__name__ == "LiteLLMModel"
    with pytest.raises(ConfigError, match="has no native client"):
        create_model("google", "gemini-2.5-pro", {"client": "native"}, env)
