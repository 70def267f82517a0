"""Fixtures for the sandbox tests: a working bwrap or a clear skip, a fake home full of secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.sandbox import Sandbox, find_bwrap
from runtime.sandbox.engine import _detect
from tests.sandbox.sandbox_helpers import AWS_SECRET, ROOT, SSH_KEY


@pytest.fixture(scope="session")
def bwrap() -> str:
    path = find_bwrap()
    if path is None:
        # Only when bubblewrap truly cannot run here (no binary, or user namespaces forbidden).
        reasons = "; ".join(_detect()[1]) or "no bwrap binary found"
        pytest.skip(f"bubblewrap cannot create a sandbox on this machine: {reasons}")
    return path


@pytest.fixture
def fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home directory with credentials, set as $HOME of the test process and the sandbox."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(SSH_KEY)
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(AWS_SECRET)
    (home / ".netrc").write_text("machine example.com password fake-netrc-secret")
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture
def child_env(fake_home: Path) -> dict[str, str]:
    """What a skill would be given: a safe minimum, nothing secret."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(fake_home)}


@pytest.fixture
def sandbox(bwrap: str, workspace: Path) -> Sandbox:
    # The repository is exposed read-only in case the checkout lives under a hidden directory
    # (/tmp, /root, /home): the editable install imports `runtime` from it.
    return Sandbox(workspace, bwrap=bwrap, read_only_paths=[ROOT])
