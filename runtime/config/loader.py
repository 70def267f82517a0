"""Find, read and validate perstack.toml, with diagnostics that name the file, line and key.

The models in :mod:`runtime.config.schema` say what a valid file is; this module turns their
verdict into messages a user can act on:

* TOML syntax errors name the line and show it with a caret.
* Every schema problem of the file is reported at once, one per line, as
  ``perstack.toml:12 experts."writer".instruction: field required``.
* Unknown keys are ignored, as Perstack ignores them, but each one is reported as a
  :class:`ConfigWarning` with its line and a "did you mean" when it looks like a typo.
* Things that are valid but will not work as written (a delegate defined nowhere, a stdio skill
  with neither ``packageName`` nor ``args``) are warnings too.

Line numbers come from a small scanner over the source (:class:`_KeyLines`): ``tomllib`` gives
no positions, and the scanner only ever runs on text ``tomllib`` has accepted.

Whatever the input, loading ends in a result or a :class:`~runtime.errors.ConfigError`, in
bounded time: before ``tomllib`` sees the text, a linear scan refuses files that are too large,
too deeply nested or have too many keys (:data:`MAX_CONFIG_BYTES`, :data:`MAX_NESTING`,
:data:`MAX_KEY_PARTS`, :data:`MAX_ENTRIES`; ``tomllib`` recurses per nesting level and is
quadratic in the parts of a dotted key). Values quoted in messages are cut to
:data:`~runtime.config.schema.MAX_SHOWN_CHARS` characters.
"""

from __future__ import annotations

import ast
import bisect
import dataclasses
import difflib
import hashlib
import json
import os
import re
import tomllib
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlparse

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from runtime.config.env import PROTECTED_ENV_NAMES
from runtime.config.schema import (
    BASE_SKILL_NAME,
    DEFAULT_ENV_PATH,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_STEPS,
    DEFAULT_MODEL,
    DEFAULT_PROVIDER,
    DEFAULT_REASONING_BUDGET,
    DEFAULT_TIMEOUT_MS,
    ERROR_AT,
    PROVIDER_NAME_RE,
    REASONING_LEVELS,
    SEMVER_RE,
    ExpertConfig,
    McpStdioSkill,
    PerstackConfig,
    ProviderSetting,
    ReasoningLevel,
    SkillConfig,
    default_base_skill,
    short_repr,
    split_expert_ref,
)
from runtime.errors import ConfigError, UsageError

if TYPE_CHECKING:
    import httpx

CONFIG_FILE_NAME = "perstack.toml"
"""The file searched for in the working directory and its parents."""

REMOTE_CONFIG_HOST = "raw.githubusercontent.com"
"""The only host a config may be fetched from (as in Perstack)."""

REMOTE_TIMEOUT_S = 15.0
"""Connect/read timeout for fetching a remote config."""

KeyPath = tuple[str | int, ...]
"""A location in the parsed document: table keys, and indexes into arrays."""

MAX_CONFIG_BYTES = 1024 * 1024
"""Largest perstack.toml read: 1 MiB. Real files are a few kilobytes; 50 experts with 2 KB
instructions each make about 120 KB."""

MAX_NESTING = 32
"""Deepest nesting of arrays and inline tables in one value (real files: 1 or 2)."""

MAX_KEY_PARTS = 32
"""Most parts of one dotted key or table header; ``[experts."a".skills."b"]`` has 4."""

MAX_ENTRIES = 10_000
"""Most keys, table headers and array elements in one file, counted together (a 50-expert team
has about 1,000)."""

MAX_LISTED_PROBLEMS = 50
"""Problems spelled out in a :class:`ConfigFileError` message; the rest are only counted."""

# Tests swap this for an ``httpx.MockTransport``; ``None`` is the real network.
_remote_transport: httpx.BaseTransport | None = None

_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_BARE_KEY_FULL_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_TOML_ERROR_RE = re.compile(
    r"^(?P<message>.*?) \(at (?:line (?P<line>\d+), column (?P<column>\d+)|end of document)\)$"
)
_TUPLE_REPR_RE = re.compile(r"\((?:'[^'\\]*'(?:, )?)+,?\)")


# Diagnostics ---------------------------------------------------------------------------------


def _located(label: str, line: int | None, key: str, message: str) -> str:
    where = label if line is None else f"{label}:{line}"
    return f"{where} {key}: {message}" if key else f"{where}: {message}"


@dataclass(frozen=True)
class ConfigWarning:
    """Something in perstack.toml that is ignored or will likely not work, but is not an error.

    ``str(warning)`` reads ``perstack.toml:7 provider.envPath: unknown key (ignored; ...)``.
    """

    line: int | None
    """1-based line of the key (or of its table header); ``None`` when it cannot be located."""
    key: str
    """Dotted key as written in TOML, e.g. ``experts."writer".instrucion``."""
    message: str
    """What is wrong and what to do about it."""
    label: str = CONFIG_FILE_NAME
    """The file as shown to the user."""

    def __str__(self) -> str:
        return _located(self.label, self.line, self.key, self.message)


@dataclass(frozen=True)
class ConfigProblem:
    """One reason perstack.toml was rejected; formatted like :class:`ConfigWarning`."""

    line: int | None
    """1-based line of the key (or of its table header when the key is missing)."""
    key: str
    """Dotted key as written in TOML; empty for syntax errors."""
    message: str
    """What is wrong and, where it is obvious, how to fix it."""
    label: str = CONFIG_FILE_NAME
    """The file as shown to the user."""

    def __str__(self) -> str:
        return _located(self.label, self.line, self.key, self.message)


