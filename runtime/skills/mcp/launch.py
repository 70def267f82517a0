"""How a stdio skill is launched: the bundled base skill or a command (``npx``, ``uvx``, ...).

``@perstack/base`` without a pinned version runs in process (§1.5); everything else is spawned
with the command :func:`stdio_launch` resolves, ``perstackBaseSkillCommand`` included.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from runtime.config.schema import BASE_SKILL_NAME, McpStdioSkill, SkillConfig
from runtime.errors import SkillError

__all__ = ["is_bundled_base", "stdio_launch"]

_PINNED_BASE = re.compile(re.escape(BASE_SKILL_NAME) + r"@\S+")


def is_bundled_base(name: str, skill: SkillConfig, base_command: Sequence[str] | None) -> bool:
    """Whether the base skill runs in process (§1.5).

    That is the case for ``@perstack/base`` as a stdio skill without a pinned version and
    without ``perstackBaseSkillCommand``. A pinned version or an override command makes it an
    ordinary stdio MCP server; an SSE skill of that name stays an SSE skill.

    Args:
        name: The skill's key in the expert's ``skills`` table.
        skill: The skill's configuration.
        base_command: ``perstackBaseSkillCommand`` from perstack.toml, if set.

    Returns:
        True when the in-process base skill should be used.
    """
    if name != BASE_SKILL_NAME or not isinstance(skill, McpStdioSkill) or base_command:
        return False
    argv = [skill.package_name] if skill.package_name else skill.args
    return not any(_PINNED_BASE.fullmatch(arg or "") for arg in argv)


def _is_base_package(arg: str) -> bool:
    return arg == BASE_SKILL_NAME or arg.startswith(BASE_SKILL_NAME + "@")


def stdio_launch(
    name: str, config: McpStdioSkill, base_command: Sequence[str] | None = None
) -> tuple[str, list[str]]:
    """The command and arguments a stdio skill is spawned with (§1.4, §1.5).

    ``packageName`` becomes the only argument; ``npx`` gets ``-y`` prepended when absent
    (``uvx`` is run as is). With ``perstackBaseSkillCommand`` set, any ``npx`` skill whose
    package is ``@perstack/base`` runs that command instead.

    Args:
        name: The skill's name, for error messages.
        config: The skill's configuration.
        base_command: ``perstackBaseSkillCommand`` from perstack.toml, if set.

    Returns:
        ``(command, args)``.

    Raises:
        SkillError: Both or neither of ``packageName`` and ``args`` are given (Perstack's
            messages).
    """
    if config.package_name and config.args:
        raise SkillError(
            f"Skill {name} has both packageName and args. Please provide only one of them.",
            title="Invalid skill",
        )
    if not config.package_name and not config.args:
        raise SkillError(
            f"Skill {name} has no packageName or args. Please provide one of them.",
            title="Invalid skill",
        )
    args = [config.package_name] if config.package_name else list(config.args)
    is_npx = Path(config.command).name == "npx"
    if base_command and is_npx and any(_is_base_package(a) for a in args if a != "-y"):
        return base_command[0], list(base_command[1:])
    if is_npx and "-y" not in args:
        args = ["-y", *args]
    return config.command, args
