"""Find, read and parse perstack.toml, with diagnostics that name the file, line and key.

The models in :mod:`runtime.config.schema` say what a valid file is; :func:`parse_config` turns
their verdict into messages a user can act on (:mod:`runtime.config.problems`):

* TOML syntax errors name the line and show it with a caret.
* Every schema problem of the file is reported at once, one per line, as
  ``perstack.toml:12 experts."writer".instruction: field required``.
* Unknown keys and settings that will not work as written are warnings
  (:mod:`runtime.config.checks`).

Line numbers come from :mod:`runtime.config.locate`: ``tomllib`` gives no positions, so the
text is also parsed with the tree-sitter TOML grammar, only when there is something to place.

Whatever the input, loading ends in a result or a :class:`~runtime.errors.ConfigError`, in
bounded time: before ``tomllib`` sees the text, :func:`runtime.config.limits.check_limits`
refuses files that are too large, too deeply nested or have too many keys. Values quoted in
messages are cut to :data:`~runtime.config.schema.MAX_SHOWN_CHARS` characters.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from pydantic import ValidationError

from runtime.config.checks import render_path, schema_problems, semantic_warnings, unknown_keys
from runtime.config.limits import MAX_CONFIG_BYTES, check_limits, limit_error, too_large
from runtime.config.locate import locator_for
from runtime.config.problems import (
    CONFIG_FILE_NAME,
    ConfigFileError,
    ConfigProblem,
    ConfigWarning,
    clip,
    line_order,
    printable,
    quoted,
)
from runtime.config.schema import PerstackConfig, short_repr
from runtime.errors import ConfigError

if TYPE_CHECKING:
    import httpx

REMOTE_CONFIG_HOST = "raw.githubusercontent.com"
"""The only host a config may be fetched from (as in Perstack)."""

REMOTE_TIMEOUT_S = 15.0
"""Connect/read timeout for fetching a remote config."""

# Tests swap this for an ``httpx.MockTransport``; ``None`` is the real network.
_remote_transport: httpx.BaseTransport | None = None

_TOML_ERROR_RE = re.compile(
    r"^(?P<message>.*?) \(at (?:line (?P<line>\d+), column (?P<column>\d+)|end of document)\)$"
)
_TUPLE_REPR_RE = re.compile(r"\((?:'[^'\\]*'(?:, )?)+,?\)")


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


def config_path(config: str, cwd: Path) -> Path:
    """The file a ``--config`` path names, which need not exist (the studio creates it).

    Relative paths start at ``cwd``; a directory means the perstack.toml in it. ``perstack
    run`` and ``perstack start`` both go through here, so they agree on what ``--config`` means.

    Raises:
        ConfigError: The path has a NUL, starts with ``~`` naming no user, or cannot be used.
    """
    if "\x00" in config:
        raise ConfigError(f"Given config path {_shown(config)} contains a NUL character")
    try:
        path = Path(config).expanduser()
        path = Path(os.path.abspath(path if path.is_absolute() else cwd / path))
        return path / CONFIG_FILE_NAME if path.is_dir() else path
    except RuntimeError:  # expanduser: "~someone" who is not a user here
        raise ConfigError(
            f"Given config path {_shown(config)} starts with ~ but names no user of this system"
        ) from None
    except (OSError, ValueError) as error:  # a name too long, a NUL, a directory not readable
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ConfigError(f"Given config path {_shown(config)} cannot be used: {reason}") from None


def find_config(config: str | None, cwd: Path) -> Path | str:
    """Locate perstack.toml the way Perstack does (§2.6).

    Args:
        config: The ``--config`` value: a path (relative to ``cwd``; a directory means the
            perstack.toml in it) or an ``https://raw.githubusercontent.com/...`` URL. ``None``
            searches ``cwd`` and each of its parents for ``perstack.toml``.
        cwd: The working directory.

    Returns:
        The absolute path of the file, or the URL unchanged.

    Raises:
        ConfigError: The given path (or the directory's perstack.toml) does not exist, the URL
            is not an https raw.githubusercontent.com URL, or no perstack.toml was found.
    """
    cwd = Path(os.path.abspath(cwd))
    if config is not None:
        if _is_url(config):
            _check_remote_url(config)
            return config
        path = config_path(config, cwd)
        try:
            is_file = path.is_file()
        except OSError as error:
            raise ConfigError(
                f"Given config path {_shown(config)} cannot be used: {error.strerror or error}"
            ) from None
        if not is_file:
            if (
                path.name == CONFIG_FILE_NAME
                and path.parent.is_dir()
                and not config.endswith(CONFIG_FILE_NAME)
            ):
                raise ConfigError(
                    f"Given config path {_shown(config)} is a directory without a "
                    f"{CONFIG_FILE_NAME}; create one there or pass the toml file's path"
                )
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
                        raise too_large(None, url)
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
                raise too_large(size if size > MAX_CONFIG_BYTES else None, label)
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
        ConfigLimitError: The text is over one of the limits of :mod:`runtime.config.limits`;
            it is not parsed.
    """
    check_limits(text, path_label)
    _check_encodable(text, path_label)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(str(error), text, path_label) from None
    except RecursionError:  # pragma: no cover - check_limits refuses such nesting first
        raise limit_error(path_label, None, "", "too deeply nested") from None
    locator = locator_for(text)  # parses only when something needs a line number
    unknown = unknown_keys(data, locator, path_label)
    try:
        config = PerstackConfig.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as error:
        problems = schema_problems(error, data, locator, path_label, unknown)
        warnings = sorted((item.warning for item in unknown), key=line_order)
        raise ConfigFileError(problems, warnings=warnings, label=path_label) from error
    warnings = [item.warning for item in unknown]
    warnings.extend(semantic_warnings(config, data, locator, path_label))
    return LoadedConfig(
        path=path,
        label=path_label,
        text=text,
        config=config,
        warnings=sorted(warnings, key=line_order),
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        base_dir=path.parent if path is not None else None,
    )


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
    message = clip(_TUPLE_REPR_RE.sub(_toml_key_of_tuple, message), 300)
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
            hint = f" (strings must be quoted: {key.strip()} = {quoted(value)})"
    excerpt, caret = _excerpt(source, column)
    gutter = f"{line:>5} | "
    detail = f"{gutter}{excerpt}\n{' ' * (len(gutter) - 2)}| {' ' * (caret - 1)}^"
    problem = ConfigProblem(line, "", f"invalid TOML: {message} {where}{hint}", label)
    return ConfigFileError([problem], label=label, detail=detail)


def _toml_key_of_tuple(match: re.Match[str]) -> str:
    try:
        return render_path(tuple(ast.literal_eval(match.group())), None)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return match.group()


_EXCERPT_CHARS = 100
"""Characters of a long source line shown under a syntax error, around the column."""


def _excerpt(source: str, column: int) -> tuple[str, int]:
    """The part of a line shown under a syntax error, and the caret's column in it."""
    if len(source) <= _EXCERPT_CHARS:
        return printable(source), column
    start = max(0, min(column - 1 - _EXCERPT_CHARS // 2, len(source) - _EXCERPT_CHARS))
    end = start + _EXCERPT_CHARS
    shown = ("…" if start else "") + source[start:end] + ("…" if end < len(source) else "")
    return printable(shown), column - start + (1 if start else 0)


def configured_storage_url(cwd: Path) -> str | None:
    """``storageUrl`` of the perstack.toml found from ``cwd``, for readers that load no config.

    Only that key is read, and nothing is reported: a missing or broken file is the loader's
    to report when the config is really loaded.
    """
    import tomllib

    try:
        found = find_config(None, cwd)
    except ConfigError:
        return None
    if not isinstance(found, Path):
        return None
    try:
        value = tomllib.loads(found.read_text(encoding="utf-8")).get("storageUrl")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return value.strip() if isinstance(value, str) and value.strip() else None
