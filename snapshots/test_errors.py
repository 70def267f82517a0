"""Snapshots of the plain error states: what the studio shows when something cannot go on.

In the run view, a run that cannot start shows a red panel above the query box (and a toast)
and the app stays up; in the Author tab, a failure of the file or of a background task opens a
titled dialog, and the edits stay in the editor.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from snapshots.conftest import CONFIGS, make_run
from snapshots.helpers import SIZE, SMALL, analysed, wait_until
from studio.messages import ConfigSaveFailed
from studio.screens.error import ErrorModal
from studio.screens.run import RunScreen

SOLO = '[experts."solo"]\ninstruction = "You work alone."\n'


async def failed(pilot: Any) -> None:
    """Wait for the first run to end with its error shown."""
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, RunScreen))
    screen = pilot.app.screen
    await wait_until(pilot, lambda: screen.finished_runs >= 1 and screen.error is not None)
    screen.refresh_tree()
    await pilot.pause()


class TestRunCannotStart:
    def test_unknown_expert(self, snap_compare, tmp_path: Path) -> None:
        """You should see a run of "sollo", which perstack.toml does not define.

        A red panel above the query box: "✗ Usage error" and 'Expert "sollo" not found in
        perstack.toml. Defined experts: solo. Did you mean "solo"?'; a toast repeats it over
        the right half of the query box. The tree still says "job · waiting for a query" and the
        status bar reads "sollo · claude-sonnet-4-5 · no steps yet · 0 tok · failed".
        """
        (tmp_path / "perstack.toml").write_text(SOLO)
        app = make_run(tmp_path, "sollo", "hello")
        assert snap_compare(app, terminal_size=SIZE, run_before=failed)

    def test_broken_perstack_toml(self, snap_compare, tmp_path: Path) -> None:
        """You should see a run refused because perstack.toml does not parse.

        The red panel, "✗ Configuration error", says "perstack.toml:5: invalid TOML: Invalid
        value at column 15 (strings must be quoted: description = "Writes things.")" and shows
        line 5 with a caret under the value; the toast repeats it. Nothing ran: the status bar
        reads "writer · default model · no steps yet · 0 tok · failed".
        """
        shutil.copy(CONFIGS / "invalid" / "syntax_error.toml", tmp_path / "perstack.toml")
        app = make_run(tmp_path, "writer", "hello")
        assert snap_compare(app, terminal_size=SIZE, run_before=failed)

    def test_unknown_provider(self, snap_compare, tmp_path: Path) -> None:
        """You should see a run refused because the provider name is misspelt ("openia").

        The red panel, "✗ Configuration error", says "Provider 'openia' is unknown. Did you
        mean 'openai'?" and lists the known providers, then how to use any other
        OpenAI-compatible server; its lines are cut at the panel's edge, and the toast over its
        right half repeats the whole message, wrapped. The status bar ends in "gpt-4.1 · no
        steps yet · 0 tok · failed".
        """
        (tmp_path / "perstack.toml").write_text(SOLO)
        app = make_run(tmp_path, "solo", "hello", provider="openia", model="gpt-4.1")
        assert snap_compare(app, terminal_size=SIZE, run_before=failed)

    def test_missing_key_in_a_small_terminal(
        self, snap_compare, tmp_path: Path, monkeypatch
    ) -> None:
        """You should see the missing API key panel in an 80×24 terminal.

        "✗ Missing API key" and its message ("OPENAI_API_KEY is not set. Set it in your
        environment or add OPENAI_API_KEY=... to .env in the workspace.") in the panel above
        the query box; the tree (full width at the top) and the Detail and Streaming panes
        below it shrink to make room. The toast repeating the message covers the right half of
        the panel, the query box and the status bar (whose "failed" is hidden under it).
        """
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        (tmp_path / "perstack.toml").write_text(SOLO)
        app = make_run(tmp_path, "solo", "hello", provider="openai", model="gpt-4.1")
        assert snap_compare(app, terminal_size=SMALL, run_before=failed)


class TestAuthorErrors:
    def test_could_not_save(self, snap_compare, studio_app) -> None:
        """You should see the "Could not save" dialog (red border) over the main screen.

        "perstack.toml was not written; the file on disk is unchanged and your edits are still
        in the editor.", then the error, "[Errno 28] No space left on device:
        'perstack.toml'", and a focused Close button.
        """

        async def save_failed(pilot: Any) -> None:
            await analysed(pilot)
            screen = pilot.app.screen
            error = "[Errno 28] No space left on device: 'perstack.toml'"
            screen.post_message(ConfigSaveFailed(screen.path, error))
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, ErrorModal))
            await pilot.pause()

        assert snap_compare(studio_app("minimal.toml"), terminal_size=SIZE, run_before=save_failed)

    def test_a_background_task_failed(self, snap_compare, studio_app) -> None:
        """You should see "Something went wrong" after a background task of the studio failed.

        "The studio's config-watcher failed. Your edits are safe in the editor.", then the
        exception as "PermissionError: [Errno 13] Permission denied: 'perstack.toml'", and a
        focused Close button; the app keeps running behind the dialog.

        The task runs as a worker of the app here; a failed worker of a screen or widget (the
        config watcher, the analysis, saving, the history) reaches the same dialog, forwarded
        by its node (tests/studio/test_app.py).
        """

        async def watcher_failed(pilot: Any) -> None:
            await analysed(pilot)

            async def watch() -> None:
                raise PermissionError(13, "Permission denied", "perstack.toml")

            pilot.app.run_worker(watch(), name="config-watcher", exit_on_error=False)
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, ErrorModal))
            await pilot.pause()

        assert snap_compare(
            studio_app("minimal.toml"), terminal_size=SIZE, run_before=watcher_failed
        )
