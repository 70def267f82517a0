"""An MCP stdio server's stderr: stored as skillStderr events split at line ends, with
long lines cut and the total bounded, and echoed to the terminal with --verbose."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runtime.schema.events import SkillStderr
from runtime.skills.mcp import McpSkill, OutputLimits
from tests.runtime.mcp_skill_helpers import direct_runtime, stderr_messages, toy


def test_stderr_is_split_at_line_ends_long_lines_are_cut_and_the_total_is_bounded(
    tmp_path: Path,
) -> None:
    runtime, events = direct_runtime(tmp_path)
    limits = OutputLimits(stderr_bytes=200, stderr_message_bytes=30)
    skill = McpSkill("noisy", toy(), runtime, limits=limits)
    # One chunk as the pipe delivers it: short lines, then a line longer than a message.
    skill._on_stderr("line one\nline two\nline three\nline four\n" + "x" * 50 + "\nafter\n")
    # 175 bytes stored so far (markers count); of 28 more, the 25 bytes left of the total fit.
    skill._on_stderr("é" * 14)
    skill._on_stderr("never stored")
    assert stderr_messages(events, "noisy") == [
        "line one\nline two\nline three",
        "line four",
        "x" * 30 + " [... 20 more bytes of this line not stored; raise maxStderrMessageBytes on "
        'skill "noisy" to keep more]',
        "after",
        "é" * 12,
        '[stderr truncated: skill "noisy" wrote more than 200 bytes of stderr in this run; the '
        'rest is not stored. Raise maxStderrBytes on skill "noisy" to keep more]',
    ]


async def test_verbose_echoes_server_stderr(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    runtime, events = direct_runtime(tmp_path, verbose=True)
    skill = McpSkill("loud", toy(), runtime)
    async with asyncio.timeout(20):
        await skill.start()
        await skill.call("shout", {"text": "from the server"})
        await skill.close()
    err = capfd.readouterr().err
    assert "[loud] from the server" in err
    assert "from the server" in [e.message for e in events if isinstance(e, SkillStderr)]
