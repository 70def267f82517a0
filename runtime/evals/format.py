"""The eval-set file: cases to run a team on, and the checks each case must pass.

An eval set is a TOML file (``evals.toml`` by convention; the JSON schema is
``docs/eval-set.schema.json``, made by :func:`eval_set_schema`)::

    [eval]
    name = "greeter"            # default: the file's name without .toml
    config = "perstack.toml"    # default: searched upward from the eval file's folder
    expert = "greeter"          # the cases' default expert

    [[cases]]
    name = "writes a greeting"
    query = "Write hello.txt saying hello"
    maxSteps = 20               # optional
    seed = "fixtures/empty"     # optional: a folder (relative to this file) copied in first
    [cases.files]               # optional: files written into the scratch workspace
    "names.txt" = "Ada"

    [[cases.checks]]
    type = "fileContains"
    path = "hello.txt"
    text = "hello"

Check types: ``fileExists`` (path), ``fileContains`` (path, text), ``fileMatches`` (path,
pattern: a Python regular expression searched in the file), ``exec`` (command: a shell command
run in the workspace, passing when it exits 0; timeout in seconds), ``resultContains`` (text),
``resultMatches`` (pattern), and ``judge`` (expert, rubric: that expert of the config reads the
query, the final result and the workspace, and answers PASS or FAIL). Every case also needs its
run to complete: a run stopped by an error or by max steps fails the case.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from runtime.errors import UsageError


class _Doc(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as error:
        raise ValueError(f"not a valid regular expression: {error}") from None
    return value


def _relative(value: str) -> str:
    path = Path(value)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError("must be a path inside the workspace (relative, without '..')")
    return value


class FileExists(_Doc):
    """The file exists in the workspace after the run."""

    type: Literal["fileExists"]
    path: str
    _path = field_validator("path")(_relative)


class FileContains(_Doc):
    """The file holds this text."""

    type: Literal["fileContains"]
    path: str
    text: str
    _path = field_validator("path")(_relative)


class FileMatches(_Doc):
    """A regular expression is found in the file."""

    type: Literal["fileMatches"]
    path: str
    pattern: str
    _path = field_validator("path")(_relative)
    _pattern = field_validator("pattern")(_regex)


class Exec(_Doc):
    """A shell command run in the workspace exits 0."""

    type: Literal["exec"]
    command: str
    timeout: float = Field(default=120.0, gt=0)
    """Seconds before the command is killed (and the check fails)."""


class ResultContains(_Doc):
    """The run's final result holds this text."""

    type: Literal["resultContains"]
    text: str


class ResultMatches(_Doc):
    """A regular expression is found in the run's final result."""

    type: Literal["resultMatches"]
    pattern: str
    _pattern = field_validator("pattern")(_regex)


class Judge(_Doc):
    """An expert of the config judges the result against a rubric and answers PASS or FAIL."""

    type: Literal["judge"]
    expert: str
    rubric: str


Check = Annotated[
    FileExists | FileContains | FileMatches | Exec | ResultContains | ResultMatches | Judge,
    Field(discriminator="type"),
]


class Case(_Doc):
    """One query to run, in a scratch workspace of its own, and what must hold afterwards."""

    name: str = Field(min_length=1)
    query: str = Field(min_length=1)
    expert: str | None = None
    """The expert to run (default: ``[eval] expert``)."""
    files: dict[str, str] = Field(default_factory=dict)
    """Files written into the workspace before the run (path → text)."""
    seed: str | None = None
    """A folder, relative to the eval file, copied into the workspace before ``files``."""
    max_steps: int | None = Field(default=None, ge=1)
    checks: list[Check] = Field(default_factory=list)

    @field_validator("files")
    @classmethod
    def _inside(cls, files: dict[str, str]) -> dict[str, str]:
        for path in files:
            _relative(path)
        return files


class EvalHeader(_Doc):
    """The ``[eval]`` table."""

    name: str | None = None
    config: str | None = None
    """perstack.toml, relative to the eval file (default: searched upward from its folder)."""
    expert: str | None = None


class EvalSetDocument(_Doc):
    """The whole file."""

    eval: EvalHeader = Field(default_factory=EvalHeader)
    cases: list[Case] = Field(min_length=1)


