"""Provider resolution (reference §8.1, §18.8) and reasoning options (§8.3)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from runtime.config.schema import ProviderSetting
from runtime.errors import ConfigError, MissingApiKeyError
from runtime.llm.providers import resolve_provider
from runtime.llm.reasoning import budget_tokens, reasoning_options


@pytest.mark.parametrize(
    ("provider", "model", "env", "litellm_model", "key_env"),
    [
        (
            "anthropic",
            "claude-sonnet-4-5",
            {"ANTHROPIC_API_KEY": "k"},
            "anthropic/claude-sonnet-4-5",
            "ANTHROPIC_API_KEY",
        ),
        ("openai", "gpt-4.1", {"OPENAI_API_KEY": "k"}, "openai/gpt-4.1", "OPENAI_API_KEY"),
        (
            "google",
            "gemini-2.5-flash",
            {"GOOGLE_GENERATIVE_AI_API_KEY": "k"},
            "gemini/gemini-2.5-flash",
            "GOOGLE_GENERATIVE_AI_API_KEY",
        ),
        ("ollama", "gpt-oss:20b", {}, "ollama_chat/gpt-oss:20b", None),
        (
            "azure-openai",
            "my-deployment",
            {"AZURE_API_KEY": "k", "AZURE_RESOURCE_NAME": "res"},
            "azure/my-deployment",
            "AZURE_API_KEY",
        ),
        (
            "amazon-bedrock",
            "anthropic.claude-3-7-sonnet-20250219-v1:0",
            {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-east-1"},
            "bedrock/anthropic.claude-3-7-sonnet-20250219-v1:0",
            "AWS_ACCESS_KEY_ID",
        ),
        ("google-vertex", "gemini-2.5-pro", {}, "vertex_ai/gemini-2.5-pro", None),
        (
            "deepseek",
            "deepseek-chat",
            {"DEEPSEEK_API_KEY": "k"},
            "deepseek/deepseek-chat",
            "DEEPSEEK_API_KEY",
        ),
        (
            "fireworks",
            "accounts/fireworks/models/kimi-k2p5",
            {"FIREWORKS_API_KEY": "k"},
            "fireworks_ai/accounts/fireworks/models/kimi-k2p5",
            "FIREWORKS_API_KEY",
        ),
        (
            "fireworks_ai",
            "accounts/fireworks/models/kimi-k2p5",
            {"FIREWORKS_AI_API_KEY": "k"},
            "fireworks_ai/accounts/fireworks/models/kimi-k2p5",
            "FIREWORKS_AI_API_KEY",
        ),
        (
            "groq",
            "llama-3.3-70b-versatile",
            {"GROQ_API_KEY": "k"},
            "groq/llama-3.3-70b-versatile",
            "GROQ_API_KEY",
        ),
        (
            "openrouter",
            "openai/gpt-4o",
            {"OPENROUTER_API_KEY": "k"},
            "openrouter/openai/gpt-4o",
            "OPENROUTER_API_KEY",
        ),
    ],
)
def test_provider_table(
    provider: str, model: str, env: dict[str, str], litellm_model: str, key_env: str | None
) -> None:
    res = resolve_provider(provider, model, None, env)
    assert res.provider_name == provider
    assert res.model == model
    assert res.litellm_model == litellm_model
    assert res.api_key_env == key_env
    assert res.litellm_provider == litellm_model.split("/")[0]


def test_model_already_prefixed_is_not_doubled() -> None:
    env = {"OPENAI_API_KEY": "k", "FIREWORKS_API_KEY": "k"}
    assert resolve_provider("openai", "openai/gpt-4.1", None, env).litellm_model == "openai/gpt-4.1"
    fw = resolve_provider("fireworks", "fireworks_ai/accounts/fireworks/models/x", None, env)
    assert fw.litellm_model == "fireworks_ai/accounts/fireworks/models/x"
    ollama = resolve_provider("ollama", "ollama/llama3", None, {})
    assert ollama.litellm_model == "ollama_chat/llama3"


def test_openai_env_fallbacks() -> None:
    env = {
        "OPENAI_API_KEY": "sk-env",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "OPENAI_ORGANIZATION": "org-1",
        "OPENAI_PROJECT": "proj-1",
    }
    res = resolve_provider("openai", "gpt-4.1", None, env)
    assert res.api_key == "sk-env"
    assert res.api_base == "http://127.0.0.1:9/v1"
    assert res.extra == {"organization": "org-1", "extra_headers": {"OpenAI-Project": "proj-1"}}


@pytest.mark.parametrize(
    "setting",
    [
        ProviderSetting(
            base_url="https://toml.example/v1", organization="org-toml", headers={"X-Test": "1"}
        ),
        {
            "baseUrl": "https://toml.example/v1",
            "organization": "org-toml",
            "headers": {"X-Test": "1"},
        },
        {
            "base_url": "https://toml.example/v1",
            "organization": "org-toml",
            "headers": {"X-Test": "1"},
        },
    ],
)
def test_settings_win_over_env(setting: Any) -> None:
    env = {
        "OPENAI_API_KEY": "sk-env",
        "OPENAI_BASE_URL": "https://env.example/v1",
        "OPENAI_ORGANIZATION": "org-env",
    }
    res = resolve_provider("openai", "gpt-4.1", setting, env)
    assert res.api_base == "https://toml.example/v1"
    assert res.extra["organization"] == "org-toml"
    assert res.extra["extra_headers"] == {"X-Test": "1"}


def test_anthropic_base_url_and_headers() -> None:
    env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": "https://proxy.example"}
    res = resolve_provider("anthropic", "claude-sonnet-4-5", None, env)
    assert res.api_base == "https://proxy.example"
    res = resolve_provider(
        "anthropic",
        "claude-sonnet-4-5",
        {"baseUrl": "https://toml.example", "headers": {"a": "b"}},
        env,
    )
    assert res.api_base == "https://toml.example"
    assert res.extra == {"extra_headers": {"a": "b"}}


@pytest.mark.parametrize(
    "variable", ["GOOGLE_GENERATIVE_AI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"]
)
def test_google_key_fallbacks(variable: str) -> None:
    res = resolve_provider("google", "gemini-2.5-flash", None, {variable: "g-key"})
    assert (res.api_key, res.api_key_env) == ("g-key", variable)


def test_azure_resource_name_version_and_missing_base() -> None:
    env = {"AZURE_API_KEY": "k", "AZURE_RESOURCE_NAME": "myres", "AZURE_API_VERSION": "2024-10-21"}
    res = resolve_provider("azure-openai", "dep", None, env)
    assert res.api_base == "https://myres.openai.azure.com"
    assert res.extra == {"api_version": "2024-10-21"}
    res = resolve_provider("azure-openai", "dep", {"resourceName": "other"}, env)
    assert res.api_base == "https://other.openai.azure.com"
    with pytest.raises(ConfigError, match="AZURE_RESOURCE_NAME or baseUrl is not set"):
        resolve_provider("azure-openai", "dep", None, {"AZURE_API_KEY": "k"})


def test_bedrock_credentials_and_region() -> None:
    env = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"}
    res = resolve_provider("amazon-bedrock", "m", {"region": "eu-west-1"}, env)
    assert res.api_key is None
    assert res.extra == {
        "aws_access_key_id": "a",
        "aws_secret_access_key": "s",
        "aws_region_name": "eu-west-1",
        "aws_session_token": "t",
    }
    with pytest.raises(MissingApiKeyError, match="AWS_REGION is not set"):
        resolve_provider("amazon-bedrock", "m", None, env)
    with pytest.raises(MissingApiKeyError, match="AWS_SECRET_ACCESS_KEY is not set"):
        resolve_provider("amazon-bedrock", "m", None, {"AWS_ACCESS_KEY_ID": "a"})


def test_vertex_and_ollama() -> None:
    env = {"GOOGLE_VERTEX_PROJECT": "p", "GOOGLE_VERTEX_LOCATION": "us-central1"}
    res = resolve_provider("google-vertex", "gemini-2.5-pro", None, env)
    assert res.api_key is None
    assert res.extra == {"vertex_project": "p", "vertex_location": "us-central1"}
    res = resolve_provider(
        "ollama", "qwen3", None, {"OLLAMA_BASE_URL": "http://localhost:11434/api"}
    )
    assert res.api_base == "http://localhost:11434"
    assert res.api_key is None


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        (
            "openai",
            "OPENAI_API_KEY is not set. Set it in your environment or add OPENAI_API_KEY=... "
            "to .env in the workspace.",
        ),
        ("anthropic", "ANTHROPIC_API_KEY is not set."),
        (
            "google",
            "GOOGLE_GENERATIVE_AI_API_KEY is not set (GEMINI_API_KEY and GOOGLE_API_KEY are "
            "also accepted).",
        ),
        ("deepseek", "DEEPSEEK_API_KEY is not set."),
        ("azure-openai", "AZURE_API_KEY is not set."),
        ("amazon-bedrock", "AWS_ACCESS_KEY_ID is not set."),
        ("fireworks", "FIREWORKS_API_KEY is not set (FIREWORKS_AI_API_KEY is also accepted)."),
        ("my-provider", "MY_PROVIDER_API_KEY is not set."),
    ],
)
def test_missing_key_messages(provider: str, message: str) -> None:
    with pytest.raises(MissingApiKeyError) as info:
        resolve_provider(provider, "some-model", None, {"UNRELATED": "x"})
    assert info.value.message.startswith(message)
    assert "Set it in your environment or add" in info.value.message
    assert info.value.title == "Missing API key"


def test_empty_key_counts_as_missing() -> None:
    with pytest.raises(MissingApiKeyError, match="OPENAI_API_KEY"):
        resolve_provider("openai", "gpt-4.1", None, {"OPENAI_API_KEY": ""})


def test_key_never_in_repr() -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "AKIASECRET",
        "AWS_SECRET_ACCESS_KEY": "topsecret",
        "AWS_REGION": "r",
    }
    assert "topsecret" not in repr(resolve_provider("amazon-bedrock", "m", None, env))
    res = resolve_provider("openai", "gpt-4.1", None, {"OPENAI_API_KEY": "sk-very-secret"})
    assert "sk-very-secret" not in repr(res)


def test_empty_model_or_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="model name is empty"):
        resolve_provider("openai", " ", None, {"OPENAI_API_KEY": "k"})
    with pytest.raises(ConfigError, match="provider name is empty"):
        resolve_provider("", "gpt-4.1", None, {})


# Reasoning ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "tokens"),
    [
        ("none", 0),
        (0, 0),
        ("minimal", 1024),
        ("low", 2048),
        ("medium", 5000),
        ("high", 10000),
        (3000, 3000),
    ],
)
def test_budget_tokens(budget: str | int, tokens: int) -> None:
    assert budget_tokens(budget) == tokens


@pytest.mark.parametrize("budget", ["huge", -1, True])
def test_invalid_budget(budget: Any) -> None:
    with pytest.raises(ConfigError, match="reasoningBudget"):
        budget_tokens(budget)


@pytest.mark.parametrize(
    ("provider", "model", "budget", "expected"),
    [
        (
            "anthropic",
            "anthropic/claude-sonnet-4-5",
            "low",
            {"thinking": {"type": "enabled", "budget_tokens": 2048}},
        ),
        (
            "anthropic",
            "anthropic/claude-sonnet-4-5",
            500,
            {"thinking": {"type": "enabled", "budget_tokens": 1024}},
        ),
        ("anthropic", "anthropic/claude-sonnet-4-5", "none", {}),
        ("anthropic", "anthropic/claude-sonnet-4-5", 0, {}),
        ("openai", "openai/o3", "minimal", {"reasoning_effort": "low"}),
        ("openai", "openai/o3", "low", {"reasoning_effort": "low"}),
        ("openai", "openai/o3", "medium", {"reasoning_effort": "medium"}),
        ("openai", "openai/o3", "high", {"reasoning_effort": "high"}),
        ("openai", "openai/o3", 2048, {"reasoning_effort": "low"}),
        ("openai", "openai/o3", 5000, {"reasoning_effort": "medium"}),
        ("openai", "openai/o3", 5001, {"reasoning_effort": "high"}),
        (
            "google",
            "gemini/gemini-2.5-flash",
            "medium",
            {"thinking": {"type": "enabled", "budget_tokens": 5000}},
        ),
        (
            "google-vertex",
            "vertex_ai/gemini-2.5-pro",
            "high",
            {"thinking": {"type": "enabled", "budget_tokens": 10000}},
        ),
        (
            "amazon-bedrock",
            "bedrock/anthropic.claude-3-7-sonnet",
            "low",
            {"thinking": {"type": "enabled", "budget_tokens": 2048}},
        ),
        ("ollama", "ollama_chat/qwen3", "low", {"think": True}),
        ("azure-openai", "azure/o3", "high", {}),
        ("deepseek", "deepseek/deepseek-reasoner", "high", {}),
        (
            "fireworks",
            "fireworks_ai/accounts/fireworks/models/x",
            "medium",
            {"reasoning_effort": "medium"},
        ),
    ],
)
def test_reasoning_options(
    provider: str, model: str, budget: str | int, expected: dict[str, Any]
) -> None:
    assert reasoning_options(provider, model, budget) == expected


@pytest.mark.parametrize(
    "code",
    ["import runtime.llm.providers", "import runtime.llm.litellm_model", "import runtime.llm"],
)
def test_provider_resolution_does_not_import_litellm(code: str) -> None:
    probe = f"{code}\nimport sys\nprint('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_provider_base_url_fallbacks() -> None:
    env = {"HOSTED_VLLM_API_BASE": "http://127.0.0.1:8000/v1"}
    res = resolve_provider("hosted_vllm", "meta/llama", None, env)
    assert (res.litellm_model, res.api_base, res.api_key) == (
        "hosted_vllm/meta/llama",
        "http://127.0.0.1:8000/v1",
        None,
    )
    env = {"GROQ_API_KEY": "k", "GROQ_BASE_URL": "https://proxy.example/groq"}
    assert resolve_provider("groq", "m", None, env).api_base == "https://proxy.example/groq"
