"""perstack.toml as typed models (§1 of the reference).

Field names are Perstack's camelCase keys (aliases); Python attributes are snake_case. Unknown keys
are ignored by the models and reported as warnings by :func:`runtime.config.loader.load_config`,
because Perstack silently strips them and real files depend on that.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlparse

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

BASE_SKILL_NAME = "@perstack/base"
"""The skill key every expert with a ``skills`` table must define."""

DEFAULT_MODEL = "claude-sonnet-4-5"
DEFAULT_PROVIDER = "anthropic"
DEFAULT_REASONING_BUDGET: Final = "low"
DEFAULT_MAX_STEPS = 100
DEFAULT_MAX_RETRIES = 5
DEFAULT_TIMEOUT_MS = 300_000
DEFAULT_ENV_PATH = (".env", ".env.local")

DEFAULT_MAX_RESULT_CHARS = 100_000
"""Characters of text an MCP tool result may hand the model (``maxResultChars``)."""
DEFAULT_MAX_RESULT_BINARY_BYTES = 5 * 1024 * 1024
"""Decoded bytes of images and files an MCP tool result may carry (``maxResultBinaryBytes``)."""
DEFAULT_MAX_STDERR_BYTES = 1024 * 1024
"""Bytes of a stdio server's stderr stored as ``skillStderr`` events (``maxStderrBytes``), per
skill and run segment (each delegate run opens its own skills)."""
DEFAULT_MAX_STDERR_MESSAGE_BYTES = 16 * 1024
"""Bytes of one ``skillStderr`` event (``maxStderrMessageBytes``)."""

EXPERT_KEY_RE = re.compile(
    r"^(@[a-z0-9][a-z0-9_.-]*/)?[a-z0-9][a-z0-9_.-]*(@(\d+\.\d+\.\d+(-[\w.-]+)?(\+[\w.-]+)?|[\w.-]+))?$"
)
"""Keys accepted where an expert is referred to (CLI argument, delegates): may carry @version."""

EXPERT_NAME_RE = re.compile(r"^(@[a-z0-9][a-z0-9_-]*/)?[a-z0-9][a-z0-9_-]*$")
"""Keys accepted for ``[experts."<key>"]`` tables: lowercase, optional @scope/, no dots."""

EXPERT_REF_RE = re.compile(r"^(?P<name>(?:@[^/@]+/)?[^@]+)(?:@(?P<suffix>[^@]+))?$")
"""A reference to an expert as written in ``delegates``: a key, then ``@version`` or ``@tag``."""


def split_expert_ref(ref: str) -> tuple[str, str | None]:
    """``@org/name@1.2.3`` → (``@org/name``, ``1.2.3``); a bare key → (key, None)."""
    match = EXPERT_REF_RE.match(ref)
    if match is None:
        return ref, None
    return match.group("name"), match.group("suffix")


SEMVER_RE = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

PROVIDER_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
"""Perstack's provider names and litellm's (``anthropic``, ``azure-openai``, ``fireworks_ai``)."""

ReasoningLevel = Literal["none", "minimal", "low", "medium", "high"]
REASONING_LEVELS: tuple[ReasoningLevel, ...] = ("none", "minimal", "low", "medium", "high")

ERROR_AT = "at"
"""Context key of a validation error that concerns a key *below* the validated object.

