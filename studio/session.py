"""What the studio knows about one perstack.toml, with no Textual in sight.

* where the file is (:func:`locate_config`) and how to read it (:func:`read_config`);
* the team's shape for the tree (:func:`outline_of`), from ``tomllib`` because it is fast and
  forgiving of schema errors;
* where keys are in the text (:class:`~runtime.config.TomlLocator`), so the tree can move the
  editor to a table;
* the analysis the studio runs after each edit (:func:`analyse`): the runtime's diagnostics plus
  the outline.

Everything here is pure and unit-testable; screens call it from workers and handlers.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Re-exported (``as``) for the studio's screens: the names are the runtime's.
from runtime.config import BASE_SKILL_NAME as BASE_SKILL_NAME
from runtime.config import CONFIG_FILE_NAME as CONFIG_FILE_NAME
from runtime.config import TomlLocator, read_key

if TYPE_CHECKING:
    from runtime.config import Diagnostic


SKILL_TYPES: dict[str, str] = {
    "mcpStdioSkill": "stdio",
    "mcpSseSkill": "sse",
    "mcpStreamableHttpSkill": "http",
    "interactiveSkill": "interactive",
}
"""Skill types the runtime knows, with the short name the tree shows."""


# Files -----------------------------------------------------------------------------------------


def is_remote(config: str | None) -> bool:
    """True when ``--config`` names a URL (the studio edits local files only)."""
    return bool(config) and str(config).lower().startswith(("http://", "https://"))


def locate_config(config: str | None, cwd: Path) -> Path:
    """The perstack.toml the studio opens, or creates when it does not exist.

    Args:
        config: The ``--config`` path, relative to ``cwd``; a directory means the perstack.toml
            in it. ``None`` searches ``cwd`` and its parents, like ``perstack run``.
        cwd: The working directory.

    Returns:
        An absolute path. When nothing is found it is ``cwd/perstack.toml``, which the empty
        state offers to create.
    """
    from runtime import ConfigError
    from runtime.config import config_path, find_config  # one rule for run and start

    cwd = cwd.expanduser().absolute()
    if config:
        return config_path(config, cwd)  # the runtime's rule, minus "must exist"
    try:
        found = find_config(None, cwd)
    except ConfigError:  # none in cwd or its parents: the empty state offers to create one
        return cwd / CONFIG_FILE_NAME
    assert isinstance(found, Path)
    return found


def decode_config(data: bytes) -> str:
    """The text of perstack.toml bytes (UTF-8, a leading BOM dropped).

    Raises:
        UnicodeDecodeError: The file is not UTF-8.
    """
    return data.decode("utf-8-sig")


def read_config(path: Path) -> tuple[bytes, str]:
    """The bytes and the text of a perstack.toml.

    Raises:
        OSError: The file cannot be read.
        UnicodeDecodeError: It is not UTF-8.
    """
    data = path.read_bytes()
    return data, decode_config(data)


def display_path(path: Path, cwd: Path) -> str:
    """``path`` relative to ``cwd`` when that is shorter, for titles and messages."""
    try:
        relative = path.relative_to(cwd)
    except ValueError:
        return str(path)
    return str(relative)


# Where keys are --------------------------------------------------------------------------------


def key_parts(dotted: str) -> tuple[str, ...]:
    """The parts of a dotted key as diagnostics write it (``experts."writer".instruction``)."""
    parsed = read_key(dotted)
    if parsed is None:
        return (dotted,)
    # Anything after the key (an array index such as ``delegates[0]``) is not a table.
    return parsed[0]


# The team's shape ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkillOutline:
    """One skill of an expert, as the tree shows it."""

    name: str
    type: str
    """The ``type`` value as written (may be unknown or empty)."""
    pick: tuple[str, ...] = ()
    omit: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    """Tool names of an interactive skill."""
    line: int | None = None


@dataclass(frozen=True)
class ExpertOutline:
    """One expert, as the tree shows it."""

    key: str
    description: str | None = None
    version: str | None = None
    delegates: tuple[str, ...] = ()
    skills: tuple[SkillOutline, ...] = ()
    has_skills_table: bool = False
    line: int | None = None


@dataclass(frozen=True)
class TeamOutline:
    """The shape of a perstack.toml: its model and its experts, in file order."""

    model: str | None = None
    model_line: int | None = None
    experts: tuple[ExpertOutline, ...] = ()

    @property
    def expert_keys(self) -> tuple[str, ...]:
        """The keys of the experts defined in the file."""
        return tuple(expert.key for expert in self.experts)

    def expert(self, key: str) -> ExpertOutline | None:
        """The expert with this key, if defined."""
        return next((expert for expert in self.experts if expert.key == key), None)


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def outline_of(text: str) -> TeamOutline | None:
    """The team's shape, or ``None`` when the text is not valid TOML.

    Schema errors do not matter here: a value of the wrong type is left out, so the tree keeps
    showing what it can while the diagnostics panel explains the rest.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    lines = TomlLocator(text)
    experts: list[ExpertOutline] = []
    tables = data.get("experts")
    for key, table in tables.items() if isinstance(tables, dict) else ():
        if not isinstance(table, dict):
            continue
        skills_table = table.get("skills")
        skills: list[SkillOutline] = []
        for name, skill in skills_table.items() if isinstance(skills_table, dict) else ():
            skill = skill if isinstance(skill, dict) else {}
            tools = skill.get("tools")
            skills.append(
                SkillOutline(
                    name=name,
                    type=_text(skill.get("type")) or "",
                    pick=_strings(skill.get("pick")),
                    omit=_strings(skill.get("omit")),
                    tools=tuple(tools) if isinstance(tools, dict) else (),
                    line=lines.line_of(("experts", key, "skills", name)),
                )
            )
        experts.append(
            ExpertOutline(
                key=key,
                description=_text(table.get("description")),
                version=_text(table.get("version")),
                delegates=_strings(table.get("delegates")),
                skills=tuple(skills),
                has_skills_table=isinstance(skills_table, dict),
                line=lines.line_of(("experts", key)),
            )
        )
    model_at = lines.find(("model",))
    return TeamOutline(
        model=_text(data.get("model")),
        model_line=model_at.line if model_at is not None else None,
        experts=tuple(experts),
    )


