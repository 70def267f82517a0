"""How a skill's failures are put into words: for the model after a call, for the user at start."""

from __future__ import annotations

from runtime.errors import SkillError

__all__ = ["command_line", "describe", "start_failure"]


def _leaf(error: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups from anyio task groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def describe(error: BaseException) -> str:
    """What went wrong, in one line: the server's message, or the error's type and text."""
    from mcp.shared.exceptions import MCPError

    error = _leaf(error)
    if isinstance(error, MCPError):
        return error.message
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def command_line(launch: tuple[str, list[str]]) -> str:
    """A stdio server's command and arguments, as one line to show."""
    command, args = launch
    return " ".join([command, *args])


def start_failure(
    name: str,
    error: BaseException | None,
    *,
    launch: tuple[str, list[str]] | None,
    exit_code: int | None,
    context: str,
) -> SkillError:
    """The error a skill that could not be started is reported with.

    Args:
        name: The skill's name.
        error: What the connection raised, if anything.
        launch: The command and arguments of a stdio server; None for a remote one.
        exit_code: The server's exit code, when it exited.
        context: Appended to the messages that need it: where the server is and the last lines
            of its stderr.

    Returns:
        A :class:`SkillError` saying whether the command is missing or not executable, the
        server exited during the handshake, or what else failed.
    """
    from mcp.shared.exceptions import MCPError
    from mcp_types import CONNECTION_CLOSED

    leaf = _leaf(error) if error is not None else None
    if isinstance(leaf, SkillError):
        return leaf
    if isinstance(leaf, FileNotFoundError) and launch is not None:
        command = launch[0]
        return SkillError(
            f'Skill "{name}": command {command!r} not found (tried to run: '
            f"{command_line(launch)}). Install it, or fix the skill's command in "
            "perstack.toml.",
            title="Skill command not found",
        )
    if isinstance(leaf, PermissionError) and launch is not None:
        return SkillError(
            f'Skill "{name}": command {launch[0]!r} cannot be executed ({leaf.strerror or leaf}).',
            title="Skill failed to start",
        )
    if exit_code is not None or (isinstance(leaf, MCPError) and leaf.code == CONNECTION_CLOSED):
        code = f" with code {exit_code}" if exit_code is not None else ""
        return SkillError(
            f'Skill "{name}" exited{code} before completing the MCP handshake' + context,
            title="Skill failed to start",
        )
    reason = describe(leaf) if leaf is not None else "unknown error"
    return SkillError(
        f'Skill "{name}" failed to start: {reason}' + context,
        title="Skill failed to start",
    )
