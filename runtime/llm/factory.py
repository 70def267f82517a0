"""Which client calls a model: a native one (OpenAI-compatible or Anthropic) or litellm.

Native clients start in milliseconds; litellm takes seconds to import and serves the long tail
(Google, Vertex, Bedrock and every other provider litellm knows). The choice:

- ``auto`` (default): native where the provider speaks the OpenAI Chat Completions or Anthropic
  Messages API (:func:`runtime.llm.providers.native_route`), else litellm.
- ``native`` / ``litellm``: forced, by ``[provider.setting] client`` in perstack.toml or the
  ``PERSTACK_MODEL_CLIENT`` environment variable (the variable wins).

A provider name that neither path knows, with no base URL, is refused here, before the run.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from runtime.errors import ConfigError
from runtime.llm import LanguageModel
from runtime.llm.litellm_data import chat_providers, openai_like_providers
from runtime.llm.providers import (
    NATIVE_OPENAI_BASES,
    PERSTACK_PROVIDERS,
    NativeRoute,
    ProviderResolution,
    litellm_provider_name,
    native_route,
    resolve_provider,
)

__all__ = ["CLIENT_ENV", "create_model", "prewarm"]

CLIENT_ENV = "PERSTACK_MODEL_CLIENT"
"""The environment variable that forces a client: ``auto``, ``native`` or ``litellm``."""
_CLIENTS = ("auto", "native", "litellm")


def _setting_value(setting: Any, key: str) -> Any:
    if setting is None:
        return None
    if isinstance(setting, Mapping):
        return setting.get(key)
    return getattr(setting, key, None)


def client_choice(setting: Any, env: Mapping[str, str]) -> str:
    """``auto``, ``native`` or ``litellm``, from the environment or ``[provider.setting]``."""
    value = env.get(CLIENT_ENV)
    if value:
        if value not in _CLIENTS:
            raise ConfigError(
                f"{CLIENT_ENV}={value!r} is not a model client: use auto, native or litellm."
            )
        return value
    return str(_setting_value(setting, "client") or "auto")


def _known(litellm_name: str) -> bool:
    return (
        litellm_name in NATIVE_OPENAI_BASES
        or litellm_name in ("anthropic", "azure", "ollama", "ollama_chat")
        or litellm_name in chat_providers()
    )


def _unknown_provider(name: str) -> ConfigError:
    natives = sorted(
        {*PERSTACK_PROVIDERS, "fireworks", "together", *NATIVE_OPENAI_BASES}
        - {"fireworks_ai", "together_ai", "openai_like", "custom_openai"}
    )
    candidates = [*natives, *chat_providers()]
    close = difflib.get_close_matches(name, candidates, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    more = len(chat_providers())
    return ConfigError(
        f"Provider {name!r} is unknown.{hint} Known providers: {', '.join(natives)}"
        + (f", and {more} more served through litellm" if more else "")
        + " (https://docs.litellm.ai/docs/providers). For any other OpenAI-compatible server, "
        f"set [provider.setting] baseUrl in perstack.toml or {name.upper().replace('-', '_')}"
        "_BASE_URL."
    )


def _route(
    provider_name: str, model: str, setting: Any, env: Mapping[str, str]
) -> tuple[ProviderResolution, NativeRoute | None, bool]:
    name = provider_name.strip()
    known = _known(litellm_provider_name(name))
    res = resolve_provider(name, model, setting, env, key_optional=not known)
    if not known and res.api_base is None:
        raise _unknown_provider(name)
    extra = {n: base for n, (base, _) in openai_like_providers().items()}
    return res, native_route(res, setting, extra, custom=not known), known


def create_model(
    provider_name: str, model: str, setting: Any | None, env: Mapping[str, str]
) -> LanguageModel:
    """The language model for a provider and model, on the native client where there is one.

    Args:
        provider_name: Perstack's provider name or any litellm provider name.
        model: The model as the user named it.
        setting: ``[provider.setting]`` (a ``ProviderSetting`` or a dict), or None.
        env: The environment (``os.environ`` merged with .env).

    Raises:
        MissingApiKeyError: The provider's key is not set.
        ConfigError: The provider is unknown and has no base URL; a forced client cannot serve
            it; a required setting is missing.
    """
    choice = client_choice(setting, env)
    res, route, known = _route(provider_name, model, setting, env)
    if choice == "litellm" or (choice == "auto" and route is None):
        if not known:
            raise ConfigError(
                f"Provider {res.provider_name!r} is not one litellm serves; with a base URL it is "
                f"called as an OpenAI-compatible server by the native client (set {CLIENT_ENV} "
                "or [provider.setting] client to auto or native)."
            )
        from runtime.llm.litellm_model import LiteLLMModel

        return LiteLLMModel(res)
    if route is None:
        raise ConfigError(
            f"Provider {res.provider_name!r} has no native client (native: Anthropic and "
            "OpenAI-compatible APIs). Set [provider.setting] client or "
            f"{CLIENT_ENV} to auto or litellm."
        )
    from runtime.llm.http import Endpoint

    endpoint = Endpoint(
        provider=res.provider_name,
        model=res.model,
        url=route.url,
        headers=route.headers,
        key_env=res.api_key_env,
        secret=res.api_key,
        where=res.api_base or f"the {res.provider_name} API",
    )
    if route.api == "anthropic":
        from runtime.llm.anthropic import AnthropicModel

        return AnthropicModel(res, endpoint, route.wire_model)
    from runtime.llm.openai_compat import OpenAICompatibleModel

    return OpenAICompatibleModel(res, endpoint, route.wire_model)


def prewarm(
    provider_name: str,
    model: str,
    setting: Any | None,
    env: Mapping[str, str],
    *,
    native: bool = True,
    litellm: bool = True,
) -> None:
    """Load the client a model will use (imports, TLS context, a first connection pool).

    ``native`` / ``litellm``: which kind of client to load when the model needs it (a caller
    may load litellm, seconds, in a thread, and a native client, milliseconds, inline). Never
    raises: a problem with the provider is reported by :func:`create_model` in its time.
    """
    try:
        choice = client_choice(setting, env)
        res, route, _ = _route(provider_name, model, setting, env)
    except Exception:  # the run reports it properly; a warm-up has nothing to say
        return
    if choice == "litellm" or (choice == "auto" and route is None):
        if litellm:
            from runtime.llm.litellm_model import prewarm as litellm_prewarm

            litellm_prewarm()
        return
    if route is None or not native:
        return
    from runtime.llm import anthropic, openai_compat  # noqa: F401 - imported to warm up
    from runtime.llm.http import prewarm as http_prewarm
    from runtime.llm.prices import model_info

    http_prewarm(route.url)
    model_info(res.litellm_model)
