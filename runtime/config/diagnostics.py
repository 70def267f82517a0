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

Each diagnostic is placed by :mod:`runtime.config.locate` on what it concerns: the key, the
table header of a missing key, or the delegate's string in its array.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from runtime.config.loader import parse_config
from runtime.config.locate import KeyPath, locator_for
from runtime.config.problems import (
    CONFIG_FILE_NAME,
    ConfigFileError,
    ConfigLimitError,
    ConfigProblem,
    ConfigWarning,
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
    found.extend(_cross_references(experts, text, label))
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
    column = problem.column
    if column is None and problem.key == "":  # a syntax error or a limit: the message says
        match = _COLUMN_RE.search(problem.message)
        column = int(match.group(1)) if match else None
    if column is None:
        column = _key_column(lines, problem.line)
    return Diagnostic(problem.line, column, "error", problem.key, problem.message)


def _from_warning(warning: ConfigWarning, lines: list[str]) -> Diagnostic:
    column = warning.column if warning.column is not None else _key_column(lines, warning.line)
    return Diagnostic(warning.line, column, "warning", warning.key, warning.message)


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


def _cross_references(experts: Mapping[str, Any], text: str, label: str) -> Iterator[Diagnostic]:
    findings = list(_findings(experts, label))
    if not findings:
        return
    locator = locator_for(text)
    for finding in findings:
        path: KeyPath = ("experts", finding.expert, "delegates")
        key = f"experts.{_quoted(finding.expert)}.delegates"
        if finding.index is not None:
            path = (*path, finding.index)
            key += f"[{finding.index}]"
        # The delegate itself when found; else the key or table that holds it.
        where = locator.locate(path)
        line, column = (None, None) if where is None else where
        yield Diagnostic(line, column, finding.severity, key, finding.message)
