"""Snapshot suites of the studio: fixed terminal size, theme, clock and cursors.

Every app comes from :func:`studio.app.make_app`, the factory ``perstack start`` uses. Snapshots
are produced on the project's pinned Python (3.11); updating them on another is refused, because
the SVGs are compared byte for byte.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from studio.app import StudioApp, make_app

# The demo's pauses (for people watching) would only slow the pictures down.
os.environ["PERSTACK_DEMO_PACE"] = "0"

CONFIGS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "configs"
THEME = "textual-dark"
SNAPSHOT_PYTHON = (3, 11)


def fixed_now() -> datetime:
    return datetime(2025, 1, 2, 12, 34, 56, tzinfo=UTC)


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--snapshot-update", default=False) and (
        sys.version_info[:2] != SNAPSHOT_PYTHON
    ):
        raise pytest.UsageError(
            f"Update snapshots on Python {'.'.join(map(str, SNAPSHOT_PYTHON))} only: "
            "they are compared byte for byte."
        )


@pytest.fixture
def studio_app(tmp_path: Path) -> Callable[[str | None], StudioApp]:
    """The studio on a copy of a fixture config (``None``: a directory with no config)."""

    def build(config: str | None) -> StudioApp:
        if config is not None:
            shutil.copy(CONFIGS / config, tmp_path / "perstack.toml")
        return make_app(cwd=tmp_path, now=fixed_now, theme=THEME, watch=False, cursor_blink=False)

    return build
