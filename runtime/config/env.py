"""The environment a run sees: process env plus env files (§2.7), and what a skill may see (§5.10).

API keys and skill secrets live in the environment or in ``.env`` files next to perstack.toml, never
in perstack.toml itself. A skill process gets only a small safe set of variables plus the ones its
``requiredEnv`` names, so a third-party MCP server cannot read every secret of the user.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from dotenv import dotenv_values

from runtime.config.schema import DEFAULT_ENV_PATH, short_repr
from runtime.errors import ConfigError

SAFE_ENV_NAMES: tuple[str, ...] = (
    "PATH",
    "HOME",
    "SHELL",
    "TERM",
    "NODE_PATH",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
    "PERSTACK_PROXY_URL",
    "NPM_CONFIG_PROXY",
    "NPM_CONFIG_HTTPS_PROXY",
)
"""Variables every stdio skill receives from the environment when they are set."""

PROTECTED_ENV_NAMES: frozenset[str] = frozenset(
    {
        "PATH",
        "HOME",
        "SHELL",
        "NODE_PATH",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "DYLD_INSERT_LIBRARIES",
        "DYLD_LIBRARY_PATH",
        "NODE_OPTIONS",
        "PYTHONPATH",
        "PERL5LIB",
        "RUBYLIB",
    }
)
"""Variables a skill's ``requiredEnv`` can never set: they change what code a process loads."""


def load_env(
    env_paths: Sequence[str] | None,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Build the run's environment: process variables, then env files, first definition winning.

    Perstack's rule (§2.7): start from every non-empty process variable, then read the files in
    order without overriding, so the real environment beats the files and, for a key defined in
    several files, the file listed first wins (``.env`` beats ``.env.local`` with the default
    list). Files that do not exist are skipped. Values are taken literally (no ``${VAR}``
    expansion, as in Perstack). An empty assignment (``KEY=``) counts as unset, like an empty
    process variable, so a later file can still provide the value.

    Args:
        env_paths: Env files to read, in order. Relative paths are relative to ``base_dir``.
            ``None`` means Perstack's default, ``.env`` then ``.env.local``.
        base_dir: Directory relative paths resolve against: the directory of perstack.toml.
        environ: The process environment; defaults to ``os.environ``.

    Returns:
        A new mapping of variable name to value. The process environment is not modified.

    Raises:
        ConfigError: An env file exists but cannot be read or is not UTF-8 text; or a path is
            not a path (a NUL character, too long, an unknown ``~user``); or it names a
            directory or another non-file. A directory named ``.env`` or ``.env.local`` is
            skipped instead (virtualenvs are often called ``.env``).
    """
    source = os.environ if environ is None else environ
    env = {name: value for name, value in source.items() if value}
    for entry in _entries(env_paths):
        path = _env_file(entry, base_dir)
        if path is None:
            continue
        try:
            values = dotenv_values(path, interpolate=False, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"Cannot read env file {short_repr(str(path))}: {error}") from error
        for name, value in values.items():
            if value and name not in env:
                env[name] = value
    return env


def env_file_paths(env_paths: Sequence[str] | None, base_dir: Path) -> tuple[Path, ...]:
    """The env files a run reads, as absolute paths, whether or not they exist.

    Resolved as :func:`load_env` resolves them (``~`` expanded, relative to ``base_dir``,
    ``.env`` then ``.env.local`` by default), for the file tools to refuse and the sandbox to
    blank. An entry that is no usable path (load_env has reported it) is left out.
    """
    paths = (_entry_path(entry, base_dir) for entry in _entries(env_paths))
    return tuple(path for path in paths if path is not None)


def _entries(env_paths: Sequence[str] | None) -> tuple[str, ...]:
    return DEFAULT_ENV_PATH if env_paths is None else tuple(env_paths)


def _entry_path(entry: str, base_dir: Path) -> Path | None:
    """Where an envPath entry points; None for ``~someone`` who is not a user here."""
    try:
        path = Path(entry).expanduser()
    except RuntimeError:
        return None
    return path if path.is_absolute() else base_dir / path


def _env_file(entry: str, base_dir: Path) -> Path | None:
    """The env file ``entry`` names, or ``None`` when there is none to read."""

    def refuse(reason: str) -> ConfigError:
        return ConfigError(f"envPath / --env-path entry {short_repr(entry)} {reason}")

    if "\x00" in entry:
        raise refuse("contains a NUL character, which no path can hold")
    path = _entry_path(entry, base_dir)
    if path is None:
        raise refuse("starts with ~ but names no user of this system")
    try:
        if path.is_file():
            return path
        exists = path.exists()
    except (OSError, ValueError) as error:  # a name too long, a directory that cannot be read
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise refuse(f"cannot be used as a path: {reason}") from None
    # A virtualenv is often called .env: a directory with a default name is no env file, but
    # no mistake either.
    if exists and path.name not in DEFAULT_ENV_PATH:
        kind = "a directory" if path.is_dir() else "not a regular file"
        raise refuse(f"is {kind}; name an env file (KEY=value lines) instead")
    return None


def skill_env(required: Sequence[str], env: Mapping[str, str], skill_name: str) -> dict[str, str]:
    """The environment of a stdio skill process: the safe variables plus its ``requiredEnv``.

    Names in :data:`PROTECTED_ENV_NAMES` are never taken from ``requiredEnv`` (Perstack skips
    them too); ``PATH``, ``HOME``, ``SHELL`` and ``NODE_PATH`` still arrive through the safe set.

    Args:
        required: The skill's ``requiredEnv`` names.
        env: The run's environment, as returned by :func:`load_env`.
        skill_name: The skill's name, for the error message.

    Returns:
        A new mapping to pass as the child process environment.

    Raises:
        ConfigError: A required variable is not set (or is empty) in ``env``.
    """
    result = {name: env[name] for name in SAFE_ENV_NAMES if env.get(name)}
    missing: list[str] = []
    for name in required:
        if name in PROTECTED_ENV_NAMES:
            continue
        value = env.get(name)
        if value:
            result[name] = value
        elif name not in missing:
            missing.append(name)
    if len(missing) == 1:
        raise ConfigError(
            f'Skill "{skill_name}" requires environment variable {missing[0]}, which is not set. '
            "Set it in the environment or in .env."
        )
    if missing:
        raise ConfigError(
            f'Skill "{skill_name}" requires environment variables {", ".join(missing)}, which are '
            "not set. Set them in the environment or in .env."
        )
    return result


# Conventional templates that list variable names with placeholder values; coding agents are
# often asked to keep them up to date. They are still secret when they are a run's env files.
_ENV_TEMPLATES = frozenset({".env.example", ".env.sample", ".env.template"})


def is_env_file_name(name: str) -> bool:
    """Whether ``name`` (one path component) is ``.env`` or ``.env.<something>``, any case.

    The base skill refuses such files and the sandbox blanks them. The templates
    ``.env.example``, ``.env.sample`` and ``.env.template`` are not env files.
    """
    folded = name.casefold()
    return folded == ".env" or (folded.startswith(".env.") and folded not in _ENV_TEMPLATES)
