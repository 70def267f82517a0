"""``perstack.lock``: tool definitions recorded by ``perstack install`` (reference §7, §18.9).

The file is Perstack's TOML format (``version = "1"``, ``generatedAt``, ``configPath`` and one
``[experts."<key>"]`` table per expert with its normalised definition and ``toolDefinitions``,
each skill with the ``name`` Perstack's schema requires: without it Perstack ignores the whole
file), plus one addition: ``skillHashes``, a SHA-256 per skill of the parts of its definition that
decide which server runs (:func:`skill_definition_hash`). At run time a skill whose hash is in
the lockfile advertises the recorded tools and starts on its first tool call, so the first model
request does not wait for any MCP server. A skill whose definition changed since
``perstack install`` (or that is not in the file) is reported and started live, instead of
silently offering no tools as Perstack does. Perstack ignores the extra key.

Tool definitions are stored before ``pick``/``omit`` (those are applied at run time), so editing
``pick`` never makes an entry stale.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError
from pydantic.alias_generators import to_camel

from runtime.config.loader import LoadedConfig
from runtime.config.resolve import ExpertDefinition, perstack_expert
from runtime.config.schema import McpStdioSkill, SkillConfig
from runtime.errors import SkillError
from runtime.files import atomic_write
from runtime.skills.mcp import is_bundled_base, stdio_launch
from runtime.skills.types import ToolDefinition

__all__ = [
    "LOCKFILE_NAME",
    "LOCKFILE_VERSION",
    "LockedExpert",
    "LockedTool",
    "Lockfile",
    "dumps_lockfile",
    "expert_entry",
    "load_lockfile",
    "lockfile_path",
    "read_lockfile",
    "skill_definition_hash",
    "write_lockfile",
]

LOCKFILE_NAME = "perstack.lock"
LOCKFILE_VERSION: Literal["1"] = "1"

# Fields that change neither the server that runs nor the tools it lists: editing them must not
# make a lockfile entry stale.
_PRESENTATION_FIELDS = frozenset(
    {
        "description",
        "rule",
        "pick",
        "omit",
        "allowed_domains",
        "lazy_init",
        "max_result_chars",
        "max_result_binary_bytes",
        "max_stderr_bytes",
        "max_stderr_message_bytes",
    }
)


class _LockModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class LockedTool(_LockModel):
    """One recorded tool (``toolDefinitions`` entry)."""

    skill_name: str
    name: str
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=dict)


class LockedExpert(_LockModel):
    """One ``[experts."<key>"]`` table."""

    key: str
    name: str
    version: str
    description: str | None = None
    instruction: str
    skills: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Skill definitions as normalised at install time (for readers; not used at run time)."""
    delegates: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    tool_definitions: list[LockedTool] = Field(default_factory=list)
    skill_hashes: dict[str, str] = Field(default_factory=dict)
    """Skill name → :func:`skill_definition_hash` at install time (not in Perstack)."""


class Lockfile(_LockModel):
    """A whole ``perstack.lock``."""

    version: Literal["1"]
    generated_at: int
    """Milliseconds since the epoch."""
    config_path: str
    """File name of the perstack.toml it was generated from."""
    experts: dict[str, LockedExpert] = Field(default_factory=dict)
    _reported: set[str] = PrivateAttr(default_factory=set)

    def first_report(self, key: str) -> bool:
        """True the first time ``key`` is seen, so a job warns once per stale skill.

        A delegate that runs ten times opens its skills ten times; one warning is enough.
        """
        if key in self._reported:
            return False
        self._reported.add(key)
        return True

    def cached_tools(
        self, name: str, config: SkillConfig, base_command: Sequence[str] | None = None
    ) -> list[ToolDefinition] | None:
        """The recorded tools of a skill, or None when its definition is not recorded.

        Entries are matched by definition hash, not by expert: an identical skill recorded for
        any expert has the same tools.

        Args:
            name: The skill's name in the running expert (becomes the tools' skill name).
            config: Its current definition.
            base_command: The current ``perstackBaseSkillCommand``.

        Returns:
            Every recorded tool of the skill (before pick/omit), or None if stale or missing.
        """
        digest = skill_definition_hash(name, config, base_command)
        for expert in self.experts.values():
            for skill_name, recorded in expert.skill_hashes.items():
                if recorded != digest:
                    continue
                return [
                    ToolDefinition(
                        skill_name=name,
                        name=tool.name,
                        description=tool.description,
                        input_schema=tool.input_schema,
                    )
                    for tool in expert.tool_definitions
                    if tool.skill_name == skill_name
                ]
        return None


