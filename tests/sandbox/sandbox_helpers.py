"""Helpers shared by the sandbox tests: run a command in a sandbox and collect what it printed."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]
SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY----- fake-ssh-secret"
AWS_SECRET = "aws_secret_access_key = fake-aws-secret"
TIMEOUT_S = 30  # a cold interpreter in a sandbox on a slow CI machine, with room to spare


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


async def run(
    sandbox: Sandbox,
    argv: Sequence[str],
    env: dict[str, str],
    *,
    domains: Sequence[str] = (),
) -> Result:
    """Run ``argv`` in the sandbox to completion and collect its output."""
    command = sandbox.wrap(argv, env=env, allowed_domains=domains)
    try:
        process = await asyncio.create_subprocess_exec(
            *command.argv,
            env=command.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(TIMEOUT_S):
            out, err = await process.communicate()
    finally:
        command.cleanup()
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


def exists(path: str | Path) -> bool:
    """``os.path.exists`` outside the event loop's coroutine (ruff ASYNC240)."""
    return Path(path).exists()


async def run_python(
    sandbox: Sandbox, code: str, env: dict[str, str], *, domains: Sequence[str] = ()
) -> Result:
    return await run(sandbox, [sys.executable, "-c", code], env, domains=domains)
