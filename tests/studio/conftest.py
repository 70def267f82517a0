"""Fixtures for driving the studio with Pilot."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.studio.helpers import CONFIGS


@pytest.fixture
def config_dir(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a fixture config to ``tmp_path/perstack.toml``; returns the file."""

    def copy(name: str) -> Path:
        target = tmp_path / "perstack.toml"
        shutil.copy(CONFIGS / name, target)
        return target

    return copy
