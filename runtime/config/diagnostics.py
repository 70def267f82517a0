"""Everything wrong with a perstack.toml, with line numbers, for an editor that checks as you type.

:func:`diagnose` never raises: whatever the text, it returns a list of :class:`Diagnostic`. It
reuses the loader (:func:`runtime.config.loader.parse_config`) for syntax errors, schema errors
and unknown keys, so the editor and ``perstack run`` always agree, and adds the checks across
experts that only make sense while authoring a team:

* a delegate that no table of the file defines is an **error** when unscoped (``writer``): it is
  almost always a typo or a forgotten expert. A scoped one (``@org/writer``) may come from the
  registry, so it is a **warning**;
* an expert listing itself is an error (it could only loop);
* a delegation cycle (``a → b → a``) is a warning: legal, but a run can go round it until its
  step budget is spent;
* a delegate listed twice is a warning.

These checks run on the raw data when the schema fails too, so fixing one error does not
reveal a batch of new ones.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from runtime.config.loader import (
    CONFIG_FILE_NAME,
    ConfigFileError,
    ConfigLimitError,
    ConfigProblem,
    ConfigWarning,
    parse_config,
)
from runtime.config.schema import EXPERT_KEY_RE, split_expert_ref

__all__ = ["Diagnostic", "diagnose"]

Severity = Literal["error", "warning"]

_COLUMN_RE = re.compile(r" at column (\d+)")
_DELEGATE_KEY_RE = re.compile(r"\.delegates\[\d+\]$")


@dataclass(frozen=True)
class Diagnostic:
    """One problem in perstack.toml, placed for an editor."""

    line: int | None
    """1-based line; ``None`` when it cannot be located."""
    column: int | None
    """1-based column; ``None`` when unknown."""
    severity: Severity
    """``error``: the file will not load or run as meant. ``warning``: it will, maybe not well."""
    key: str
    """Dotted key, e.g. ``experts."writer".instruction``; empty for syntax errors."""
    message: str
    """What is wrong and, where it is clear, how to fix it."""

    def __str__(self) -> str:
        where = "" if self.line is None else f"{self.line}:"
        if self.line is not None and self.column is not None:
            where += f"{self.column}:"
        key = f" {self.key}:" if self.key else ""
        return f"{where} {self.severity}:{key} {self.message}".strip()


def diagnose(text: str, *, label: str = CONFIG_FILE_NAME) -> list[Diagnostic]:
    """Check perstack.toml text and return every problem found, sorted by line.

    Args:
        text: The file's text (it need not be valid TOML).
        label: How to name the file in messages.

    Returns:
        Syntax errors or a limit exceeded (alone: nothing else can be checked), or schema
        errors, unknown-key warnings and the cross-expert checks. Empty when the file is fine.
    """
    try:
        return _diagnose(text, label)
    except Exception as error:  # a checker that crashes would hide the file
        return [
            Diagnostic(None, None, "error", "", f"internal error while checking {label}: {error!r}")
        ]


def _diagnose(text: str, label: str) -> list[Diagnostic]:
    lines = text.split("\n")
    found: list[Diagnostic] = []
    experts: Mapping[str, Any]
    try:
        loaded = parse_config(text, path_label=label)
    except ConfigFileError as error:
        found.extend(_from_problem(problem, lines) for problem in error.problems)
        if isinstance(error, ConfigLimitError):
            # Over a limit: parsing it is what the limit prevents.
            return _sorted(found)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            # Not TOML: the syntax error is all that can be said.
            return _sorted(found)
        found.extend(_from_warning(warning, lines) for warning in error.warnings)
        raw = data.get("experts")
        experts = raw if isinstance(raw, dict) else {}
    else:
        found.extend(
            _from_warning(warning, lines)
            for warning in loaded.warnings
            # Delegate checks are redone below with the authoring severities.
            if not _DELEGATE_KEY_RE.search(warning.key)
        )
        experts = {
            key: {"delegates": list(expert.delegates)}
            for key, expert in loaded.config.experts.items()
        }
    found.extend(_cross_references(experts, text, lines, label))
    return _sorted(_unique(found))


def _sorted(found: list[Diagnostic]) -> list[Diagnostic]:
    # Unknown lines first (they concern the whole file), then by place; errors before warnings
    # on the same line.
    return sorted(
        found,
        key=lambda item: (
            item.line or 0,
            item.column or 0,
            item.severity != "error",
            item.key,
            item.message,
        ),
    )


def _unique(found: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[Diagnostic] = set()
    unique: list[Diagnostic] = []
    for item in found:
        if item not in seen:
            seen.add(item)
            unique.append(item)
    return unique


# From the loader -----------------------------------------------------------------------------


def _key_column(lines: list[str], line: int | None) -> int | None:
    """The column of the first character of a line (where its key or header starts)."""
    if line is None or not 0 < line <= len(lines):
        return None
    source = lines[line - 1]
    stripped = source.lstrip(" \t")
    if not stripped.strip():
        return None
    return len(source) - len(stripped) + 1


def _from_problem(problem: ConfigProblem, lines: list[str]) -> Diagnostic:
    column: int | None
    if problem.key == "":
        match = _COLUMN_RE.search(problem.message)
        column = int(match.group(1)) if match else _key_column(lines, problem.line)
    else:
        column = _key_column(lines, problem.line)
    return Diagnostic(problem.line, column, "error", problem.key, problem.message)


def _from_warning(warning: ConfigWarning, lines: list[str]) -> Diagnostic:
    return Diagnostic(
        warning.line, _key_column(lines, warning.line), "warning", warning.key, warning.message
    )


# Across experts ------------------------------------------------------------------------------


def _quoted(name: str) -> str:
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@dataclass(frozen=True)
class _Finding:
    expert: str
    index: int | None
    """Index in the expert's delegates; ``None`` for the delegates key as a whole."""
    severity: Severity
    message: str
    ref: str | None = None


