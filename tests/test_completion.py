"""Shell completion of every command and option (issue 19 item 5), as a shell asks for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def perstack(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "studio", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def complete(line: str, tmp_path: Path) -> set[str]:
    """What argcomplete offers for ``line`` (the protocol its shell functions speak)."""
    out = tmp_path / "completions"
    done = perstack(
        env={
            "_ARGCOMPLETE": "1",
            "_ARGCOMPLETE_IFS": "\n",
            "COMP_LINE": line,
            "COMP_POINT": str(len(line)),
            "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
        }
    )
    assert done.returncode == 0, done.stderr
    return {item.strip() for item in out.read_text().split("\n")} - {""}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_script_for_each_shell(shell: str) -> None:
    done = perstack("completion", shell)
    assert done.returncode == 0
    assert "perstack" in done.stdout and "_ARGCOMPLETE" in done.stdout


def test_a_missing_shell_is_a_usage_error() -> None:
    done = perstack("completion")
    assert done.returncode == 2
    assert 'eval "$(perstack completion bash)"' in done.stderr


def test_commands_and_their_options_complete(tmp_path: Path) -> None:
    assert complete("perstack re", tmp_path) == {"replay"}
    assert {"eval", "export"} <= complete("perstack e", tmp_path)
    assert complete("perstack eval --con", tmp_path) == {"--concurrency", "--config"}
    assert "--fork-from" in complete("perstack run x y --fo", tmp_path)
    assert "--demo" in complete("perstack start --de", tmp_path)
    assert complete("perstack completion z", tmp_path) == {"zsh"}
