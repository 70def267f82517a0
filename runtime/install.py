"""``perstack install``: resolve every expert, collect its tool definitions, write perstack.lock.

Reference §7. Tool definitions are collected by really starting each expert's skills: the bundled
base skill in process, MCP servers spawned or connected (concurrently within an expert; a skill
shared by several experts starts once), interactive tools parsed from their schemas. Delegate
tools are not recorded. The lockfile is written atomically next to perstack.toml.

Exit codes: 0 written, 1 a skill failed to start (the message names the skill and its command),
2 a configuration or usage error (bad perstack.toml, undefined delegate, remote config).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from runtime._terminal import counted
from runtime.config.env import load_env
from runtime.config.loader import LoadedConfig, load_config
from runtime.config.resolve import ExpertDefinition, all_expert_keys, resolve_expert
from runtime.config.schema import InteractiveSkill
from runtime.engine.skillset import close_all, interactive_definitions, start_all
from runtime.errors import ConfigError, PerstackError, SkillError, UsageError
from runtime.schema.events import PerstackEvent, now_ms
from runtime.skills.base import BaseSkill
from runtime.skills.lockfile import (
    LOCKFILE_VERSION,
    Lockfile,
    expert_entry,
    lockfile_path,
    skill_definition_hash,
    write_lockfile,
)
from runtime.skills.mcp import McpSkill, SkillRuntime, is_bundled_base
from runtime.skills.types import ToolDefinition

__all__ = ["install", "main"]

EXIT_OK = 0
EXIT_SKILL = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130


def _ignore(event: PerstackEvent) -> None:
    """Skill events have no consumer during install (stderr is shown with --verbose)."""


def _resolve_all(loaded: LoadedConfig) -> list[ExpertDefinition]:
    experts = [resolve_expert(loaded, key) for key in all_expert_keys(loaded)]
    for expert in experts:
        for key in expert.delegates:
            try:
                resolve_expert(loaded, key)
            except UsageError:
                raise ConfigError(
                    f'Delegate expert "{key}" not found: expert "{expert.key}" lists it in '
                    f"delegates, but {loaded.label} does not define it. Define "
                    f'[experts."{key}"] or remove it from delegates.'
                ) from None
    return experts


async def _collect(
    expert: ExpertDefinition,
    runtime: SkillRuntime,
    base_command: list[str] | None,
    known: dict[str, list[ToolDefinition]],
    progress: TextIO,
) -> list[ToolDefinition]:
    """Every tool of ``expert``'s skills (before pick/omit), starting what is not ``known``."""
    by_skill: dict[str, list[ToolDefinition]] = {}
    pending: list[tuple[str, McpSkill]] = []
    for name, config in expert.skills.items():
        digest = skill_definition_hash(name, config, base_command)
        if digest in known:
            by_skill[name] = [
                ToolDefinition(name, t.name, t.description, t.input_schema) for t in known[digest]
            ]
        elif isinstance(config, InteractiveSkill):
            by_skill[name] = interactive_definitions(name, config)
        elif is_bundled_base(name, config, base_command):
            base = BaseSkill(runtime.workspace)
            by_skill[name] = base.tools()
            await base.close()
        else:
            pending.append((name, McpSkill(name, config, runtime, base_command=base_command)))
    skills = [skill for _, skill in pending]
    if skills:
        # Starting servers is the slow part (npx or uvx may first download a package): say
        # which, and how long they took, on stderr (stdout keeps Perstack's lines).
        names = ", ".join(name for name, _ in pending)
        count = counted(len(skills), "MCP server")
        print(f"  starting {count}: {names}...", file=progress, flush=True)
    started = time.monotonic()
    try:
        await start_all(skills)
        for name, skill in pending:
            by_skill[name] = skill.tools()
    finally:
        await close_all(skills)
    if skills:
        print(f"  started in {time.monotonic() - started:.1f} s", file=progress, flush=True)
    for name, config in expert.skills.items():
        known[skill_definition_hash(name, config, base_command)] = by_skill[name]
    return [tool for name in expert.skills for tool in by_skill[name]]