class EvalSet(BaseModel):
    """A loaded eval set: its document, where it came from, and its name."""

    model_config = ConfigDict(frozen=True)

    path: Path
    name: str
    document: EvalSetDocument

    @property
    def cases(self) -> list[Case]:
        """The cases, in file order."""
        return self.document.cases

    def expert_of(self, case: Case) -> str:
        """The expert a case runs."""
        expert = case.expert or self.document.eval.expert
        assert expert is not None  # load_eval_set refuses a case without one
        return expert

    def config_path(self) -> Path | None:
        """The perstack.toml the file names, or None to search upward from its folder."""
        config = self.document.eval.config
        return (self.path.parent / config).resolve() if config else None


def load_eval_set(path: Path) -> EvalSet:
    """Read and check an eval-set file.

    Raises:
        UsageError: the file is missing, is not TOML, or does not follow the format; the message
            names the file, the line and the key, and what is expected.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"Eval set {path} not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"Cannot read eval set {path}: {error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: not valid TOML: {error}") from None
    try:
        document = EvalSetDocument.model_validate(data)
    except ValidationError as error:
        raise UsageError(_explain(path, text, error)) from None
    problems = [
        f"{path}:{_line(text, ('cases', index))}: cases[{index}] ({case.name!r}) names no expert: "
        "set expert in the case or in [eval]"
        for index, case in enumerate(document.cases)
        if not (case.expert or document.eval.expert)
    ]
    names = [case.name for case in document.cases]
    problems += [
        f"{path}: two cases are named {name!r}: case names must be unique (results are kept "
        "by name, to compare runs)"
        for name in sorted({n for n in names if names.count(n) > 1})
    ]
    if problems:
        raise UsageError("\n".join(problems))
    return EvalSet(path=path.resolve(), name=document.eval.name or path.stem, document=document)


def _line(text: str, key_path: tuple[str | int, ...]) -> int:
    from runtime.config.locate import TomlLocator

    position = TomlLocator(text).locate(key_path)
    return position.line if position is not None else 1


def _explain(path: Path, text: str, error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        location = tuple(part for part in problem["loc"] if not _is_union_tag(part))
        message = str(problem["msg"]).removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key"
        elif problem["type"] == "union_tag_invalid":
            location = (*location, "type")
            message = (
                "unknown check type: use fileExists, fileContains, fileMatches, exec, "
                "resultContains, resultMatches or judge"
            )
        elif problem["type"] == "union_tag_not_found":
            message = "a check needs a type"
        key = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in location)
        key = key.replace(".[", "[")
        lines.append(f"{path}:{_line(text, location)}: {key or '(file)'}: {message}")
    return "\n".join(lines)


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and part in _CHECK_TYPES


_CHECK_TYPES = frozenset(
    {
        "fileExists",
        "fileContains",
        "fileMatches",
        "exec",
        "resultContains",
        "resultMatches",
        "judge",
    }
)


def eval_set_toml(data: dict[str, Any], label: str = "evals.toml") -> str:
    """An eval-set file for ``data`` (the file's shape as a dict, camelCase keys).

    Raises:
        UsageError: ``data`` does not follow the format (the message names each key).
    """
    import tomlkit

    try:
        document = EvalSetDocument.model_validate(data)
    except ValidationError as error:
        raise UsageError(_explain(Path(label), "", error)) from None
    plain = document.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude_defaults=True
    )
    out = tomlkit.document()
    out.add(tomlkit.comment("Eval set: run it with `perstack eval <this file>` (docs/evals.md)."))
    if plain.get("eval"):
        out["eval"] = plain["eval"]
    cases = tomlkit.aot()
    for case in document.cases:
        entry = case.model_dump(
            mode="json", by_alias=True, exclude_none=True, exclude_defaults=True
        )
        checks = entry.pop("checks", [])
        files = entry.pop("files", None)
        table = tomlkit.table()
        table.update(entry)
        if files:
            table["files"] = files
        if checks:
            rows = tomlkit.aot()
            for check in checks:
                rows.append(tomlkit.item(check))
            table["checks"] = rows
        cases.append(table)
    out["cases"] = cases
    return tomlkit.dumps(out)


def eval_set_schema() -> dict[str, Any]:
    """The JSON schema of an eval-set file (as ``docs/eval-set.schema.json`` holds it)."""
    schema = EvalSetDocument.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Perstack eval set"
    return schema
