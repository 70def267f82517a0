"""What a run uses from perstack.toml: its experts with Perstack's defaults, and its settings.

* :func:`resolve_expert` turns an ``[experts."<key>"]`` table (or a built-in expert) into an
  :class:`ExpertDefinition`, with the ``@perstack/base`` skill injected when it has none;
* :func:`effective_settings` applies command-line options over perstack.toml over Perstack's
  defaults (:class:`EffectiveSettings`);
* :func:`resolve_tool_call_mode` picks how tool calls are read from replies.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from runtime.config.checks import suggest
from runtime.config.loader import LoadedConfig
from runtime.config.problems import CONFIG_FILE_NAME
from runtime.config.schema import (
    BASE_SKILL_NAME,
    DEFAULT_ENV_PATH,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_STEPS,
    DEFAULT_MODEL,
    DEFAULT_PROVIDER,
    DEFAULT_REASONING_BUDGET,
    DEFAULT_TIMEOUT_MS,
    PROVIDER_NAME_RE,
    REASONING_LEVELS,
    SEMVER_RE,
    PerstackConfig,
    ProviderSetting,
    ReasoningLevel,
    SkillConfig,
    default_base_skill,
    split_expert_ref,
)
from runtime.errors import ConfigError, UsageError


@dataclass(frozen=True)
class ExpertDefinition:
    """An expert as a run uses it: the toml table plus Perstack's run-time defaults (§1.3)."""

    key: str
    """The key of its ``[experts."<key>"]`` table."""
    name: str
    """Equal to ``key`` (Perstack sets the name from the key)."""
    version: str
    """Semver; ``1.0.0`` unless the table says otherwise."""
    description: str | None
    """Shown to parent experts as the delegate tool's description."""
    instruction: str
    """The expert's private instruction."""
    skills: dict[str, SkillConfig]
    """Skills by name, in file order; ``@perstack/base`` injected when the table has none."""
    delegates: tuple[str, ...] = ()
    """Keys of the experts this one may delegate to."""
    tags: tuple[str, ...] = ()
    """Free-form tags from the table."""
    base_skill_injected: bool = False
    """True when the expert had no ``skills`` table and got the default base skill."""
    label: str = "perstack.toml"
    """The file that defines it, for messages."""

    @property
    def lacks_base_skill(self) -> bool:
        """A ``skills`` table without ``@perstack/base``: the expert cannot run (Perstack)."""
        return BASE_SKILL_NAME not in self.skills

    def require_base_skill(self) -> None:
        """Refuse to run an expert without the base skill, with Perstack's message.

        Perstack accepts such a file and fails only when that expert runs; so do we, with the
        fix. Other experts of the file run.

        Raises:
            ConfigError: The expert's skills table has no ``@perstack/base``.
        """
        if self.lacks_base_skill:
            raise ConfigError(
                f'Base skill is not defined: expert "{self.key}" in {self.label} has a skills '
                f'table without "{BASE_SKILL_NAME}". Add a skills."{BASE_SKILL_NAME}" table '
                f'with type = "mcpStdioSkill", command = "npx", packageName = "{BASE_SKILL_NAME}"'
            )

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of what the expert is (instruction, skills, delegates, ...).

        Comments, layout and other experts do not change it, so it tells whether a run was
        made with the definition now in the file. Runs record it (``startRun.definitionSha256``).
        """
        document = {
            "key": self.key,
            "version": self.version,
            "description": self.description,
            "instruction": self.instruction,
            "skills": {
                name: skill.model_dump(mode="json", by_alias=True)
                for name, skill in self.skills.items()
            },
            "delegates": list(self.delegates),
            "tags": list(self.tags),
        }
        text = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def perstack_expert(expert: ExpertDefinition) -> dict[str, Any]:
    """The expert as Perstack's expert schema has it (lockfile entries, run-setting.json).

    Each skill carries its ``name``, which that schema requires (Perstack ignores a lockfile
    without them); no secret is in it, only names and templates as written in perstack.toml.
    """
    document: dict[str, Any] = {
        "key": expert.key,
        "name": expert.name,
        "version": expert.version,
        "instruction": expert.instruction,
        "skills": {
            name: {"name": name, **skill.model_dump(mode="json", by_alias=True, exclude_none=True)}
            for name, skill in expert.skills.items()
        },
        "delegates": list(expert.delegates),
        "tags": list(expert.tags),
    }
    if expert.description is not None:
        document["description"] = expert.description
    return document


@dataclass(frozen=True)
class EffectiveSettings:
    """Run settings after applying CLI options, then perstack.toml, then Perstack's defaults."""

    provider: str
    """Provider name (Perstack's or litellm's)."""
    model: str
    """Model id."""
    reasoning_budget: ReasoningLevel | int
    """A reasoning level or a token budget (``0`` and ``"none"`` disable reasoning)."""
    max_steps: int
    """Job-wide step limit."""
    max_retries: int
    """Retries of a failed generation."""
    timeout: int
    """Per-generation timeout in milliseconds."""
    provider_setting: ProviderSetting = field(default_factory=ProviderSetting)
    """``[provider.setting]``, when the toml's provider is the one in use; else empty."""
    env_path: tuple[str, ...] = DEFAULT_ENV_PATH
    """Env files to load, in order."""