# Analysis --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Analysis:
    """What the studio shows about one version of the text."""

    diagnostics: tuple[Diagnostic, ...]
    """Problems, sorted by line (from :func:`runtime.config.diagnostics.diagnose`)."""
    outline: TeamOutline | None
    """The team's shape; ``None`` when the text is not valid TOML."""
    problem_experts: frozenset[str] = field(default_factory=frozenset)
    """Experts with at least one error, to mark in the tree."""

    @property
    def errors(self) -> int:
        """How many diagnostics are errors."""
        return sum(1 for item in self.diagnostics if item.severity == "error")

    @property
    def warnings(self) -> int:
        """How many diagnostics are warnings."""
        return sum(1 for item in self.diagnostics if item.severity == "warning")


def analyse(text: str, *, label: str = CONFIG_FILE_NAME) -> Analysis:
    """Diagnose ``text`` and outline the team (runs in a worker thread)."""
    # Imported here: the runtime's validation pulls in pydantic, which first paint must not wait
    # for.
    from runtime.config import diagnose

    diagnostics = tuple(diagnose(text, label=label))
    problem_experts = set()
    for item in diagnostics:
        parts = key_parts(item.key) if item.key else ()
        if item.severity == "error" and len(parts) >= 2 and parts[0] == "experts":
            problem_experts.add(parts[1])
    return Analysis(diagnostics, outline_of(text), frozenset(problem_experts))


# Editing the text ------------------------------------------------------------------------------


def changed_lines(old: str, new: str) -> tuple[int, int, int]:
    """The smallest block of lines to replace in ``old`` to get ``new``.

    Returns:
        ``(first, old_end, new_end)``: 0-based line indexes; lines ``first:old_end`` of ``old``
        become lines ``first:new_end`` of ``new`` (lines counted with their line endings).
    """
    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    first = 0
    limit = min(len(old_lines), len(new_lines))
    while first < limit and old_lines[first] == new_lines[first]:
        first += 1
    tail = 0
    while (
        tail < limit - first
        and old_lines[len(old_lines) - 1 - tail] == new_lines[len(new_lines) - 1 - tail]
    ):
        tail += 1
    return first, len(old_lines) - tail, len(new_lines) - tail
