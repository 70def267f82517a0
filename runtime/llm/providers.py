"""Provider resolution: from Perstack's provider name, model and settings to litellm arguments.

This module is pure (no litellm import, no ``os.environ`` access) so that config validation, the
CLI and the studio can resolve a provider, and report a missing API key, without paying litellm's
import cost. :mod:`runtime.llm.litellm_model` turns a :class:`ProviderResolution` into calls.

Perstack's eight provider names map to litellm providers (§8.1 of the reference); any other name is
handed to litellm as is, through a small alias table for names users naturally type
(``fireworks`` → ``fireworks_ai``). Settings from perstack.toml win over environment fallbacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import ConfigError, MissingApiKeyError

__all__ = [
    "NATIVE_OPENAI_BASES",
    "PERSTACK_PROVIDERS",
    "PROVIDER_DEFAULT_MODELS",
    "NativeRoute",
    "ProviderKeyStatus",
    "ProviderResolution",
    "litellm_provider_name",
    "native_route",
    "provider_key_names",
    "provider_key_status",
    "resolve_provider",
]


@dataclass(frozen=True)
class ProviderResolution:
    """Everything needed to call one model through litellm.

    Attributes:
        provider_name: The provider as the user named it (``openai``, ``fireworks``, ...).
        model: The model as the user named it (``gpt-4.1``).
        litellm_model: The litellm model string (``openai/gpt-4.1``).
        api_key: The API key, or None for providers that authenticate otherwise. Never logged:
            it is left out of ``repr``.
        api_base: The base URL override, or None for the provider's default endpoint.
        extra: Further litellm keyword arguments (``organization``, ``api_version``,
            ``aws_region_name``, ``extra_headers``, ...). May hold credentials (AWS keys), so it is
            left out of ``repr`` too.
        api_key_env: The environment variable the key came from (or should come from), for
            messages; None for providers without a key.
    """

    provider_name: str
    model: str
    litellm_model: str
    api_key: str | None = field(default=None, repr=False)
    api_base: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    api_key_env: str | None = None

    @property
    def litellm_provider(self) -> str:
        """The litellm provider prefix of :attr:`litellm_model` (``openai``, ``anthropic``...)."""
        return self.litellm_model.split("/", 1)[0]


# Name mapping -----------------------------------------------------------------------------------

_PERSTACK_TO_LITELLM: Mapping[str, str] = {
    "anthropic": "anthropic",
    "openai": "openai",
    "google": "gemini",
    "ollama": "ollama_chat",
    "azure-openai": "azure",
    "amazon-bedrock": "bedrock",
    "google-vertex": "vertex_ai",
    "deepseek": "deepseek",
}

PERSTACK_PROVIDERS: tuple[str, ...] = tuple(_PERSTACK_TO_LITELLM)
"""Perstack's own provider names."""

_ALIASES: Mapping[str, str] = {
    # Names people type for litellm providers whose litellm name carries a suffix.
    "fireworks": "fireworks_ai",
    "together": "together_ai",
}