async def install(
    *,
    config: str | None = None,
    env_path: Sequence[str] | None = None,
    cwd: Path | None = None,
    out: TextIO | None = None,
    verbose: bool = False,
    progress: TextIO | None = None,
) -> Path:
    """Generate perstack.lock for the perstack.toml found from ``cwd`` (or given by ``config``).

    Args:
        config: ``--config``: a perstack.toml path; searched upward from ``cwd`` when None.
        env_path: ``--env-path`` values (env files for ``requiredEnv`` and headers).
        cwd: Working directory (also the stdio servers' working directory).
        out: Where Perstack's progress lines go (stdout by default).
        verbose: Echo the servers' stderr.
        progress: Where the servers being started are named, with how long they took
            (stderr by default).

    Returns:
        The path of the written lockfile.

    Raises:
        ConfigError: perstack.toml is missing, invalid or remote, or a delegate is undefined.
        UsageError: An expert cannot be resolved.
        SkillError: A skill could not be started.
        OSError: The lockfile cannot be written.
    """
    out = out or sys.stdout
    cwd = (cwd or Path.cwd()).resolve()
    print("Resolving experts...", file=out, flush=True)
    loaded = load_config(config, cwd)
    for warning in loaded.warnings:
        print(f"perstack: warning: {warning}", file=sys.stderr)
    target = lockfile_path(loaded)
    if target is None or loaded.path is None:
        raise ConfigError(
            f"perstack install needs a local perstack.toml ({loaded.label} is remote); the "
            "lockfile is written next to it"
        )
    experts = _resolve_all(loaded)
    print(f"Found {len(experts)} expert(s)", file=out, flush=True)
    env = load_env(env_path or loaded.config.env_path, loaded.path.parent)
    runtime = SkillRuntime(
        env=env,
        workspace=cwd,
        publish=_ignore,
        job_id="install",
        run_id="install",
        verbose=verbose,
    )
    base_command = loaded.config.perstack_base_skill_command
    known: dict[str, list[ToolDefinition]] = {}
    entries = {}
    for expert in experts:
        print(f"Collecting tool definitions for {expert.key}...", file=out, flush=True)
        tools = await _collect(expert, runtime, base_command, known, progress or sys.stderr)
        print(f"  Found {len(tools)} tool(s)", file=out, flush=True)
        entries[expert.key] = expert_entry(expert, tools, base_command)
    lockfile = Lockfile(
        version=LOCKFILE_VERSION,
        generated_at=now_ms(),
        config_path=loaded.path.name,
        experts=entries,
    )
    write_lockfile(target, lockfile)
    print(f"Generated {target}", file=out, flush=True)
    return target


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``perstack install``."""
    parser = argparse.ArgumentParser(
        prog="perstack install",
        description="Start every expert's skills, record their tool definitions in "
        "perstack.lock (next to perstack.toml), so runs start without waiting for MCP servers.",
    )
    parser.add_argument(
        "--config", metavar="PATH", help="perstack.toml path (default: search upward)"
    )
    parser.add_argument(
        "--env-path",
        action="append",
        metavar="PATH",
        help="env file to load (repeatable; default: envPath, then .env and .env.local)",
    )
    parser.add_argument("--verbose", action="store_true", help="also show skills' stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``perstack install [--config PATH] [--env-path PATH]... [--verbose]``.

    Args:
        argv: Arguments after ``install``; ``sys.argv[1:]`` when None.

    Returns:
        The exit code: 0 written, 1 a skill failed, 2 configuration or usage error,
        130 interrupted.
    """
    options = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        asyncio.run(
            install(config=options.config, env_path=options.env_path, verbose=options.verbose)
        )
    except KeyboardInterrupt:
        print("perstack: interrupted; perstack.lock was not changed", file=sys.stderr)
        return EXIT_INTERRUPTED
    except PerstackError as error:
        print(f"perstack: {error.title}: {error}", file=sys.stderr)
        return EXIT_SKILL if isinstance(error, SkillError) else EXIT_CONFIG
    except OSError as error:
        print(f"perstack: cannot write perstack.lock: {error}", file=sys.stderr)
        return EXIT_SKILL
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