A model validator can only fail at the model's own location; it puts the dotted key path of the
offending child, relative to the error's location (e.g. ``"baseUrl"`` for an error raised while
validating ``provider.setting``), under this key so the loader can point at that line.
"""

MAX_SHOWN_CHARS = 80
"""Characters of a value quoted in a message; a longer value is cut and its length given."""

MAX_PATH_BYTES = 4096
"""Longest ``envPath`` entry, in UTF-8 bytes (Linux's PATH_MAX)."""
MAX_PATH_PART_BYTES = 255
"""Longest file or directory name in an ``envPath`` entry, in UTF-8 bytes (NAME_MAX)."""


def short_repr(value: object, limit: int = MAX_SHOWN_CHARS) -> str:
    """``repr(value)`` for a message, cut after about ``limit`` characters.

    A value can be megabytes long; messages quote its start and say how long it is, e.g.
    ``'xxxxxxxx…' (2,000,000 characters)``.
    """
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        # repr of the prefix only: repr of the whole value would copy megabytes to cut them.
        text = repr(value[:limit])
        return f"{text[: limit + 1]}…{text[0]} ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def _reasoning_budget(value: object) -> object:
    # One clear message instead of pydantic's two union-member errors; bool is rejected because
    # pydantic would otherwise read ``reasoningBudget = true`` as the integer 1.
    if isinstance(value, str) and value in REASONING_LEVELS:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError(
        "must be 'none', 'minimal', 'low', 'medium', 'high' or a non-negative token count "
        f"(got {short_repr(value)})"
    )


ReasoningBudget = Annotated[
    ReasoningLevel | Annotated[int, Field(ge=0)], BeforeValidator(_reasoning_budget)
]


class TomlModel(BaseModel):
    """Base of the perstack.toml models: camelCase keys, unknown keys ignored (and warned)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


def is_loopback_host(host: str | None) -> bool:
    """True for localhost and loopback addresses (allowed over plain http)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_private_host(host: str | None) -> bool:
    """True for hosts a public endpoint must not point at (loopback, private, link-local)."""
    if not host:
        return True
    if host == "localhost":
        return True
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_unspecified


def _check_base_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme == "https":
        return url
    if parsed.scheme == "http" and is_loopback_host(parsed.hostname):
        return url
    raise ValueError(
        f"URL must use HTTPS (got {short_repr(url)}; plain http is allowed only for localhost / "
        "127.0.0.1)"
    )


# Skills --------------------------------------------------------------------------------------


class _SkillBase(TomlModel):
    description: str | None = None
    """Shown when publishing; not sent to the model."""
    rule: str | None = None
    """Appended to the expert's system prompt as this skill's rules."""


class _McpSkillBase(_SkillBase):
    pick: list[str] = Field(default_factory=list)
    """Only these tools (empty: all)."""
    omit: list[str] = Field(default_factory=list)
    """Never these tools."""
    allowed_domains: list[str] | None = None
    """Network allow-list for this skill when sandboxed (``*.example.com`` or exact domains)."""
    max_result_chars: int | None = Field(default=None, ge=1, strict=True)
    """Characters of text one tool result may hand the model; the rest is cut and the model is
    told so. Not in Perstack (which ignores the key). None: :data:`DEFAULT_MAX_RESULT_CHARS`."""
    max_result_binary_bytes: int | None = Field(default=None, ge=1, strict=True)
    """Decoded bytes of images and embedded files one tool result may carry; parts beyond it are
    replaced by a note. Not in Perstack. None: :data:`DEFAULT_MAX_RESULT_BINARY_BYTES`."""

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, value: list[str] | None) -> list[str] | None:
        for domain in value or []:
            if "xn--" in domain:
                raise ValueError(f"punycode domains are not allowed: {short_repr(domain)}")
            if not re.fullmatch(r"(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?", domain):
                raise ValueError(f"not a domain pattern: {short_repr(domain)}")
        return value


class McpStdioSkill(_McpSkillBase):
    """An MCP server started as a child process speaking stdio."""

    type: Literal["mcpStdioSkill"]
    command: str = Field(min_length=1)
    """Executable, e.g. ``npx``, ``uvx``, ``python``."""
    package_name: str | None = None
    """Package to run (argv becomes ``[packageName]``); exclusive with ``args``."""
    args: list[str] = Field(default_factory=list)
    required_env: list[str] = Field(default_factory=list)
    """Environment variables passed to the server (only these, plus a safe minimum)."""
    lazy_init: bool = Field(default=False, strict=True)
    """Accepted for Perstack compatibility. A skill starts on its first tool call only when
    perstack.lock records its tools (then with or without this key); otherwise it starts
    before the first model call, which needs its tool list, and a warning says so."""
    max_stderr_bytes: int | None = Field(default=None, ge=1, strict=True)
    """Bytes of the server's stderr stored as ``skillStderr`` events per run; then one
    "stderr truncated" notice and nothing more. Not in Perstack.
    None: :data:`DEFAULT_MAX_STDERR_BYTES`."""
    max_stderr_message_bytes: int | None = Field(default=None, ge=1, strict=True)
    """Bytes of one ``skillStderr`` event: longer output is split at line ends, and a longer
    line is cut. Not in Perstack. None: :data:`DEFAULT_MAX_STDERR_MESSAGE_BYTES`."""