_PERSTACK_KEY_ENVS: Mapping[str, tuple[str, ...]] = {
    # Perstack provider → accepted key variables, preferred first (§8.1). Ollama's key is
    # optional (its cloud only); Vertex uses application default credentials; Bedrock also needs
    # AWS_SECRET_ACCESS_KEY and AWS_REGION, which resolve_provider checks on their own.
    "anthropic": ("ANTHROPIC_API_KEY",),
    "openai": ("OPENAI_API_KEY",),
    "google": ("GOOGLE_GENERATIVE_AI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "ollama": ("OLLAMA_API_KEY",),
    "azure-openai": ("AZURE_API_KEY",),
    "amazon-bedrock": ("AWS_ACCESS_KEY_ID",),
    "google-vertex": (),
    "deepseek": ("DEEPSEEK_API_KEY",),
}

_KEY_ENVS: Mapping[str, tuple[str, ...]] = {
    # litellm provider → accepted key variables, preferred first. Unknown providers use
    # <NAME>_API_KEY; these are the ones where litellm or the vendor documents another spelling.
    "fireworks_ai": ("FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY"),
    "together_ai": ("TOGETHER_API_KEY", "TOGETHERAI_API_KEY", "TOGETHER_AI_API_KEY"),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}

_KEYLESS: frozenset[str] = frozenset(
    # litellm providers that authenticate without an API key (local servers, cloud credentials).
    {
        "ollama",
        "ollama_chat",
        "hosted_vllm",
        "lm_studio",
        "llamafile",
        "vertex_ai",
        "bedrock",
        "sagemaker",
        "sagemaker_chat",
    }
)


PROVIDER_DEFAULT_MODELS: Mapping[str, str] = {
    # The Anthropic entry is the configuration's default model (runtime.config.schema); a test
    # keeps them equal, since this module stays free of the pydantic schema.
    "anthropic": "claude-sonnet-4-5",
    "openai": "gpt-4.1",
    "google": "gemini-2.5-pro",
    "fireworks": "accounts/fireworks/models/kimi-k2p5",
    "deepseek": "deepseek-chat",
}
"""A model to start with, for the providers that need nothing but an API key, in the order a
picker (the studio's create-expert wizard) offers them."""


def litellm_provider_name(name: str) -> str:
    """Litellm's name for a provider (``google`` → ``gemini``, ``fireworks`` → ``fireworks_ai``)."""
    return _PERSTACK_TO_LITELLM.get(name) or _ALIASES.get(name) or name


def provider_key_names(provider_name: str) -> tuple[str, ...]:
    """The environment variables the runtime reads a provider's API key from, preferred first.

    The single table behind :func:`resolve_provider` and :func:`provider_key_status`: any of
    them set is enough. Empty for a provider that never takes a key (``google-vertex``).

    Args:
        provider_name: A Perstack provider name or any litellm provider name (``fireworks``,
            ``fireworks_ai``, ``groq``...); other names read ``<NAME>_API_KEY``.
    """
    name = provider_name.strip()
    if name in _PERSTACK_KEY_ENVS:
        return _PERSTACK_KEY_ENVS[name]
    own = f"{name.upper().replace('-', '_')}_API_KEY"
    names = _KEY_ENVS.get(litellm_provider_name(name), (own,))
    return names if own in names else (own, *names)


@dataclass(frozen=True)
class ProviderKeyStatus:
    """Whether a provider's API key is set, as :func:`resolve_provider` will look for it.

    Attributes:
        provider: The provider name as given.
        names: The accepted variables, preferred first (empty: the provider takes no key).
        found: The first of ``names`` with a non-empty value, or None.
        required: A run fails without the key (False for local servers and providers that
            authenticate with cloud credentials).
    """

    provider: str
    names: tuple[str, ...]
    found: str | None
    required: bool

    @property
    def ready(self) -> bool:
        """The key is set, or the provider needs none."""
        return self.found is not None or not self.required


def provider_key_status(provider_name: str, env: Mapping[str, str]) -> ProviderKeyStatus:
    """Which of a provider's key variables is set in ``env``, and which names are accepted.

    Reads only the mapping it is given (never ``os.environ``), so callers can ask about the
    environment and each .env file separately. An empty variable counts as unset, as it does
    for a run.

    Args:
        provider_name: A Perstack or litellm provider name (see :func:`provider_key_names`).
        env: The variables to look in.
    """
    names = provider_key_names(provider_name)
    found = next((name for name in names if env.get(name)), None)
    name = provider_name.strip()
    keyless = name in ("ollama", "google-vertex") or (
        name not in _PERSTACK_KEY_ENVS and litellm_provider_name(name) in _KEYLESS
    )
    return ProviderKeyStatus(provider_name, names, found, required=bool(names) and not keyless)


def _setting_get(setting: Any, key: str) -> Any:
    """Read ``key`` (snake_case) from a ProviderSetting-like object or a dict.

    Dicts may use Perstack's camelCase keys (straight from TOML) or snake_case.
    """
    if setting is None:
        return None
    if isinstance(setting, Mapping):
        if key in setting:
            return setting[key]
        head, *rest = key.split("_")
        camel = head + "".join(word.capitalize() for word in rest)
        return setting.get(camel)
    return getattr(setting, key, None)


def _env(env: Mapping[str, str], *names: str) -> str | None:
    """The first non-empty value among ``names`` (an empty variable counts as unset)."""
    for name in names:
        value = env.get(name)
        if value:
            return value
    return None


def _missing_key(name: str, alternatives: tuple[str, ...] = ()) -> MissingApiKeyError:
    also = ""
    if alternatives:
        verb = "is" if len(alternatives) == 1 else "are"
        also = f" ({' and '.join(alternatives)} {verb} also accepted)"
    return MissingApiKeyError(
        f"{name} is not set{also}. "
        f"Set it in your environment or add {name}=... to .env in the workspace."
    )


def _require_key(env: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str]:
    """The key and the variable it came from; raises naming the preferred variable."""
    for name in names:
        value = env.get(name)
        if value:
            return value, name
    raise _missing_key(names[0], names[1:])


def _litellm_model(litellm_provider: str, perstack_name: str, model: str) -> str:
    """Prefix ``model`` with the litellm provider unless it already carries it."""
    if model.startswith(f"{litellm_provider}/"):
        return model
    # "ollama/llama3" under provider "ollama" means the model llama3, not a model named
    # "ollama/llama3" on the ollama_chat route.
    if perstack_name != litellm_provider and model.startswith(f"{perstack_name}/"):
        model = model[len(perstack_name) + 1 :]
    return f"{litellm_provider}/{model}"


def _headers(setting: Any, extra: dict[str, Any]) -> None:
    headers = _setting_get(setting, "headers")
    if headers:
        extra.setdefault("extra_headers", {}).update(dict(headers))


def resolve_provider(
    provider_name: str,
    model: str,
    setting: Any | None,
    env: Mapping[str, str],
    *,
    key_optional: bool = False,
) -> ProviderResolution:
    """Resolve a provider name and model into litellm call arguments.

    Args:
        provider_name: Perstack's provider name (``anthropic``, ``openai``, ``google``, ``ollama``,
            ``azure-openai``, ``amazon-bedrock``, ``google-vertex``, ``deepseek``) or any litellm
            provider name (``fireworks``/``fireworks_ai``, ``groq``, ``openrouter``, ...).
        model: The model id as the user named it; a leading ``<litellm provider>/`` is kept as
            is rather than doubled.
        setting: The ``[provider.setting]`` table: a ``ProviderSetting`` or a dict with camelCase
            or snake_case keys. Its values win over the environment fallbacks.
        env: The environment to read keys and fallbacks from (``os.environ`` merged with .env).
        key_optional: A provider name of the user's own with a base URL (a local server):
            its ``<NAME>_API_KEY`` is sent when set, and not required.

    Returns:
        The resolution; its ``api_key`` is never logged.

    Raises:
        MissingApiKeyError: The provider's key variable is not set; the message names it and the
            fix.
        ConfigError: A required non-key setting is missing (Azure's resource name or base URL).
    """
    name = provider_name.strip()
    if not name:
        raise ConfigError("The provider name is empty. Set [provider] providerName or --provider.")
    if not model.strip():
        raise ConfigError("The model name is empty. Set model in perstack.toml or --model.")
    litellm_provider = litellm_provider_name(name)
    litellm_model = _litellm_model(litellm_provider, name, model)
    base_url = _setting_get(setting, "base_url")
    extra: dict[str, Any] = {}
    api_key: str | None = None
    key_env: str | None = None
    api_base: str | None = None

    def done() -> ProviderResolution:
        _headers(setting, extra)
        return ProviderResolution(
            provider_name=name,
            model=model,
            litellm_model=litellm_model,
            api_key=api_key,
            api_base=api_base,
            extra=extra,
            api_key_env=key_env,
        )

    if name == "anthropic":
        api_key, key_env = _require_key(env, provider_key_names(name))
        api_base = base_url or _env(env, "ANTHROPIC_BASE_URL")
    elif name == "openai":
        api_key, key_env = _require_key(env, provider_key_names(name))
        api_base = base_url or _env(env, "OPENAI_BASE_URL")
        organization = _setting_get(setting, "organization") or _env(env, "OPENAI_ORGANIZATION")
        if organization:
            extra["organization"] = organization
        project = _setting_get(setting, "project") or _env(env, "OPENAI_PROJECT")
        if project:
            # litellm has no project argument; the OpenAI SDK sends it as this header.
            extra["extra_headers"] = {"OpenAI-Project": project}
    elif name == "google":
        api_key, key_env = _require_key(env, provider_key_names(name))
        api_base = base_url or _env(env, "GOOGLE_GENERATIVE_AI_BASE_URL")
    elif name == "ollama":
        # Local by default, no key; Ollama's cloud accepts one, so pass it when present.
        names = provider_key_names(name)
        api_key = _env(env, *names)
        key_env = names[0] if api_key else None
        api_base = base_url or _env(env, "OLLAMA_BASE_URL")
        if api_base:
            # Perstack (AI SDK) URLs end in /api; litellm appends /api/chat itself.
            api_base = api_base.rstrip("/").removesuffix("/api")
    elif name == "azure-openai":
        api_key, key_env = _require_key(env, provider_key_names(name))
        resource = _setting_get(setting, "resource_name") or _env(env, "AZURE_RESOURCE_NAME")
        api_base = base_url or _env(env, "AZURE_BASE_URL")
        if not api_base and resource:
            api_base = f"https://{resource}.openai.azure.com"
        if not api_base:
            raise ConfigError(
                "AZURE_RESOURCE_NAME or baseUrl is not set. Set AZURE_RESOURCE_NAME in your "
                "environment or .env, or [provider.setting] resourceName / baseUrl in "
                "perstack.toml."
            )
        # AI SDK base URLs end in /openai; litellm appends /openai/deployments/... itself.
        api_base = api_base.rstrip("/").removesuffix("/openai")
        api_version = _setting_get(setting, "api_version") or _env(env, "AZURE_API_VERSION")
        if api_version:
            extra["api_version"] = api_version
    elif name == "amazon-bedrock":
        access_key, key_env = _require_key(env, provider_key_names(name))
        secret, _ = _require_key(env, ("AWS_SECRET_ACCESS_KEY",))
        region = _setting_get(setting, "region") or _env(env, "AWS_REGION")
        if not region:
            raise _missing_key("AWS_REGION")
        extra.update(
            aws_access_key_id=access_key, aws_secret_access_key=secret, aws_region_name=region
        )
        session_token = _env(env, "AWS_SESSION_TOKEN")
        if session_token:
            extra["aws_session_token"] = session_token
    elif name == "google-vertex":
        # Application default credentials: no key.
        project = _setting_get(setting, "project") or _env(env, "GOOGLE_VERTEX_PROJECT")
        location = _setting_get(setting, "location") or _env(env, "GOOGLE_VERTEX_LOCATION")
        if project:
            extra["vertex_project"] = project
        if location:
            extra["vertex_location"] = location
        api_base = base_url or _env(env, "GOOGLE_VERTEX_BASE_URL")
    elif name == "deepseek":
        api_key, key_env = _require_key(env, provider_key_names(name))
        api_base = base_url or _env(env, "DEEPSEEK_BASE_URL")
    else:
        env_prefix = name.upper().replace("-", "_")
        names = provider_key_names(name)
        # <NAME>_API_BASE is litellm's own spelling (e.g. HOSTED_VLLM_API_BASE).
        api_base = base_url or _env(env, f"{env_prefix}_BASE_URL", f"{env_prefix}_API_BASE")
        if litellm_provider in _KEYLESS or key_optional:
            api_key = _env(env, *names)
            key_env = names[0] if api_key else None
        else:
            api_key, key_env = _require_key(env, names)
    return done()


# Native routes ----------------------------------------------------------------------------------

NATIVE_OPENAI_BASES: Mapping[str, str | None] = {
    # litellm provider → default base URL of its OpenAI-compatible chat-completions API (None:
    # the user's base URL is required). Requests go to <base>/chat/completions.
    "openai": "https://api.openai.com/v1",
    "deepseek": "https://api.deepseek.com",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "groq": "https://api.groq.com/openai/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "together_ai": "https://api.together.xyz/v1",
    "mistral": "https://api.mistral.ai/v1",
    "xai": "https://api.x.ai/v1",
    "deepinfra": "https://api.deepinfra.com/v1/openai",
    "cerebras": "https://api.cerebras.ai/v1",
    "nvidia_nim": "https://integrate.api.nvidia.com/v1",
    "sambanova": "https://api.sambanova.ai/v1",
    "moonshot": "https://api.moonshot.ai/v1",
    "perplexity": "https://api.perplexity.ai",
    "lm_studio": "http://localhost:1234/v1",
    "hosted_vllm": None,
    "openai_like": None,
    "custom_openai": None,
}

_OLLAMA_BASE = "http://localhost:11434"
ANTHROPIC_VERSION = "2023-06-01"
"""The ``anthropic-version`` header: the Messages API's stable version."""
_ANTHROPIC_BASE = "https://api.anthropic.com/v1"
_AZURE_API_VERSION = "2025-02-01-preview"
"""litellm's default, so both paths call the same API version when none is set."""


@dataclass(frozen=True)
class NativeRoute:
    """Where a native client sends a model's requests.

    Attributes:
        api: ``openai`` (Chat Completions) or ``anthropic`` (Messages).
        url: The full URL of the generation endpoint.
        headers: Request headers, authentication included. Left out of ``repr``.
        wire_model: The request body's ``model``.
    """

    api: str
    url: str
    headers: Mapping[str, str] = field(repr=False)
    wire_model: str


def _wire_model(res: ProviderResolution) -> str:
    prefix = f"{res.litellm_provider}/"
    model = res.litellm_model
    return model[len(prefix) :] if model.startswith(prefix) else model


def _chat_url(base: str) -> str:
    return base.rstrip("/") + "/chat/completions"


def native_route(
    res: ProviderResolution,
    setting: Any | None,
    extra_bases: Mapping[str, str] | None = None,
    *,
    custom: bool = False,
) -> NativeRoute | None:
    """The native endpoint of a resolved provider, or None when only litellm speaks it.

    Native: Anthropic (Messages API); OpenAI, DeepSeek, Ollama (its ``/v1`` API), Azure OpenAI
    and the OpenAI-compatible providers of :data:`NATIVE_OPENAI_BASES` or ``extra_bases``
    (Chat Completions); and, with ``custom``, a provider name of the user's own given a base
    URL. Google, Vertex, Bedrock and other litellm providers stay on litellm.

    Args:
        res: The resolution from :func:`resolve_provider`.
        setting: The ``[provider.setting]`` table (``useDeploymentBasedUrls``, ``headers``).
        extra_bases: More OpenAI-compatible providers by default base URL (litellm's data).
        custom: The provider is none litellm serves: its base URL speaks the OpenAI API.
    """
    headers: dict[str, str] = {"Content-Type": "application/json"}
    headers.update(res.extra.get("extra_headers") or {})
    wire = _wire_model(res)
    provider = res.litellm_provider
    if provider == "anthropic":
        base = (res.api_base or _ANTHROPIC_BASE).rstrip("/")
        if base.count("/") == 2:
            base += "/v1"  # a bare host ("https://api.anthropic.com"): the API is under /v1
        if res.api_key:
            headers["x-api-key"] = res.api_key
        headers["anthropic-version"] = ANTHROPIC_VERSION
        return NativeRoute("anthropic", base + "/messages", headers, wire)
    if res.api_key:
        headers["Authorization"] = f"Bearer {res.api_key}"
    if provider == "azure":
        assert res.api_base is not None  # resolve_provider requires it
        headers.pop("Authorization", None)
        if res.api_key:
            headers["api-key"] = res.api_key
        version = str(res.extra.get("api_version") or _AZURE_API_VERSION)
        url = (
            f"{res.api_base.rstrip('/')}/openai/deployments/{res.model}/chat/completions"
            f"?api-version={version}"
        )
        return NativeRoute("openai", url, headers, wire)
    if provider in ("ollama", "ollama_chat"):
        base = (res.api_base or _OLLAMA_BASE).rstrip("/")
        return NativeRoute("openai", base + "/v1/chat/completions", headers, wire)
    if provider == "openai":
        if res.extra.get("organization"):
            headers["OpenAI-Organization"] = str(res.extra["organization"])
    extra = extra_bases or {}
    url_base = res.api_base or NATIVE_OPENAI_BASES.get(provider) or extra.get(provider)
    # A base URL for a provider litellm serves its own way (gemini, bedrock, cohere...) is a
    # proxy of that provider's API, not an OpenAI-compatible one: that stays on litellm.
    compatible = custom or provider in NATIVE_OPENAI_BASES or provider in extra
    if url_base is None or not compatible:
        return None
    return NativeRoute("openai", _chat_url(url_base), headers, wire)