def _findings(experts: Mapping[str, Any], label: str) -> Iterator[_Finding]:
    graph: dict[str, list[tuple[str, int, str]]] = {}
    defined = [key for key in experts if isinstance(key, str)]
    for key, table in experts.items():
        delegates = table.get("delegates") if isinstance(table, dict) else None
        if not isinstance(delegates, list):
            continue
        edges: list[tuple[str, int, str]] = []
        seen: set[str] = set()
        for index, ref in enumerate(delegates):
            if not isinstance(ref, str) or not EXPERT_KEY_RE.match(ref):
                continue  # the schema reports it
            name = split_expert_ref(ref)[0]
            if ref in seen:
                yield _Finding(key, index, "warning", f'delegate "{ref}" is listed twice', ref)
                continue
            seen.add(ref)
            if name == key:
                yield _Finding(
                    key,
                    index,
                    "error",
                    f'expert "{key}" lists itself as a delegate: remove "{ref}" from its '
                    "delegates (an expert cannot hand work to itself)",
                    ref,
                )
            elif name in experts:
                edges.append((name, index, ref))
            elif name.startswith("@"):
                yield _Finding(
                    key,
                    index,
                    "warning",
                    f'delegate "{ref}" is not defined in {label}; it will be looked up in the '
                    "registry when the expert runs",
                    ref,
                )
            else:
                close = difflib.get_close_matches(name, defined, n=1, cutoff=0.6)
                hint = (
                    f'did you mean "{close[0]}"?'
                    if close
                    else f'add an [experts."{name}"] table or remove it from the delegates'
                )
                yield _Finding(
                    key,
                    index,
                    "error",
                    f'unknown delegate "{ref}": no expert "{name}" is defined in {label} ({hint})',
                    ref,
                )
        graph[key] = edges
    yield from _cycles(graph)


