"""Running the checks of a case against its workspace and final result."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from runtime.evals.format import (
    Check,
    Exec,
    FileContains,
    FileExists,
    FileMatches,
    Judge,
    ResultContains,
    ResultMatches,
)
from runtime.evals.results import CheckResult

DETAIL_CHARS = 300
"""How much of a command's output or a judge's answer a result keeps."""

JudgeRunner = Callable[[Judge], Awaitable[tuple[bool, str, str | None]]]
"""Runs a judge check: (passed, why, the judge's job id)."""


def label(check: Check) -> str:
    """A short name for a check, as tables show it."""
    match check:
        case FileExists(path=path):
            return f"{path} exists"
        case FileContains(path=path, text=text):
            return f"{path} contains {_quote(text)}"
        case FileMatches(path=path, pattern=pattern):
            return f"{path} matches /{_short(pattern)}/"
        case Exec(command=command):
            return f"`{_short(command)}` exits 0"
        case ResultContains(text=text):
            return f"result contains {_quote(text)}"
        case ResultMatches(pattern=pattern):
            return f"result matches /{_short(pattern)}/"
        case Judge(expert=expert, rubric=rubric):
            # The rubric's start tells two judges of one case apart (results are compared by label).
            return f"judged by {expert}: {_quote(rubric)}"
    raise AssertionError(check)  # pragma: no cover - the union is closed


async def run_check(
    check: Check, workspace: Path, result_text: str, judge: JudgeRunner
) -> CheckResult:
    """Run one check; never raises (a check that cannot run fails, saying why)."""
    passed, detail, job_id = False, "", None
    match check:
        case FileExists(path=path):
            passed = (workspace / path).exists()
            detail = "" if passed else f"{path} is missing"
        case FileContains(path=path, text=text):
            content = _read(workspace / path)
            passed = content is not None and text in content
            detail = "" if passed else _file_problem(path, content, f"has no {_quote(text)}")
        case FileMatches(path=path, pattern=pattern):
            content = _read(workspace / path)
            passed = content is not None and re.search(pattern, content) is not None
            detail = "" if passed else _file_problem(path, content, f"has no match of /{pattern}/")
        case Exec(command=command, timeout=seconds):
            passed, detail = await _exec(command, workspace, seconds)
        case ResultContains(text=text):
            passed = text in result_text
            detail = "" if passed else f"the result has no {_quote(text)}"
        case ResultMatches(pattern=pattern):
            passed = re.search(pattern, result_text) is not None
            detail = "" if passed else f"the result has no match of /{pattern}/"
        case Judge():
            passed, detail, job_id = await judge(check)
    return CheckResult(
        type=check.type, label=label(check), passed=passed, detail=_short(detail), job_id=job_id
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _file_problem(path: str, content: str | None, problem: str) -> str:
    return f"{path} is missing" if content is None else f"{path} {problem}"


async def _exec(command: str, workspace: Path, seconds: float) -> tuple[bool, str]:
    process = await asyncio.create_subprocess_shell(
        command,
        cwd=workspace,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # the whole process group is killed on timeout
    )
    try:
        async with asyncio.timeout(seconds):
            output, _ = await process.communicate()
    except TimeoutError:
        _kill_group(process.pid)
        await process.wait()
        return False, f"timed out after {seconds:g} s"
    except BaseException:
        # Cancelled (Ctrl+C, the studio left mid-run): the command's whole group goes too,
        # before its scratch workspace is removed under it.
        _kill_group(process.pid)
        raise
    text = output.decode("utf-8", errors="replace").strip()
    if process.returncode == 0:
        return True, ""
    tail = text[-DETAIL_CHARS:] if text else "no output"
    return False, f"exit {process.returncode}: {tail}"


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def parse_verdict(answer: str) -> tuple[bool | None, str]:
    """A judge's answer: PASS or FAIL as its first word (markdown allowed), and the reason."""
    text = answer.strip()
    found = re.match(r"[\s*_#`>\-]*(PASS|FAIL)\b[\s*_`:.\-]*", text, flags=re.IGNORECASE)
    if found is None:
        return None, text
    return found.group(1).upper() == "PASS", text[found.end() :].strip()


def _quote(text: str) -> str:
    return repr(_short(text, 40))


def _short(text: str, limit: int = DETAIL_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