class McpSseSkill(_McpSkillBase):
    """A remote MCP server over the legacy SSE transport."""

    type: Literal["mcpSseSkill"]
    endpoint: str

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme == "https" and not is_private_host(parsed.hostname):
            return value
        if parsed.scheme in ("http", "https") and is_loopback_host(parsed.hostname):
            return value
        raise ValueError(
            "SSE endpoint must be a public HTTPS URL, or a loopback URL for testing "
            f"(got {short_repr(value)})"
        )


class McpStreamableHttpSkill(McpSseSkill):
    """A remote MCP server over streamable HTTP (not in Perstack)."""

    type: Literal["mcpStreamableHttpSkill"]  # type: ignore[assignment]
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra HTTP headers; values may reference env vars as ``${NAME}``."""


class InteractiveTool(TomlModel):
    """A tool whose answer comes from the user."""

    description: str | None = None
    input_json_schema: str = Field(max_length=20 * 1024)
    """JSON Schema of the tool input, as a JSON string."""

    @field_validator("input_json_schema")
    @classmethod
    def _json_schema(cls, value: str) -> str:
        # Perstack only finds out when the tool is offered to the model; fail at load instead.
        try:
            schema = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"is not valid JSON: {error.msg} at line {error.lineno}") from None
        except RecursionError:
            raise ValueError("is nested too deeply to be a JSON Schema") from None
        if not isinstance(schema, dict):
            raise ValueError('must be a JSON object (a JSON Schema such as {"type": "object"})')
        return value


class InteractiveSkill(_SkillBase):
    """Tools answered by the user; calling one pauses the run."""

    type: Literal["interactiveSkill"]
    tools: dict[str, InteractiveTool]


SkillConfig = Annotated[
    McpStdioSkill | McpSseSkill | McpStreamableHttpSkill | InteractiveSkill,
    Field(discriminator="type"),
]


def default_base_skill() -> McpStdioSkill:
    """The base skill Perstack injects when an expert has no ``skills`` table."""
    return McpStdioSkill(type="mcpStdioSkill", command="npx", args=["-y", BASE_SKILL_NAME])


# Experts -------------------------------------------------------------------------------------


class ExpertConfig(TomlModel):
    """One ``[experts."<key>"]`` table."""

    version: str = "1.0.0"
    min_runtime_version: str | None = None
    description: str | None = Field(default=None, min_length=1, max_length=2048)
    """Shown to parent experts as the delegate tool's description."""
    instruction: str = Field(min_length=1, max_length=20480)
    """The expert's private instruction (system prompt body)."""
    skills: dict[str, SkillConfig] | None = None
    delegates: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    provider_tools: list[str] | None = None
    provider_skills: list[dict[str, Any]] | None = None
    provider_tool_options: dict[str, Any] | None = None

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not SEMVER_RE.match(value):
            raise ValueError(f"must be a semantic version like 1.0.0 (got {short_repr(value)})")
        return value

    @field_validator("delegates")
    @classmethod
    def _delegates(cls, value: list[str]) -> list[str]:
        for key in value:
            if not EXPERT_KEY_RE.match(key):
                raise ValueError(
                    f"{short_repr(key)} is not a valid expert key: use lowercase letters, digits, "
                    "'-', '_' and '.', optionally @scope/ before and @version after"
                )
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not TAG_RE.match(tag):
                raise ValueError(
                    f"{short_repr(tag)} is not a valid tag: use lowercase letters, digits, '-' "
                    "and '_'"
                )
        return value


# Provider ------------------------------------------------------------------------------------


class ProviderSetting(TomlModel):
    """``[provider.setting]``: the union of every provider's keys (each uses its own)."""

    base_url: str | None = None
    headers: dict[str, str] | None = None
    organization: str | None = None
    project: str | None = None
    name: str | None = None
    resource_name: str | None = None
    api_version: str | None = None
    use_deployment_based_urls: bool | None = Field(default=None, strict=True)
    region: str | None = None
    location: str | None = None
    # Ours, not Perstack's (Perstack ignores unknown keys here):
    client: Literal["auto", "native", "litellm"] | None = None
    """Which model client to use: ``native`` (built-in HTTP clients), ``litellm``, or ``auto``
    (native where the provider speaks the OpenAI or Anthropic API). ``PERSTACK_MODEL_CLIENT``
    overrides it."""
    tool_call_mode: Literal["native", "text"] | None = None
    """``text`` also accepts a tool call the model wrote as JSON text (weak local models);
    ``PERSTACK_TOOL_CALL_MODE`` overrides it."""


