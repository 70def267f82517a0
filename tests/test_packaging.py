"""The wheel the Docker image installs works outside the checkout (package data included)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_carries_stylesheets_and_the_demo(tmp_path: Path) -> None:
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
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("perstack_studio-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    tcss = {name for name in names if name.endswith(".tcss")}
    in_tree = {str(p.relative_to(ROOT)) for p in (ROOT / "studio").rglob("*.tcss")}
    assert tcss == in_tree
    assert "studio/demo/perstack.toml" in names
    assert "runtime/py.typed" in names
    assert not any(name.startswith("tests/") for name in names)
