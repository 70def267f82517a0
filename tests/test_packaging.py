"""The wheel the Docker image installs works outside the checkout (package data included)."""

from __future__ import annotations

import email.parser
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]

DEV_ONLY = {"pytest", "pytest-textual-snapshot", "textual-dev"}
"""Test and development tools: in the ``dev`` extra, never installed with the package."""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return next(out.glob("perstack_studio-*.whl"))


def test_wheel_carries_stylesheets_and_the_demo(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    tcss = {name for name in names if name.endswith(".tcss")}
    in_tree = {str(p.relative_to(ROOT)) for p in (ROOT / "studio").rglob("*.tcss")}
    assert tcss == in_tree
    assert "studio/demo/perstack.toml" in names
    assert "runtime/py.typed" in names
    assert not any(name.startswith("tests/") for name in names)


def test_wheel_installs_no_test_or_dev_tools(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = email.parser.Parser().parsestr(archive.read(metadata).decode())
    requirements = [Requirement(line) for line in message.get_all("Requires-Dist") or []]
    core = {
        r.name.lower() for r in requirements if r.marker is None or "extra" not in str(r.marker)
    }
    dev = {
        r.name.lower()
        for r in requirements
        if r.marker is not None and r.marker.evaluate({"extra": "dev"})
    }
    assert "litellm" in core
    assert core.isdisjoint(DEV_ONLY), core & DEV_ONLY
    assert DEV_ONLY <= dev
    # A core dependency without an upper bound would let its next major version in unseen.
    unbounded = [
        str(r)
        for r in requirements
        if r.name.lower() in core and not any(s.operator in ("<", "==") for s in r.specifier)
    ]
    assert unbounded == []


def test_docker_image_installs_the_package_without_the_dev_extra() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'pip wheel --wheel-dir /wheels ".${EXTRAS:+[$EXTRAS]}" ' in dockerfile
    assert 'ARG EXTRAS=""' in dockerfile  # no extra unless the build asks for one
    assert "[dev]" not in dockerfile


def test_the_readme_demo_command_builds_the_venv_make_check_uses() -> None:
    """`make demo` (README, step 1) goes through `setup`, so `make check` after it reinstalls
    nothing; `make dev` runs the studio under Textual's devtools (textual-dev)."""
    root = Path(__file__).parents[1]
    readme = (root / "README.md").read_text()
    steps = readme.split("## Set up a fresh machine", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line for line in steps.splitlines() if line and not line.startswith("#")]
    assert commands == ["make demo", "make check"]
    # Run inside `make check` too: not as a sub-make of it.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.installed", "demo", "dev"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert dry == [
        ".venv/bin/perstack start --demo",
        ".venv/bin/textual run --dev -c .venv/bin/perstack start --demo",
    ]
    makefile = (root / "Makefile").read_text()
    assert "\ndemo: setup\n" in makefile and "\ndev: setup\n" in makefile