def _cycles(graph: Mapping[str, list[tuple[str, int, str]]]) -> Iterator[_Finding]:
    """One warning per delegation cycle (per strongly connected group of experts)."""
    order = {key: position for position, key in enumerate(graph)}
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    # Tarjan's algorithm, iterative: a 50-expert chain must not hit the recursion limit.
    for root in graph:
        if root in index_of:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index_of[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            edges = graph.get(node, [])
            if position < len(edges):
                work.append((node, position + 1))
                child = edges[position][0]
                if child not in index_of:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index_of[child])
                continue
            if low[node] == index_of[node]:
                group: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    for group in groups:
        members = set(group)
        start = min(group, key=order.__getitem__)
        path = _cycle_path(graph, start, members)
        first_edge, ref = next((index, ref) for name, index, ref in graph[start] if name == path[1])
        shown = " → ".join(path)
        yield _Finding(
            start,
            first_edge,
            "warning",
            f"delegation cycle: {shown}; a run can go round it until maxSteps is reached "
            "(make sure each expert's instruction says when to stop delegating)",
            ref,
        )


def _cycle_path(
    graph: Mapping[str, list[tuple[str, int, str]]], start: str, members: set[str]
) -> list[str]:
    """A shortest way from ``start`` back to itself inside one cycle group (breadth first)."""
    previous: dict[str, str] = {}
    queue = [start]
    for node in queue:
        for child, _, _ in graph.get(node, []):
            if child not in members:
                continue
            if child == start:
                path = [start]
                while node != start:
                    path.append(node)
                    node = previous[node]
                return [start, *reversed(path[1:]), start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    return [start, start]  # pragma: no cover - a group always has a cycle through start


def _cross_references(
    experts: Mapping[str, Any], text: str, lines: list[str], label: str
) -> Iterator[Diagnostic]:
    findings = list(_findings(experts, label))
    if not findings:
        return
    wanted = {finding.expert for finding in findings}
    located = _locate_delegates(lines, wanted, experts)
    key_lines: Any = None
    for finding in findings:
        path: tuple[str | int, ...] = ("experts", finding.expert, "delegates")
        key = f"experts.{_quoted(finding.expert)}.delegates"
        if finding.index is not None:
            path = (*path, finding.index)
            key += f"[{finding.index}]"
        element_lines = located.get(finding.expert)
        if element_lines is not None and finding.index is not None:
            line: int | None = element_lines[finding.index]
        else:
            if key_lines is None:
                # An unusual layout (dotted keys, inline tables): the loader's full scanner
                # knows every construct; it is slower, so it is only the fallback.
                from runtime.config.loader import _KeyLines

                key_lines = _KeyLines(text)
            line = key_lines.line_of(path)
        column = _key_column(lines, line)
        if line is not None and finding.ref is not None and 0 < line <= len(lines):
            # Point at the delegate itself when it is on that line.
            found = lines[line - 1].find(f'"{finding.ref}"')
            if found < 0:
                found = lines[line - 1].find(f"'{finding.ref}'")
            if found >= 0:
                column = found + 1
        yield Diagnostic(line, column, finding.severity, key, finding.message)


# Finding delegate lines fast -----------------------------------------------------------------

_HEADER_KEY_RE = re.compile(
    r"""\s*(?:"(?P<basic>(?:[^"\\]|\\.)*)"|'(?P<literal>[^']*)'|(?P<bare>[A-Za-z0-9_-]+))\s*"""
)
_DELEGATES_RE = re.compile(r"\s*delegates\s*=\s*\[")
_LINE_TOKEN_RE = re.compile(r'"""|\'\'\'|"(?:[^"\\]|\\.)*"|\'[^\']*\'|#')
_ARRAY_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'|#|\]|[^\s,]')
_ML_BASIC_END_RE = re.compile(r'\\.|"""', re.DOTALL)