class ConfigFileError(ConfigError):
    """perstack.toml is not valid TOML or does not match the schema.

    The message lists every problem, one per line. The same problems are available as data for
    a UI that marks lines in an editor.

    Attributes:
        problems: Every problem found, ordered by line.
        warnings: Warnings found before validation failed (e.g. the typo behind a missing key).
    """

    def __init__(
        self,
        problems: Sequence[ConfigProblem],
        *,
        warnings: Sequence[ConfigWarning] = (),
        label: str = CONFIG_FILE_NAME,
        detail: str = "",
    ) -> None:
        self.problems = tuple(problems)
        self.warnings = tuple(warnings)
        lines = [str(problem) for problem in self.problems[:MAX_LISTED_PROBLEMS]]
        if len(self.problems) > 1:
            lines.insert(0, f"{label} has {len(self.problems):,} problems:")
        if len(self.problems) > MAX_LISTED_PROBLEMS:
            lines.append(f"... and {len(self.problems) - MAX_LISTED_PROBLEMS:,} more")
        message = "\n".join(lines)
        super().__init__(f"{message}\n{detail}" if detail else message)


class ConfigLimitError(ConfigFileError):
    """perstack.toml is refused unparsed: too large, too deeply nested or with too many keys.

    Its one problem names the limit (see :data:`MAX_CONFIG_BYTES` and the ones after it).
    """


# Loaded config and expert definitions --------------------------------------------------------


@dataclass(frozen=True)
class LoadedConfig:
    """A validated perstack.toml and where it came from."""

    path: Path | None
    """Absolute path of the file; ``None`` for a remote URL or text parsed from memory."""
    label: str
    """The file as shown in messages: its path relative to the working directory, or the URL."""
    text: str
    """The source text."""
    config: PerstackConfig
    """The validated document."""
    warnings: list[ConfigWarning] = field(default_factory=list)
    """Unknown keys and suspicious settings, ordered by line."""
    sha256: str = ""
    """Hex SHA-256 of ``text`` (UTF-8), recorded in jobs to spot a changed file."""
    base_dir: Path | None = None
    """Directory relative env files resolve against: the file's directory, or the working
    directory for a remote config; ``None`` when parsed from memory without a path."""


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


# Discovery and loading -----------------------------------------------------------------------


def _is_url(config: str) -> bool:
    return config.lower().startswith(("http://", "https://"))


def _check_remote_url(url: str) -> None:
    try:
        parsed = urlparse(url)
        allowed = (
            parsed.scheme.lower() == "https"
            and (parsed.hostname or "").lower() == REMOTE_CONFIG_HOST
        )
    except ValueError:  # "https://[::1": an unclosed IPv6 address
        allowed = False
    if not allowed:
        raise ConfigError(
            f"Config URL {_shown(url)} is not allowed: only https://{REMOTE_CONFIG_HOST}/... "
            "URLs can be loaded. Download the file and pass its local path to --config instead."
        )


def _shown(text: str) -> str:
    """A path or URL for a message: in double quotes, cut when very long."""
    return f'"{text}"' if len(text) <= 200 and text.isprintable() else short_repr(text, 200)


def find_config(config: str | None, cwd: Path) -> Path | str:
    """Locate perstack.toml the way Perstack does (§2.6).

    Args:
        config: The ``--config`` value: a path (relative to ``cwd``) or an
            ``https://raw.githubusercontent.com/...`` URL. ``None`` searches ``cwd`` and each of
            its parents for ``perstack.toml``.
        cwd: The working directory.

    Returns:
        The absolute path of the file, or the URL unchanged.

    Raises:
        ConfigError: The given path does not exist or is a directory, the URL is not an https
            raw.githubusercontent.com URL, or no perstack.toml was found.
    """
    cwd = Path(os.path.abspath(cwd))
    if config is not None:
        if _is_url(config):
            _check_remote_url(config)
            return config
        if "\x00" in config:
            raise ConfigError(f"Given config path {_shown(config)} contains a NUL character")
        try:
            path = Path(config).expanduser()
            path = Path(os.path.abspath(path if path.is_absolute() else cwd / path))
            is_dir, is_file = path.is_dir(), path.is_file()
        except RuntimeError:  # expanduser: "~someone" who is not a user here
            raise ConfigError(
                f"Given config path {_shown(config)} starts with ~ but names no user of this system"
            ) from None
        except (OSError, ValueError) as error:  # a name too long, a NUL, a directory not readable
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise ConfigError(
                f"Given config path {_shown(config)} cannot be used: {reason}"
            ) from None
        if is_dir:
            example = Path(config) / CONFIG_FILE_NAME
            raise ConfigError(
                f"Given config path {_shown(config)} is a directory; pass the path of the toml "
                f"file, e.g. --config {example if str(example).isprintable() else CONFIG_FILE_NAME}"
            )
        if not is_file:
            raise ConfigError(f"Given config path {_shown(config)} is not found")
        return path
    for directory in (cwd, *cwd.parents):
        candidate = directory / CONFIG_FILE_NAME
        try:
            if candidate.is_file():
                return candidate
        except OSError:  # a parent directory that cannot be searched: as if it had no file
            continue
    raise ConfigError(
        f"{CONFIG_FILE_NAME} not found in {cwd} or any parent directory. "
        "Create one or specify --config <path>."
    )


def _label_for(path: Path, cwd: Path) -> str:
    try:
        relative = os.path.relpath(path, cwd)
    except ValueError:  # a different drive on Windows
        return str(path)
    return relative if len(relative) <= len(str(path)) else str(path)


