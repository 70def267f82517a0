"""What the studio knows about one perstack.toml, with no Textual in sight.

* where the file is (:func:`locate_config`) and how to read it (:func:`read_config`);
* the team's shape for the tree (:func:`outline_of`), from ``tomllib`` because it is fast and
  forgiving of schema errors;
* where keys are in the text (:class:`KeyLines`), so the tree can move the editor to a table;
* the analysis the studio runs after each edit (:func:`analyse`): the runtime's diagnostics plus
  the outline.

Everything here is pure and unit-testable; screens call it from workers and handlers.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.config.diagnostics import Diagnostic

CONFIG_FILE_NAME = "perstack.toml"
BASE_SKILL_NAME = "@perstack/base"

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
    cwd = cwd.expanduser().absolute()
    if config:
        path = Path(config).expanduser()
        path = path if path.is_absolute() else cwd / path
        return path / CONFIG_FILE_NAME if path.is_dir() else path
    for directory in (cwd, *cwd.parents):
        candidate = directory / CONFIG_FILE_NAME
        if candidate.is_file():
            return candidate
    return cwd / CONFIG_FILE_NAME


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

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_BASIC_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}

KeyPath = tuple[str, ...]


def _read_basic(text: str, start: int) -> tuple[str, int] | None:
    """A ``"..."`` key starting at ``start`` (on the opening quote); (value, index after)."""
    out: list[str] = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == '"':
            return "".join(out), index + 1
        if char == "\\" and index + 1 < len(text):
            escape = text[index + 1]
            if escape in ("u", "U"):
                width = 4 if escape == "u" else 8
                try:
                    out.append(chr(int(text[index + 2 : index + 2 + width], 16)))
                except ValueError:
                    return None
                index += 2 + width
                continue
            out.append(_BASIC_ESCAPES.get(escape, escape))
            index += 2
            continue
        out.append(char)
        index += 1
    return None


def parse_dotted_key(text: str, start: int = 0) -> tuple[KeyPath, int] | None:
    """Parse a TOML dotted key (bare, ``"basic"`` or ``'literal'`` parts) at ``start``.

    Returns:
        The key parts and the index just after the key (spaces after it skipped), or ``None``
        when there is no key there.
    """
    parts: list[str] = []
    index = start
    while True:
        while index < len(text) and text[index] in " \t":
            index += 1
        if index >= len(text):
            return None
        char = text[index]
        if char == '"':
            read = _read_basic(text, index)
            if read is None:
                return None
            part, index = read
        elif char == "'":
            end = text.find("'", index + 1)
            if end < 0:
                return None
            part, index = text[index + 1 : end], end + 1
        else:
            match = _BARE.match(text, index)
            if match is None:
                return None
            part, index = match.group(), match.end()
        parts.append(part)
        while index < len(text) and text[index] in " \t":
            index += 1
        if index < len(text) and text[index] == ".":
            index += 1
            continue
        return tuple(parts), index


def key_parts(dotted: str) -> KeyPath:
    """The parts of a dotted key as diagnostics write it (``experts."writer".instruction``)."""
    parsed = parse_dotted_key(dotted)
    if parsed is None:
        return (dotted,)
    # Anything after the key (an array index such as ``delegates[0]``) is not a table.
    return parsed[0]


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) for lines that start outside a multi-line string."""
    inside: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        starts_outside = inside is None
        index = 0
        while index < len(line):
            if inside is not None:
                end = _closing(line, index, inside)
                if end < 0:
                    break
                inside, index = None, end
                continue
            char = line[index]
            if char == "#":
                break
            if line.startswith('"""', index) or line.startswith("'''", index):
                inside, index = line[index : index + 3], index + 3
                continue
            if char == '"':
                read = _read_basic(line, index)
                index = len(line) if read is None else read[1]
                continue
            if char == "'":
                end = line.find("'", index + 1)
                index = len(line) if end < 0 else end + 1
                continue
            index += 1
        if starts_outside:
            yield number, line


def _closing(line: str, index: int, delimiter: str) -> int:
    """Index after the closing ``delimiter`` of a multi-line string, or -1 on this line."""
    while index < len(line):
        if delimiter == '"""' and line[index] == "\\":
            index += 2
            continue
        if line.startswith(delimiter, index):
            end = index + 3
            # Up to two quotes may directly precede the closing delimiter.
            while end < len(line) and line[end] == delimiter[0] and end - index < 5:
                end += 1
            return end
        index += 1
    return -1


@dataclass(frozen=True)
class KeyLines:
    """The first line (1-based) on which each table or key path appears in a TOML text.

    Headers (``[experts."writer".skills."x"]``), dotted keys inside tables
    (``skills."x".type = ...``) and every prefix of them are recorded, so an expert defined in
    any TOML style can be found. Best effort: inline tables contribute only their own key.
    """

    lines: Mapping[KeyPath, int]

    @classmethod
    def scan(cls, text: str) -> KeyLines:
        """Scan a TOML text (valid or not)."""
        found: dict[KeyPath, int] = {}
        table: KeyPath = ()
        for number, line in _logical_lines(text):
            stripped = line.lstrip()
            indent = len(line) - len(stripped)
            if stripped.startswith("[["):
                parsed = parse_dotted_key(line, indent + 2)
                if parsed is not None:
                    table = parsed[0]
                    cls._record(found, table, number)
                continue
            if stripped.startswith("["):
                parsed = parse_dotted_key(line, indent + 1)
                if parsed is not None and parsed[1] < len(line) and line[parsed[1]] == "]":
                    table = parsed[0]
                    cls._record(found, table, number)
                continue
            parsed = parse_dotted_key(line, indent)
            if parsed is not None and parsed[1] < len(line) and line[parsed[1]] == "=":
                cls._record(found, table + parsed[0], number)
        return cls(found)

    @staticmethod
    def _record(found: dict[KeyPath, int], path: KeyPath, number: int) -> None:
        for size in range(1, len(path) + 1):
            found.setdefault(path[:size], number)

    def line_of(self, *path: str) -> int | None:
        """The line of ``path``, or of its closest recorded ancestor; ``None`` if none."""
        for size in range(len(path), 0, -1):
            line = self.lines.get(path[:size])
            if line is not None:
                return line
        return None


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
    lines = KeyLines.scan(text)
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
                    line=lines.line_of("experts", key, "skills", name),
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
                line=lines.line_of("experts", key),
            )
        )
    return TeamOutline(
        model=_text(data.get("model")),
        model_line=lines.lines.get(("model",)),
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
    from runtime.config.diagnostics import diagnose

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