def _unquote(token: str) -> str | None:
    if token.startswith("'"):
        return token[1:-1]
    if "\\" not in token:
        return token[1:-1]
    try:
        value = tomllib.loads(f"v = {token}")["v"]
    except tomllib.TOMLDecodeError:
        return None
    return value if isinstance(value, str) else None


def _header_path(line: str) -> tuple[str, ...] | None:
    """The table path of a ``[a."b".c]`` or ``[[a.b]]`` header line; None if not simple."""
    position = line.index("[") + (2 if line.lstrip().startswith("[[") else 1)
    parts: list[str] = []
    while True:
        match = _HEADER_KEY_RE.match(line, position)
        if match is None:
            return None
        if match.group("bare") is not None:
            parts.append(match.group("bare"))
        elif match.group("literal") is not None:
            parts.append(match.group("literal"))
        else:
            value = _unquote(f'"{match.group("basic")}"')
            if value is None:
                return None
            parts.append(value)
        position = match.end()
        if line.startswith(".", position):
            position += 1
            continue
        return tuple(parts) if line.startswith("]", position) else None


def _ml_close(line: str, delimiter: str, start: int) -> int:
    """Where a multi-line string that is open at ``start`` ends on this line, or -1."""
    if delimiter == "'''":
        end = line.find(delimiter, start)
        return -1 if end < 0 else end + 3
    for match in _ML_BASIC_END_RE.finditer(line, start):
        if match.group() == '"""':
            return match.end()
    return -1


def _open_ml(line: str, start: int = 0) -> str | None:
    """The delimiter of a multi-line string that starts on this line and does not end on it."""
    position = start
    while True:
        match = _LINE_TOKEN_RE.search(line, position)
        if match is None or match.group() == "#":
            return None
        token = match.group()
        if token in ('"""', "'''"):
            end = _ml_close(line, token, match.end())
            if end < 0:
                return token
            position = end
        else:
            position = match.end()


def _array_lines(lines: list[str], row: int, column: int) -> tuple[list[str], list[int]] | None:
    """The strings of the one-level array starting at ``lines[row][column]``, with their lines."""
    values: list[str] = []
    where: list[int] = []
    while row < len(lines):
        line = lines[row]
        position = column
        while True:
            match = _ARRAY_TOKEN_RE.search(line, position)
            if match is None or match.group() == "#":
                break
            token = match.group()
            if token == "]":
                return values, where
            if token[0] not in "\"'":
                return None  # not an array of plain strings
            value = _unquote(token)
            if value is None:
                return None
            values.append(value)
            where.append(row + 1)
            position = match.end()
        row += 1
        column = 0
    return None


def _locate_delegates(
    lines: list[str], wanted: set[str], experts: Mapping[str, Any]
) -> dict[str, list[int]]:
    """The line of each delegate of the ``wanted`` experts, found with a line scan.

    Handles the usual layout (``delegates = [...]`` under an ``[experts."<key>"]`` header, on
    one line or several). A result is only kept when the strings it read are exactly the
    expert's delegates; anything unusual is left to the loader's full scanner.
    """
    found: dict[str, list[int]] = {}
    table: tuple[str, ...] = ()
    open_string: str | None = None
    row = 0
    while row < len(lines):
        line = lines[row]
        if open_string is not None:
            end = _ml_close(line, open_string, 0)
            if end >= 0:
                open_string = _open_ml(line, end)
            row += 1
            continue
        stripped = line.lstrip()
        if stripped.startswith("["):
            table = _header_path(line) or ("?",)
            row += 1
            continue
        match = _DELEGATES_RE.match(line)
        if match and len(table) == 2 and table[0] == "experts" and table[1] in wanted:
            array = _array_lines(lines, row, match.end())
            if array is not None:
                values, where = array
                if values == experts[table[1]].get("delegates"):
                    found[table[1]] = where
                row = max(where[-1] if where else row, row) + 1
                continue
        if '"""' in line or "'''" in line:
            open_string = _open_ml(line)
        row += 1
    return found