# Experts -------------------------------------------------------------------------------------


def _unwrap(source: LoadedConfig | PerstackConfig) -> tuple[PerstackConfig, str]:
    if isinstance(source, LoadedConfig):
        return source.config, source.label
    return source, CONFIG_FILE_NAME


def all_expert_keys(source: LoadedConfig | PerstackConfig) -> list[str]:
    """The keys of every expert defined in perstack.toml, in file order.

    Args:
        source: A loaded config or a bare :class:`~runtime.config.schema.PerstackConfig`.

    Returns:
        The expert keys.
    """
    config, _ = _unwrap(source)
    return list(config.experts)


def resolve_expert(source: LoadedConfig | PerstackConfig, key: str) -> ExpertDefinition:
    """The expert ``key`` with Perstack's run-time defaults applied.

    ``key`` may carry a version or tag (``writer@1.0.0``, ``writer@latest``), as on the command
    line; it is stripped when no expert has the full key. A version that differs from the one
    in the file is refused rather than silently running other instructions.

    Args:
        source: A loaded config or a bare :class:`~runtime.config.schema.PerstackConfig`.
        key: The expert key.

    Returns:
        The expert, with the ``@perstack/base`` skill injected when its table has no ``skills``.

    Raises:
        UsageError: No expert with this key is defined (the message lists the defined ones and
            suggests a near match), or the requested version is not the one defined.
    """
    config, label = _unwrap(source)
    found = key if key in config.experts else None
    if found is None:
        name, suffix = split_expert_ref(key)
        if suffix is not None and name in config.experts:
            version = config.experts[name].version
            if SEMVER_RE.match(suffix) and suffix != version:
                raise UsageError(
                    f'Expert "{key}" not found in {label}: it defines "{name}" at version '
                    f"{version}. Use {name} or {name}@{version}."
                )
            found = name
    expert_config = config.experts.get(found) if found is not None else None
    if expert_config is None:
        from runtime.config.builtin import builtin_experts

        builtins = builtin_experts()
        if key not in builtins:
            raise UsageError(_not_found_message(key, list(config.experts), label))
        found, expert_config = key, builtins[key]
    assert found is not None
    expert = expert_config
    injected = expert.skills is None
    skills: dict[str, SkillConfig] = (
        {BASE_SKILL_NAME: default_base_skill()} if expert.skills is None else dict(expert.skills)
    )
    return ExpertDefinition(
        key=found,
        name=found,
        version=expert.version,
        description=expert.description,
        instruction=expert.instruction,
        skills=skills,
        delegates=tuple(expert.delegates),
        tags=tuple(expert.tags),
        base_skill_injected=injected,
        label=label,
    )


def _not_found_message(key: str, defined: Sequence[str], label: str) -> str:
    if not defined:
        return (
            f'Expert "{key}" not found in {label}. No experts are defined: add an '
            f'[experts."{key}"] table with an instruction.'
        )
    message = f'Expert "{key}" not found in {label}. Defined experts: {", ".join(defined)}.'
    close = suggest(key, defined)
    return f'{message} Did you mean "{close}"?' if close else message


# Settings ------------------------------------------------------------------------------------