def skill_definition_hash(
    name: str, config: SkillConfig, base_command: Sequence[str] | None = None
) -> str:
    """SHA-256 of what decides a skill's server and tools: type, command line, env names, URL.

    Presentation fields (description, rule, pick, omit, allowedDomains, lazyInit, and the
    output limits ``maxResultChars`` etc.) are left out.
    For stdio skills the effective launch is included (``bundled`` for the in-process base,
    else the command after ``npx -y`` and ``perstackBaseSkillCommand`` rewriting), so changing
    ``perstackBaseSkillCommand`` also makes the base skill's entry stale.

    Args:
        name: The skill's name (it decides whether the bundled base applies).
        config: The skill's definition.
        base_command: ``perstackBaseSkillCommand``, if set.

    Returns:
        A lowercase hex digest.
    """
    data: dict[str, Any] = config.model_dump(
        mode="json", by_alias=True, exclude=set(_PRESENTATION_FIELDS)
    )
    if isinstance(config, McpStdioSkill):
        if is_bundled_base(name, config, base_command):
            data["launch"] = "bundled"
        else:
            try:
                command, args = stdio_launch(name, config, base_command)
            except SkillError:
                pass  # cannot start either way; the raw fields identify it
            else:
                data["launch"] = [command, *args]
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def expert_entry(
    expert: ExpertDefinition,
    tools: Sequence[ToolDefinition],
    base_command: Sequence[str] | None = None,
) -> LockedExpert:
    """The lockfile table of one expert.

    Args:
        expert: The resolved expert (defaults applied, base skill injected).
        tools: Every tool its skills offer, before pick/omit; delegate tools are not recorded.
        base_command: ``perstackBaseSkillCommand``, if set.

    Returns:
        The entry, with a definition hash per skill.
    """
    return LockedExpert(
        **perstack_expert(expert),
        tool_definitions=[
            LockedTool(
                skill_name=tool.skill_name,
                name=tool.name,
                description=tool.description,
                input_schema=tool.input_schema,
            )
            for tool in tools
        ],
        skill_hashes={
            name: skill_definition_hash(name, config, base_command)
            for name, config in expert.skills.items()
        },
    )


def lockfile_path(loaded: LoadedConfig) -> Path | None:
    """Where the lockfile of a config lives: next to it (None for remote or in-memory configs)."""
    return loaded.path.parent / LOCKFILE_NAME if loaded.path is not None else None


def read_lockfile(path: Path) -> Lockfile:
    """Read and validate a lockfile.

    Args:
        path: The file.

    Returns:
        The lockfile.

    Raises:
        OSError: It cannot be read.
        ValueError: It is not UTF-8 TOML, or does not match the format
            (``tomllib.TOMLDecodeError`` and pydantic's ``ValidationError`` are ValueErrors).
    """
    data = tomllib.loads(path.read_bytes().decode("utf-8"))
    return Lockfile.model_validate(data)


def load_lockfile(
    loaded: LoadedConfig, *, warn: Callable[[str], None] | None = None
) -> Lockfile | None:
    """The lockfile next to perstack.toml, if there is a usable one.

    A missing file is normal (None, silently). An unreadable or invalid one is reported through
    ``warn`` and ignored, so a run never fails because of it.

    Args:
        loaded: The loaded perstack.toml.
        warn: Receives the warning; defaults to printing ``perstack: warning: ...`` on stderr.

    Returns:
        The lockfile, or None.
    """
    path = lockfile_path(loaded)
    if path is None or not path.is_file():
        return None
    try:
        return read_lockfile(path)
    except (OSError, ValueError) as error:
        reason = _reason(error)
        message = f"{LOCKFILE_NAME} is ignored: {reason}. Run `perstack install` to regenerate it."
        if warn is not None:
            warn(message)
        else:
            print(f"perstack: warning: {message}", file=sys.stderr)
        return None


def _reason(error: BaseException) -> str:
    if isinstance(error, ValidationError):
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"validation failed at {where}: {first['msg']}"
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return str(error)


def _without_none(value: Any) -> Any:
    # TOML has no null. JSON Schemas carry ``"default": null`` (optional parameters), which is
    # dropped: the default of an optional parameter is absent either way.
    if isinstance(value, Mapping):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


def dumps_lockfile(lockfile: Lockfile) -> str:
    """The lockfile as TOML text (instructions kept multi-line for readable diffs).

    Args:
        lockfile: What to serialise.

    Returns:
        TOML text that :func:`read_lockfile` reads back. ``null`` values inside tool schemas
        are dropped, since TOML cannot express them.
    """
    import tomlkit  # only `perstack install` writes; runs only read (tomllib)

    data = _without_none(lockfile.model_dump(mode="json", by_alias=True, exclude_none=True))
    document = tomlkit.document()
    document.add(tomlkit.comment("Generated by `perstack install`. Do not edit by hand."))
    for key in ("version", "generatedAt", "configPath"):
        document.add(key, data[key])
    experts = tomlkit.table(is_super_table=True)
    for key, entry in data["experts"].items():
        table = tomlkit.item(entry)
        instruction = entry["instruction"]
        if "\n" in instruction:
            table["instruction"] = tomlkit.string(instruction, multiline=True)
        experts.add(key, table)
    document.add("experts", experts)
    return tomlkit.dumps(document)


def write_lockfile(path: Path, lockfile: Lockfile) -> None:
    """Write the lockfile atomically (temporary file in the same directory, then rename).

    Args:
        path: Destination, normally ``<config dir>/perstack.lock``.
        lockfile: What to write.

    Raises:
        OSError: The directory is not writable.
    """
    text = dumps_lockfile(lockfile)
    atomic_write(path, text)