class ProviderConfig(TomlModel):
    """``[provider]``: which provider and its settings (API keys come from the environment)."""

    provider_name: str
    """A Perstack provider name (anthropic, openai, google, ...) or any litellm provider."""
    setting: ProviderSetting = Field(default_factory=ProviderSetting)

    @field_validator("provider_name")
    @classmethod
    def _provider_name(cls, value: str) -> str:
        if not PROVIDER_NAME_RE.match(value):
            raise ValueError(
                'must be a lowercase provider name such as "anthropic", "openai", '
                f'"google" or "ollama" (got {short_repr(value)})'
            )
        return value

    @field_validator("setting")
    @classmethod
    def _base_url(cls, value: ProviderSetting, info: ValidationInfo) -> ProviderSetting:
        # Ollama runs locally over plain http by design; every other provider needs https.
        provider_name = info.data.get("provider_name")
        if value.base_url and provider_name not in (None, "ollama"):
            try:
                _check_base_url(value.base_url)
            except ValueError as error:
                raise PydanticCustomError(
                    "insecure_url", str(error), {ERROR_AT: "baseUrl"}
                ) from None
        return value


# Top level -----------------------------------------------------------------------------------


def _expert_keys(key: str) -> str:
    if not EXPERT_NAME_RE.match(key) or len(key) > 255:
        raise ValueError(
            f"expert key {short_repr(key)} is invalid: use lowercase letters, digits, '-' and '_', "
            "optionally prefixed by @scope/ (no dots, no @version)"
        )
    return key


# Validated as a dict key (not by a validator on the whole dict) so a bad key is reported
# together with the errors inside every expert table, at the key's own location.
ExpertKey = Annotated[str, AfterValidator(_expert_keys)]


def _env_path_entry(path: str) -> str:
    # Refused here, with the entry's line, rather than as an OSError when the file is opened.
    if "\x00" in path:
        raise ValueError(
            f"contains a NUL character, which no path can hold (got {short_repr(path)})"
        )
    size = len(path.encode("utf-8", "surrogatepass"))
    if size > MAX_PATH_BYTES:
        raise ValueError(
            f"is too long for a path: {size:,} bytes, at most {MAX_PATH_BYTES:,} "
            f"(got {short_repr(path)})"
        )
    for part in re.split(r"[\\/]", path):
        size = len(part.encode("utf-8", "surrogatepass"))
        if size > MAX_PATH_PART_BYTES:
            raise ValueError(
                f"has a file or directory name of {size:,} bytes, at most {MAX_PATH_PART_BYTES} "
                f"(got {short_repr(path)})"
            )
    return path


EnvPathEntry = Annotated[str, AfterValidator(_env_path_entry)]
"""An env file path: no NUL, not longer than a file system accepts."""


class PerstackConfig(TomlModel):
    """A whole perstack.toml."""

    model: str | None = None
    reasoning_budget: ReasoningBudget | None = None
    runtime: Literal["local", "cursor", "claude-code", "gemini", "docker"] | None = None
    # strict: pydantic would otherwise read ``maxSteps = true`` as 1 and ``"100"`` as 100.
    max_steps: int | None = Field(default=None, ge=1, strict=True)
    max_retries: int | None = Field(default=None, ge=0, strict=True)
    timeout: int | None = Field(default=None, ge=1, strict=True)
    """Per-generation timeout in milliseconds."""
    provider: ProviderConfig | None = None
    experts: dict[ExpertKey, ExpertConfig] = Field(default_factory=dict)
    perstack_api_base_url: str | None = None
    perstack_base_skill_command: list[str] | None = Field(default=None, min_length=1)
    env_path: list[EnvPathEntry] | None = None
    """Env files to load, relative to perstack.toml (default ``.env`` then ``.env.local``)."""
    sandbox: bool | None = Field(default=None, strict=True)
    """Run exec and stdio skills in an OS sandbox (not in Perstack)."""
    storage_url: str | None = None
    """Keep jobs in an object store (``s3://bucket/prefix``), as ``$PERSTACK_STORAGE_URL`` does
    (the variable wins). Not in Perstack: docs/scale-out.md."""

    @field_validator("perstack_api_base_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError(f"must use HTTPS (got {short_repr(value)})")
        return value