def _decode(data: bytes, label: str) -> str:
    try:
        # utf-8-sig: editors on Windows like to prepend a BOM, which TOML parsers reject.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigFileError(
            [ConfigProblem(line, "", "not valid UTF-8 text (save the file as UTF-8)", label)],
            label=label,
        ) from None


def _check_encodable(text: str, label: str) -> None:
    # Text handed over as str (not read from a file) may hold lone surrogates, which tomllib
    # accepts but no file, event or hash can store.
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        line = text.count("\n", 0, error.start) + 1
        problem = ConfigProblem(line, "", "not valid Unicode text (a lone surrogate)", label)
        raise ConfigFileError([problem], label=label) from None


def _fetch_remote(url: str) -> str:
    # Imported here: httpx pulls in rich (its CLI) when installed, and the runtime must stay
    # headless and cheap to import; only remote configs need it.
    import httpx

    body = bytearray()
    try:
        with (
            httpx.Client(
                follow_redirects=False, timeout=REMOTE_TIMEOUT_S, transport=_remote_transport
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code == 200:
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_CONFIG_BYTES:
                        raise _too_large(None, url)
    except httpx.HTTPError as error:
        raise ConfigError(f'Could not fetch config "{url}": {error}') from error
    if response.is_redirect:
        raise ConfigError(
            f'Config URL "{url}" redirects to "{response.headers.get("location", "?")}"; '
            "redirects are not followed. Use the final raw.githubusercontent.com URL."
        )
    if response.status_code != 200:
        raise ConfigError(
            f'Could not fetch config "{url}": HTTP {response.status_code} '
            f"{response.reason_phrase}".rstrip()
        )
    return _decode(bytes(body), url)


def load_config(config: str | None = None, cwd: Path | None = None) -> LoadedConfig:
    """Find, read, parse and validate perstack.toml.

    Args:
        config: The ``--config`` value (path or raw.githubusercontent.com URL), or ``None`` to
            search upward from ``cwd``.
        cwd: The working directory; defaults to the process's.

    Returns:
        The validated config with its warnings (unknown keys, undefined delegates, ...).

    Raises:
        ConfigError: The file is not found, cannot be read or fetched, is not valid TOML, or
            does not match the schema (a :class:`ConfigFileError` listing every problem).
    """
    cwd = Path(os.path.abspath(cwd or Path.cwd()))
    found = find_config(config, cwd)
    if isinstance(found, str):
        loaded = parse_config(_fetch_remote(found), path_label=found)
        return dataclasses.replace(loaded, base_dir=cwd)
    label = _label_for(found, cwd)
    try:
        with found.open("rb") as file:
            # One byte more than the limit tells a file over it without reading all of it.
            data = file.read(MAX_CONFIG_BYTES + 1)
            if len(data) > MAX_CONFIG_BYTES:
                size = os.fstat(file.fileno()).st_size
                raise _too_large(size if size > MAX_CONFIG_BYTES else None, label)
    except OSError as error:
        raise ConfigError(f"Cannot read {label}: {error.strerror or error}") from error
    return parse_config(_decode(data, label), path_label=label, path=found)


def parse_config(
    text: str, *, path_label: str = CONFIG_FILE_NAME, path: Path | None = None
) -> LoadedConfig:
    """Parse and validate perstack.toml text.

    Args:
        text: The TOML source.
        path_label: How to name the file in messages.
        path: Where the text came from, if it is a local file.

    Returns:
        The validated config with its warnings, ordered by line.

    Raises:
        ConfigFileError: The text is not valid TOML, or does not match the schema. The message
            lists every problem as ``<label>:<line> <dotted.key>: <message>``.
        ConfigLimitError: The text is over one of the limits (:data:`MAX_CONFIG_BYTES`,
            :data:`MAX_NESTING`, :data:`MAX_KEY_PARTS`, :data:`MAX_ENTRIES`); it is not parsed.
    """
    check_limits(text, path_label)
    _check_encodable(text, path_label)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(str(error), text, path_label) from None
    except RecursionError:  # pragma: no cover - check_limits refuses such nesting first
        raise _limit_error(path_label, None, "", "too deeply nested") from None
    lines = _KeyLines(text)
    unknown = _unknown_keys(data, lines, path_label)
    try:
        config = PerstackConfig.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as error:
        problems = _problems(error, data, lines, path_label, unknown)
        warnings = sorted((item.warning for item in unknown), key=_line_order)
        raise ConfigFileError(problems, warnings=warnings, label=path_label) from error
    warnings = [item.warning for item in unknown]
    warnings.extend(_semantic_warnings(config, data, lines, path_label))
    return LoadedConfig(
        path=path,
        label=path_label,
        text=text,
        config=config,
        warnings=sorted(warnings, key=_line_order),
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        base_dir=path.parent if path is not None else None,
    )


def _line_order(item: ConfigWarning | ConfigProblem) -> tuple[int, str]:
    return (item.line or 0, item.key)


# Limits --------------------------------------------------------------------------------------

_LIMIT_TOKEN_RE = re.compile(
    r"""
    \n(?:[ \t\r\n]+|\#[^\n]*)*     # a line break, with the blank and comment lines after it
    | \#[^\n]*                       # a comment
    | (?P<multiline>\"\"\"|''')        # the start of a multi-line string
    | "(?:[^"\\\n]+|\\.)*"?           # a basic string (or the start of an unclosed one)
    | '[^'\n]*'?                     # a literal string
    | [\[\]{}=.,]
    """,
    re.VERBOSE,
)
_BLANK_RE = re.compile(r"(?:[ \t\r\n]+|#[^\n]*)*")
_MULTILINE_BASIC_BODY_RE = re.compile(r'(?:[^\\"]+|\\[\s\S]|"(?!""))*')
_UNPRINTABLE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def check_limits(text: str, label: str = CONFIG_FILE_NAME) -> None:
    """Refuse perstack.toml text over the limits, before any parser sees it.

    The limits (:data:`MAX_CONFIG_BYTES`, :data:`MAX_NESTING`, :data:`MAX_KEY_PARTS`,
    :data:`MAX_ENTRIES`) are far above any real file and keep loading fast: ``tomllib`` recurses
    once per level of nested arrays (a thousand levels crash it) and takes seconds for a key of
    a few thousand dotted parts. The scan is linear and knows just enough TOML (strings,
    comments, headers, keys, brackets) to count right on any valid file; on invalid text it
    may stop at a limit where ``tomllib`` would have reported a syntax error.

    Args:
        text: The TOML source.
        label: How to name the file in messages.

    Raises:
        ConfigLimitError: The text is over a limit; its message names the line and the key.
    """
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_CONFIG_BYTES:
        raise _too_large(size, label)
    stack: list[str] = []  # the open arrays ("[") and inline tables ("{")
    entries = 0
    in_key = True  # reading a key: at the start of a line, or of an inline table entry
    in_header = False  # reading a [table] header
    skip_line = False  # after a header: tomllib reads nothing more of the line
    parts = 1
    key_start = pos = _BLANK_RE.match(text).end()  # type: ignore[union-attr]
    key = ""

    def refuse(at: int, shown_key: str, message: str) -> ConfigLimitError:
        line = text.count("\n", 0, at) + 1
        column = at - (text.rfind("\n", 0, at) + 1) + 1
        return _limit_error(label, line, _source_key(shown_key), f"{message} (at column {column})")

    def count_entry(at: int) -> None:
        nonlocal entries
        entries += 1
        if entries > MAX_ENTRIES:
            raise refuse(
                at,
                "",
                f"too many entries: over the limit of {MAX_ENTRIES:,} keys, table headers and "
                "array elements",
            )

    while (match := _LIMIT_TOKEN_RE.search(text, pos)) is not None:
        token, start, pos = match.group(), match.start(), match.end()
        first = token[0]
        if first == "\n":
            if not stack:
                in_key, in_header, skip_line, parts, key_start = True, False, False, 1, pos
        elif skip_line or (first in "#\"'" and match.group("multiline") is None):
            continue
        elif match.group("multiline") is not None:
            pos = _multiline_end(text, pos, token)
        elif first == ".":
            if in_key or in_header:
                parts += 1
                if parts > MAX_KEY_PARTS:
                    raise refuse(
                        start,
                        text[key_start : min(start, key_start + 200)],
                        f"too many parts in one dotted key: over the limit of {MAX_KEY_PARTS}",
                    )
        elif first == "=":
            count_entry(start)
            if in_key and not stack:  # messages name the statement's key, not an inner one
                key = text[key_start : min(start, key_start + 200)]
            in_key = False
        elif first == "[":
            if in_key and not stack and start == key_start:
                count_entry(start)
                in_key, in_header, parts = False, True, 1
                if text.startswith("[", pos):  # [[array.of.tables]]
                    pos += 1
            elif not in_key and not in_header:
                stack.append("[")
                count_entry(start)
                if len(stack) > MAX_NESTING:
                    raise refuse(start, key, _too_deep())
        elif first == "{":
            if not in_key and not in_header:
                stack.append("{")
                count_entry(start)
                if len(stack) > MAX_NESTING:
                    raise refuse(start, key, _too_deep())
                in_key, parts, key_start = True, 1, pos
        elif first in "]}":
            if in_header:
                in_header, skip_line = False, True
            elif stack:
                stack.pop()
                in_key = False
        elif stack:  # ","
            if stack[-1] == "{":
                in_key, parts, key_start = True, 1, pos
            else:
                count_entry(start)


def _multiline_end(text: str, pos: int, delimiter: str) -> int:
    """Where the multi-line string whose content starts at ``pos`` ends (or the text's end)."""
    if delimiter == '"""':
        pos = _MULTILINE_BASIC_BODY_RE.match(text, pos).end()  # type: ignore[union-attr]
    else:
        pos = text.find(delimiter, pos)
    if pos < 0 or not text.startswith(delimiter, pos):
        return len(text)
    pos += 3
    for _ in range(2):  # up to two quotes right before the end belong to the content
        if text.startswith(delimiter[0], pos):
            pos += 1
    return pos


def _too_deep() -> str:
    return f"too deeply nested: over the limit of {MAX_NESTING} levels of arrays and inline tables"


def _too_large(size: int | None, label: str) -> ConfigLimitError:
    """``size``: the file's size in bytes, or ``None`` when only "over the limit" is known."""
    over = f"{size:,} bytes, over" if size is not None else "over"
    return _limit_error(
        label,
        None,
        "",
        f"too large: {over} the limit of {MAX_CONFIG_BYTES:,} bytes (1 MiB); perstack.toml "
        "holds settings and instructions, keep data in files the experts read",
    )


def _limit_error(label: str, line: int | None, key: str, message: str) -> ConfigLimitError:
    return ConfigLimitError([ConfigProblem(line, key, message, label)], label=label)


def _source_key(text: str) -> str:
    """A key as written in the source, on one line and cut short, for a message."""
    text = " ".join(_UNPRINTABLE_RE.sub("\ufffd", text).split()).lstrip("[ ")
    return text if len(text) <= 80 else text[:80] + "…"


def _printable(text: str) -> str:
    """``text`` safe to show on a terminal: control characters become U+FFFD, one for one."""
    return _UNPRINTABLE_RE.sub("\ufffd", text)


# TOML syntax errors --------------------------------------------------------------------------


def _syntax_error(raw: str, text: str, label: str) -> ConfigFileError:
    match = _TOML_ERROR_RE.match(raw)
    message = match.group("message") if match else raw
    # Split on "\n" only, as tomllib counts lines (splitlines() also splits on \f, \u2028...).
    source_lines = [source.rstrip("\r") for source in text.split("\n")]
    if match and match.group("line"):
        line, column = int(match.group("line")), int(match.group("column"))
        where = f"at column {column}"
    else:  # "at end of document": point after the last character that is not blank
        while len(source_lines) > 1 and not source_lines[-1].strip():
            source_lines.pop()
        line, column = len(source_lines), len(source_lines[-1]) + 1
        where = "at the end of the file"
    # tomllib names keys as Python tuples, ('experts', 'x'); show them as TOML keys instead.
    message = _clip(_TUPLE_REPR_RE.sub(_toml_key_of_tuple, message), 300)
    source = source_lines[line - 1] if line <= len(source_lines) else ""
    hint = ""
    key, equals, value = source.partition("=")
    value_column = len(key) + 2 + len(value) - len(value.lstrip())
    if message == "Invalid value" and equals and column == value_column and len(source) <= 200:
        # The usual causes: an unquoted string, or Python's True/False. Show the fixed line.
        value = value.split(" #", 1)[0].strip()
        if value.lower() in ("true", "false"):
            hint = f" (booleans are lowercase: {key.strip()} = {value.lower()})"
        elif value[:1].isalpha():
            hint = f" (strings must be quoted: {key.strip()} = {_quoted(value)})"
    excerpt, caret = _excerpt(source, column)
    gutter = f"{line:>5} | "
    detail = f"{gutter}{excerpt}\n{' ' * (len(gutter) - 2)}| {' ' * (caret - 1)}^"
    problem = ConfigProblem(line, "", f"invalid TOML: {message} {where}{hint}", label)
    return ConfigFileError([problem], label=label, detail=detail)


def _toml_key_of_tuple(match: re.Match[str]) -> str:
    try:
        return _render_path(tuple(ast.literal_eval(match.group())), None)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return match.group()


_EXCERPT_CHARS = 100
"""Characters of a long source line shown under a syntax error, around the column."""


def _excerpt(source: str, column: int) -> tuple[str, int]:
    """The part of a line shown under a syntax error, and the caret's column in it."""
    if len(source) <= _EXCERPT_CHARS:
        return _printable(source), column
    start = max(0, min(column - 1 - _EXCERPT_CHARS // 2, len(source) - _EXCERPT_CHARS))
    end = start + _EXCERPT_CHARS
    shown = ("…" if start else "") + source[start:end] + ("…" if end < len(source) else "")
    return _printable(shown), column - start + (1 if start else 0)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def _render_bare_or_quoted(key: str) -> str:
    return key if len(key) <= _SHOWN_KEY_CHARS and _BARE_KEY_FULL_RE.match(key) else _quoted(key)


_SHOWN_KEY_CHARS = 80
"""Characters of one key name shown in a message; a longer one is cut, with its length."""


def _quoted(key: str) -> str:
    """``key`` as a TOML basic string; a very long key is cut (for messages, never files)."""
    cut = f"…({len(key):,} characters)" if len(key) > _SHOWN_KEY_CHARS else ""
    escaped = key[:_SHOWN_KEY_CHARS].replace("\\", "\\\\").replace('"', '\\"')
    escaped = _UNPRINTABLE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", escaped)
    return f'"{escaped}{cut}"'


# Line numbers --------------------------------------------------------------------------------


class _KeyLines:
    """The line of every key, table header and array element of a valid TOML document.

    Paths are the keys of the parsed document: ``[experts."a".skills."b"]`` registers
    ``("experts", "a", "skills", "b")`` and its prefixes; ``[[x.y]]`` registers ``("x", "y", i)``.
    A table created implicitly gets the line where it is first mentioned, unless an explicit
    header for it appears later. Keys inside inline tables and arrays get their own line.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._line_starts = [0, *(match.end() for match in re.finditer("\n", text))]
        self._array_tables: dict[KeyPath, int] = {}
        self.lines: dict[KeyPath, int] = {}
        self.first_header: tuple[str, int] | None = None
        """The first table header as written, and its line (where top-level keys must end)."""
        try:
            self._scan()
        except (IndexError, ValueError, AttributeError, RecursionError, tomllib.TOMLDecodeError):
            # The scanner only improves messages; a construct it does not know must never stop
            # a valid file from loading. Keys not reached fall back to their table's line.
            pass

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path`` or, when it is not in the file, of its nearest enclosing table."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    # The scanner proper.

    def _line(self) -> int:
        return bisect.bisect_right(self._line_starts, self._pos)

    def _peek(self, count: int = 1) -> str:
        return self._text[self._pos : self._pos + count]

    def _skip_blank(self, *, newlines: bool) -> None:
        text = self._text
        while self._pos < len(text):
            char = text[self._pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self._pos += 1
            elif char == "#":
                end = text.find("\n", self._pos)
                self._pos = len(text) if end < 0 else end
            else:
                return

    def _scan(self) -> None:
        table: KeyPath = ()
        while True:
            self._skip_blank(newlines=True)
            if self._pos >= len(self._text):
                return
            if self._peek() == "[":
                table = self._header()
            else:
                self._key_value(table)

    def _header(self) -> KeyPath:
        line = self._line()
        start = self._pos
        is_array = self._peek(2) == "[["
        self._pos += 2 if is_array else 1
        keys = self._key()
        self._skip_blank(newlines=False)
        self._pos += 2 if is_array else 1
        if self.first_header is None:
            self.first_header = (self._text[start : self._pos], line)
        path = self._resolve(keys[:-1]) + (keys[-1],)
        for end in range(1, len(path)):
            self.lines.setdefault(path[:end], line)
        if is_array:
            index = self._array_tables.get(path, -1) + 1
            self._array_tables[path] = index
            self.lines.setdefault(path, line)
            path = (*path, index)
        self.lines[path] = line
        return path

    def _resolve(self, keys: Sequence[str]) -> KeyPath:
        # Inside [[a]], a header [a.b] refers to the last element of a: insert its index.
        path: KeyPath = ()
        for key in keys:
            path = (*path, key)
            if path in self._array_tables:
                path = (*path, self._array_tables[path])
        return path

    def _key_value(self, table: KeyPath) -> None:
        line = self._line()
        path = table + tuple(self._key())
        for end in range(len(table) + 1, len(path)):
            self.lines.setdefault(path[:end], line)
        self.lines[path] = line
        self._skip_blank(newlines=False)
        self._pos += 1  # "="
        self._skip_blank(newlines=False)
        self._value(path)

    def _key(self) -> list[str]:
        keys: list[str] = []
        while True:
            self._skip_blank(newlines=False)
            char = self._peek()
            start = self._pos
            if char == '"':
                self._basic_string()
                keys.append(tomllib.loads("k = " + self._text[start : self._pos])["k"])
            elif char == "'":
                self._literal_string()
                keys.append(self._text[start + 1 : self._pos - 1])
            else:
                match = _BARE_KEY_RE.match(self._text, self._pos)
                if match is None:
                    raise ValueError(f"no key at offset {self._pos}")
                keys.append(match.group())
                self._pos = match.end()
            self._skip_blank(newlines=False)
            if self._peek() != ".":
                return keys
            self._pos += 1

    def _value(self, path: KeyPath) -> None:
        if self._peek(3) in ('"""', "'''"):
            self._multiline_string(self._peek(3))
        elif self._peek() == '"':
            self._basic_string()
        elif self._peek() == "'":
            self._literal_string()
        elif self._peek() == "[":
            self._array(path)
        elif self._peek() == "{":
            self._inline_table(path)
        else:  # number, boolean or date: runs up to a delimiter (dates may contain a space)
            while self._pos < len(self._text) and self._text[self._pos] not in ",]}\n#":
                self._pos += 1

    def _array(self, path: KeyPath) -> None:
        self._pos += 1
        index = 0
        while True:
            self._skip_blank(newlines=True)
            if self._peek() == "]":
                self._pos += 1
                return
            self.lines[(*path, index)] = self._line()
            self._value((*path, index))
            self._skip_blank(newlines=True)
            if self._peek() == ",":
                self._pos += 1
            index += 1

    def _inline_table(self, path: KeyPath) -> None:
        self._pos += 1
        while True:
            self._skip_blank(newlines=True)
            if self._peek() == "}":
                self._pos += 1
                return
            self._key_value(path)
            self._skip_blank(newlines=True)
            if self._peek() == ",":
                self._pos += 1

    def _basic_string(self) -> None:
        self._pos += 1
        while self._text[self._pos] != '"':
            self._pos += 2 if self._text[self._pos] == "\\" else 1
        self._pos += 1

    def _literal_string(self) -> None:
        self._pos = self._text.index("'", self._pos + 1) + 1

    def _multiline_string(self, delimiter: str) -> None:
        self._pos += 3
        while True:
            if delimiter == '"""' and self._text[self._pos] == "\\":
                self._pos += 2
            elif self._text.startswith(delimiter, self._pos):
                self._pos += 3
                # Up to two more quotes right before the end belong to the content: '''a'''''.
                for _ in range(2):
                    if self._peek() == delimiter[0]:
                        self._pos += 1
                return
            else:
                self._pos += 1


# Walking the schema --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    """What a value at some place in the document should be, as far as key checking goes."""

    kind: Literal["model", "map", "list", "union", "leaf"]
    model: type[BaseModel] | None = None
    item: Any = None
    members: tuple[type[BaseModel], ...] = ()


def _unannotated(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _node(annotation: Any) -> _Node:
    annotation = _unannotated(annotation)
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        options = [_unannotated(arg) for arg in get_args(annotation) if arg is not type(None)]
        if len(options) == 1:
            return _node(options[0])
        if all(isinstance(arg, type) and issubclass(arg, BaseModel) for arg in options):
            return _Node("union", members=tuple(options))
        return _Node("leaf")
    if origin is dict:
        return _Node("map", item=get_args(annotation)[1])
    if origin is list:
        return _Node("list", item=get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _Node("model", model=annotation)
    return _Node("leaf")


@cache
def _fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The model's fields by their TOML name (alias)."""
    return {(info.alias or name): info for name, info in model.model_fields.items()}


def _type_tag(model: type[BaseModel]) -> str | None:
    info = model.model_fields.get("type")
    if info is None or get_origin(info.annotation) is not Literal:
        return None
    tag = get_args(info.annotation)[0]
    return tag if isinstance(tag, str) else None


def _member(node: _Node, tag: object) -> type[BaseModel] | None:
    for member in node.members:
        if _type_tag(member) == tag:
            return member
    return None


def _child(node: _Node, key: str | int, value: Any) -> _Node:
    """The node for ``key`` inside ``value``, described by ``node`` (value picks union members)."""
    if node.kind == "union":
        model = _member(node, value.get("type") if isinstance(value, dict) else None)
        if model is None:
            return _Node("leaf")
        node = _Node("model", model=model)
    if node.kind == "model" and node.model is not None and isinstance(key, str):
        info = _fields(node.model).get(key)
        return _node(info.annotation) if info is not None else _Node("leaf")
    if node.kind in ("map", "list"):
        return _node(node.item)
    return _Node("leaf")


_ROOT = _Node("model", model=PerstackConfig)

_SKILL_TYPES: tuple[str, ...] = tuple(
    tag for member in _node(SkillConfig).members if (tag := _type_tag(member)) is not None
)
"""Every skill ``type`` the schema knows, for messages."""


def _render_path(path: KeyPath, data: Any) -> str:
    """``experts."writer".skills."@perstack/base".pick[0]``: names quoted, field names bare."""
    node = _ROOT
    value = data
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            # Table names chosen by the user are always quoted (as Perstack's docs write them);
            # schema keys only when TOML requires it.
            text = _quoted(key) if node.kind == "map" else _render_bare_or_quoted(key)
            out = f"{out}.{text}" if out else text
        node = _child(node, key, value)
        value = _index(value, key)
    return out


def _index(value: Any, key: str | int) -> Any:
    if isinstance(key, str) and isinstance(value, dict):
        return value.get(key)
    if isinstance(key, int) and isinstance(value, list) and 0 <= key < len(value):
        return value[key]
    return None


# Unknown keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Unknown:
    warning: ConfigWarning
    parent: KeyPath
    key: str
    suggestion: str | None


def _normalized(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def _suggest(key: str, candidates: Sequence[str]) -> str | None:
    """The known key ``key`` was probably meant to be, if any."""
    for candidate in candidates:
        if _normalized(candidate) == _normalized(key):
            return candidate
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.75)
    return close[0] if close else None


def _unknown_keys(data: dict[str, Any], lines: _KeyLines, label: str) -> list[_Unknown]:
    found: list[_Unknown] = []
    top_level = list(_fields(PerstackConfig))
    expert_keys = list(_fields(ExpertConfig))

    def walk(node: _Node, value: Any, path: KeyPath, context: _KeyContext) -> None:
        if node.kind == "union" and isinstance(value, dict):
            model = _member(node, value.get("type"))
            if model is not None:  # else an unknown or missing skill type: validation says so
                others = tuple(member for member in node.members if member is not model)
                walk(_Node("model", model=model), value, path, _KeyContext(context.named, others))
        elif node.kind == "model" and node.model is not None and isinstance(value, dict):
            for key, child in value.items():
                if key in _fields(node.model):
                    walk(_child(node, key, value), child, (*path, key), _KeyContext())
                else:
                    found.append(unknown(path, key, node.model, context))
        elif node.kind == "map" and isinstance(value, dict):
            for key, child in value.items():
                walk(_node(node.item), child, (*path, key), _KeyContext(named=True))
        elif node.kind == "list" and isinstance(value, list):
            for index, child in enumerate(value):
                walk(_node(node.item), child, (*path, index), _KeyContext())

    def unknown(
        parent: KeyPath, key: str, model: type[BaseModel], context: _KeyContext
    ) -> _Unknown:
        path = (*parent, key)
        suggestion = _suggest(key, list(_fields(model)))
        owner = next((m for m in context.siblings if key in _fields(m)), None)
        owner_tag = _type_tag(owner) if owner is not None else None
        if suggestion is not None:
            hint = f"did you mean {suggestion}?"
        elif parent and key in top_level:
            hint = f"did you mean the top-level {key}? " + _top_level_advice(lines)
        elif key == "name" and context.named:
            hint = "the name is the table key"
        elif owner_tag is not None:
            hint = f"{key} applies to {owner_tag} skills only"
        elif not parent and key in expert_keys:
            hint = f'{key} belongs in an [experts."<key>"] table'
        elif len(key) >= 3 and (
            ending := [k for k in _fields(model) if _normalized(k).endswith(_normalized(key))]
        ):
            # A shortened key: "name" for providerName, "env" for requiredEnv.
            suggestion = ending[0]
            hint = f"did you mean {suggestion}?"
        else:
            hint = ""
        message = f"unknown key (ignored; {hint})" if hint else "unknown key (ignored)"
        warning = ConfigWarning(lines.line_of(path), _render_path(path, data), message, label)
        return _Unknown(warning, parent, key, suggestion)

    walk(_ROOT, data, (), _KeyContext())
    return found


@dataclass(frozen=True)
class _KeyContext:
    """Where a table sits, for better unknown-key hints."""

    named: bool = False
    """The table is an entry of a name-keyed map (an expert, a skill, a tool)."""
    siblings: tuple[type[BaseModel], ...] = ()
    """The other models a skill table could have been (to say which type a key belongs to)."""


def _top_level_advice(lines: _KeyLines) -> str:
    if lines.first_header is None:
        return "Top-level keys must come before the first table header"
    header, line = lines.first_header
    return f"Top-level keys must come before the first table header, {header} on line {line}"


# Schema problems -----------------------------------------------------------------------------


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"{'integer' if isinstance(value, int) else 'float'} {value}"
    if isinstance(value, str):
        return f"string {short_repr(value)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


def _got(value: object) -> str:
    return short_repr(value) if isinstance(value, str) else _toml_type(value)


_EXPECTED_TYPE = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
"""What a pydantic type error's field wanted, in TOML words."""


def _friendly(error: Mapping[str, Any]) -> str:
    """Rephrase one pydantic error for someone editing a TOML file."""
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    message = str(error["msg"])
    if kind == "missing":
        return "field required"
    if kind in _EXPECTED_TYPE:
        return f"must be {_EXPECTED_TYPE[kind]} (got {_toml_type(value)})"
    if kind == "literal_error":
        return f"must be {ctx['expected']} (got {_got(value)})"
    if kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters (got {len(str(value))})"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']} (got {_got(value)})"
    if kind == "union_tag_invalid":
        hint = _suggest(str(ctx.get("tag")), _SKILL_TYPES)
        tag = short_repr(ctx.get("tag"))
        return f"unknown skill type {tag}: use one of {_one_of(_SKILL_TYPES)}" + (
            f" (did you mean {hint!r}?)" if hint else ""
        )
    if kind == "union_tag_not_found":
        return f"field required (the skill type: one of {_one_of(_SKILL_TYPES)})"
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    # Our validators cut the values they quote; pydantic's own messages might not.
    message = _clip(message, 500)
    # "Field required" -> "field required", but leave acronyms ("URL must ...") alone.
    return message[:1].lower() + message[1:] if message[1:2].islower() else message


def _one_of(options: Sequence[str]) -> str:
    quoted = [repr(option) for option in options]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else "".join(quoted)


def _error_path(loc: Sequence[str | int], data: Any) -> tuple[KeyPath, bool]:
    """Turn a pydantic location into a document path; also whether it blames a table key.

    pydantic adds entries that are not keys of the file: the tag of a discriminated union
    (``"mcpStdioSkill"``), the member of a plain union, ``"[key]"`` for a bad dict key.
    """
    node, value = _ROOT, data
    path: list[str | int] = []
    for entry in loc:
        if entry == "[key]":
            return tuple(path), True
        if node.kind == "union":
            member = _member(node, entry)
            if member is not None:
                node = _Node("model", model=member)
                continue
        if node.kind == "leaf":
            break
        path.append(entry)
        node = _child(node, entry, value)
        value = _index(value, entry)
    return tuple(path), False


def _problems(
    error: ValidationError,
    data: dict[str, Any],
    lines: _KeyLines,
    label: str,
    unknown: Sequence[_Unknown],
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    seen: set[tuple[KeyPath, str]] = set()
    for item in error.errors(include_url=False):
        path, _ = _error_path(item["loc"], data)
        ctx: Mapping[str, Any] = item.get("ctx") or {}
        if item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            path = (*path, "type")
        if isinstance(ctx.get(ERROR_AT), str):
            path = (*path, *ctx[ERROR_AT].split("."))
        message = _friendly(item)
        if item["type"] == "missing":
            # A required key is often "missing" because of a typo one line away: say so here,
            # since a failed load shows no warnings.
            for candidate in unknown:
                if candidate.parent == path[:-1] and candidate.suggestion == path[-1]:
                    message += (
                        f" (found {short_repr(candidate.key)} on line {candidate.warning.line}: "
                        f"did you mean {candidate.suggestion}?)"
                    )
                    break
        if (path, message) in seen:
            continue
        seen.add((path, message))
        problems.append(
            ConfigProblem(lines.line_of(path), _render_path(path, data), message, label)
        )
    return sorted(problems, key=_line_order)


# Checks across the validated document --------------------------------------------------------


def _semantic_warnings(
    config: PerstackConfig, data: dict[str, Any], lines: _KeyLines, label: str
) -> Iterator[ConfigWarning]:
    """Valid but suspicious: these would fail (or be ignored) only later, at run time."""

    def warn(path: KeyPath, message: str) -> ConfigWarning:
        return ConfigWarning(lines.line_of(path), _render_path(path, data), message, label)

    defined = list(config.experts)
    for key, expert in config.experts.items():
        seen: set[str] = set()
        for index, delegate in enumerate(expert.delegates):
            path: KeyPath = ("experts", key, "delegates", index)
            name, _ = split_expert_ref(delegate)
            if delegate in seen:
                yield warn(path, f'delegate "{delegate}" is listed twice')
            seen.add(delegate)
            if name == key:
                yield warn(path, f'expert "{key}" lists itself as a delegate')
            elif name not in config.experts and not name.startswith("@"):
                close = _suggest(name, defined)
                yield warn(
                    path,
                    f'delegate "{delegate}" of expert "{key}" is not defined in {label} '
                    + (
                        f'(did you mean "{close}"?)'
                        if close
                        else "(it will be looked up in the registry)"
                    ),
                )
        for skill_name, skill in (expert.skills or {}).items():
            if not isinstance(skill, McpStdioSkill):
                continue
            path = ("experts", key, "skills", skill_name)
            if skill.package_name and skill.args:
                yield warn(
                    path,
                    "has both packageName and args, so it cannot start: keep only one of them",
                )
            elif not skill.package_name and not skill.args:
                yield warn(
                    path,
                    "has neither packageName nor args, so it cannot start: set packageName "
                    '(e.g. packageName = "@modelcontextprotocol/server-github") or args',
                )
            for index, name in enumerate(skill.required_env):
                if name in PROTECTED_ENV_NAMES:
                    yield warn(
                        (*path, "requiredEnv", index),
                        f"{name} is protected and is never passed to skills (ignored)",
                    )
            if skill_name == BASE_SKILL_NAME and skill.lazy_init:
                yield warn((*path, "lazyInit"), f"ignored for {BASE_SKILL_NAME} (always started)")


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
    )


def _not_found_message(key: str, defined: Sequence[str], label: str) -> str:
    if not defined:
        return (
            f'Expert "{key}" not found in {label}. No experts are defined: add an '
            f'[experts."{key}"] table with an instruction.'
        )
    message = f'Expert "{key}" not found in {label}. Defined experts: {", ".join(defined)}.'
    close = _suggest(key, defined)
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