def parse_reasoning_budget(
    value: str | int, *, option: str = "--reasoning-budget"
) -> ReasoningLevel | int:
    """Read a reasoning budget as given on the command line.

    Args:
        value: ``none``, ``minimal``, ``low``, ``medium``, ``high`` (any case) or a non-negative
            token count, as a string or an int.
        option: The option name, for the error message.

    Returns:
        The level, or the token count as an int.

    Raises:
        UsageError: The value is neither a level nor a non-negative integer.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        for level in REASONING_LEVELS:
            if text == level:
                return level
        if text.isdigit():
            return int(text)
    raise UsageError(
        f"{option} must be none, minimal, low, medium, high or a non-negative token count "
        f"(got {value!r})"
    )


def _cli_int(value: int | str, option: str, minimum: int) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    if number is None or number < minimum:
        raise UsageError(f"{option} must be a whole number of at least {minimum} (got {value!r})")
    return number


def effective_settings(
    config: LoadedConfig | PerstackConfig,
    *,
    provider: str | None = None,
    model: str | None = None,
    reasoning_budget: str | int | None = None,
    max_steps: int | str | None = None,
    max_retries: int | str | None = None,
    timeout: int | str | None = None,
    env_path: Sequence[str] | None = None,
) -> EffectiveSettings:
    """Apply command-line options over perstack.toml over Perstack's defaults (§1.1, §2.2).

    Defaults: provider ``anthropic``, model ``claude-sonnet-4-5``, reasoning ``low``, 100 steps,
    5 retries, 300000 ms per generation, env files ``.env`` then ``.env.local``. Options may be
    given as strings straight from the command line; they are checked here.

    Args:
        config: The loaded perstack.toml (or its validated model).
        provider: ``--provider``.
        model: ``--model``.
        reasoning_budget: ``--reasoning-budget``: a level or a token count.
        max_steps: ``--max-steps`` (at least 1).
        max_retries: ``--max-retries`` (at least 0).
        timeout: ``--timeout`` in milliseconds (at least 1).
        env_path: ``--env-path`` values, in order.

    Returns:
        The settings to run with. ``provider_setting`` is the toml's ``[provider.setting]`` only
        when the provider in use is the toml's ``providerName``.

    Raises:
        UsageError: An option's value is invalid; the message names the option.
    """
    toml, _ = _unwrap(config)
    if provider is not None and not PROVIDER_NAME_RE.match(provider):
        raise UsageError(
            "--provider must be a lowercase provider name such as anthropic, openai, google or "
            f"ollama (got {provider!r})"
        )
    if model is not None and not model.strip():
        raise UsageError("--model must not be empty")
    toml_provider = toml.provider.provider_name if toml.provider is not None else None
    chosen_provider = provider or toml_provider or DEFAULT_PROVIDER
    setting = (
        toml.provider.setting
        if toml.provider is not None and chosen_provider == toml_provider
        else ProviderSetting()
    )
    budget: ReasoningLevel | int
    if reasoning_budget is not None:
        budget = parse_reasoning_budget(reasoning_budget)
    elif toml.reasoning_budget is not None:
        budget = toml.reasoning_budget
    else:
        budget = DEFAULT_REASONING_BUDGET
    return EffectiveSettings(
        provider=chosen_provider,
        model=model or toml.model or DEFAULT_MODEL,
        reasoning_budget=budget,
        max_steps=(
            _cli_int(max_steps, "--max-steps", 1)
            if max_steps is not None
            else toml.max_steps or DEFAULT_MAX_STEPS
        ),
        max_retries=(
            _cli_int(max_retries, "--max-retries", 0)
            if max_retries is not None
            else toml.max_retries
            if toml.max_retries is not None
            else DEFAULT_MAX_RETRIES
        ),
        timeout=(
            _cli_int(timeout, "--timeout", 1)
            if timeout is not None
            else toml.timeout or DEFAULT_TIMEOUT_MS
        ),
        provider_setting=setting,
        env_path=tuple(env_path)
        if env_path is not None
        else tuple(toml.env_path or DEFAULT_ENV_PATH),
    )


ToolCallMode = Literal["native", "text"]
"""How tool calls are read from a reply: ``native`` only from the provider's tool-call fields;
``text`` also from a reply whose text is nothing but a JSON call (weak local models)."""

TOOL_CALL_MODE_ENV = "PERSTACK_TOOL_CALL_MODE"
"""The environment variable that overrides ``[provider.setting] toolCallMode``."""


def resolve_tool_call_mode(setting: ProviderSetting, env: Mapping[str, str]) -> ToolCallMode:
    """The tool-call mode of a run: the environment variable, else perstack.toml, else native.

    Args:
        setting: The effective ``[provider.setting]`` (see :func:`effective_settings`).
        env: The run's environment (process variables, then env files).

    Raises:
        ConfigError: ``PERSTACK_TOOL_CALL_MODE`` is set to something other than native or text.
    """
    value = env.get(TOOL_CALL_MODE_ENV, "").strip().lower()
    if value in ("native", "text"):
        return "text" if value == "text" else "native"
    if value:
        raise ConfigError(
            f"{TOOL_CALL_MODE_ENV} must be native or text (got {env[TOOL_CALL_MODE_ENV]!r})"
        )
    return setting.tool_call_mode or "native"
