"""Snapshot suites of the studio: fixed terminal size, theme, clock and cursors.

Every app comes from the factory ``perstack start`` uses (:func:`studio.app.make_app`,
:func:`studio.run_app.make_run_app`, :func:`studio.wizard_app.make_wizard_app`). Snapshots are
produced on the project's pinned Python (3.11); updating them on another is refused, because the
SVGs are compared byte for byte.

Shared inputs: the perstack.toml files of ``tests/fixtures/configs`` (shared with the tests),
the jobs the real Perstack CLI stored in ``tests/fixtures/perstack-jobs``, and in
``snapshots/fixtures`` a user's settings file (``settings/``) and a workspace with its
perstack.toml and five stored jobs (``workspaces/studio-jobs``, written by
``snapshots/fixtures/make_jobs.py`` with fixed ids and times).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runtime import PerstackEvent
from studio.app import StudioApp, make_app
from studio.run_app import RunApp, make_run_app
from studio.screens.history import stored_events
from studio.settings import Settings, load_settings

# The demo's pauses (for people watching) would only slow the pictures down.
os.environ["PERSTACK_DEMO_PACE"] = "0"

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "tests" / "fixtures" / "configs"
PERSTACK_JOBS = ROOT / "tests" / "fixtures" / "perstack-jobs"
"""Jobs stored by the real Perstack CLI (see the README there)."""
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SETTINGS = FIXTURES / "settings"
JOBS_WORKSPACE = FIXTURES / "workspaces" / "studio-jobs"
"""perstack.toml (the demo team, solo, asker) and five stored jobs, 2025-01-02 09:00-11:15 UTC."""
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
def studio_app(tmp_path: Path) -> Callable[..., StudioApp]:
    """The studio on a copy of a fixture config (``None``: a directory with no config).

    ``config`` is a name under ``tests/fixtures/configs`` or a path. Keyword arguments: ``theme``,
    and ``settings``, a file under ``snapshots/fixtures/settings`` applied as ``perstack start``
    applies the user's settings (its theme, keymap and confirmations).
    """

    def build(
        config: str | Path | None, *, theme: str = THEME, settings: str | None = None
    ) -> StudioApp:
        if config is not None:
            shutil.copy(CONFIGS / config, tmp_path / "perstack.toml")
        loaded = load_settings(SETTINGS / settings) if settings else Settings()
        app = make_app(
            cwd=tmp_path,
            now=fixed_now,
            theme=loaded.theme or theme,
            watch=False,
            cursor_blink=False,
            keymap=loaded.keymap,
        )
        app.settings = loaded
        return app

    return build


@pytest.fixture
def jobs_workspace(tmp_path: Path) -> Path:
    """A copy of ``fixtures/workspaces/studio-jobs``: its perstack.toml and five stored jobs."""
    workspace = tmp_path / "studio-jobs"
    shutil.copytree(JOBS_WORKSPACE, workspace)
    return workspace


def copy_perstack_job(name: str, workspace: Path) -> None:
    """Add the jobs of ``tests/fixtures/perstack-jobs/<name>`` to ``workspace``'s storage."""
    shutil.copytree(PERSTACK_JOBS / name / "perstack", workspace / "perstack", dirs_exist_ok=True)


def make_run(
    workspace: Path,
    expert: str | None,
    query: str | None = None,
    lm: Any = None,
    *,
    theme: str = THEME,
    **kw: Any,
) -> RunApp:
    """The run view (``perstack start EXPERT QUERY``) on ``workspace``, with the fixed clock.

    ``lm`` is a language model to run on (a scripted one); ``kw`` are more options of
    :func:`studio.run_app.make_run_app` (``provider``, ``model``, ``job_id``, ``extra``...).
    """
    return make_run_app(
        workspace=workspace,
        expert_key=expert,
        query=query,
        language_model=lm,
        now=fixed_now,
        theme=theme,
        cursor_blink=False,
        **kw,
    )


def stored_job(job_id: str, workspace: Path = JOBS_WORKSPACE) -> list[PerstackEvent]:
    """The stored events of a job, in time order, as the history replays them."""
    return list(stored_events(workspace, job_id))
