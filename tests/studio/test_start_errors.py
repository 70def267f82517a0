"""`perstack start EXPERT QUERY` on a terminal: a mistyped expert is a usage error at once.

It is reported on the terminal before the full-screen view opens (it used to open a job view and
show the error seconds later)."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio import start


def test_a_mistyped_expert_is_refused_before_the_tui(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "perstack.toml").write_text('[experts."coordinator"]\ninstruction = "x"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(start, "_use_tui", lambda args: True)

    def no_app(**kwargs: object) -> None:
        raise AssertionError("the full-screen view was opened")

    monkeypatch.setattr("studio.run_app.make_run_app", no_app)
    assert start.main(["cordinator", "x"]) == 2
    err = capsys.readouterr().err
    assert 'Expert "cordinator" not found' in err and 'Did you mean "coordinator"?' in err


async def test_the_status_bar_names_the_file_s_model_before_the_run(tmp_path: Path) -> None:
    """It said "default model" until the first run reported one, although the file set it."""
    from runtime.testing import ScriptedModel
    from studio.run_controller import RunOptions
    from studio.run_view import planned_model

    (tmp_path / "perstack.toml").write_text(
        'model = "gpt-4.1-mini"\n[experts."solo"]\ninstruction = "x"\n'
    )
    options = RunOptions(workspace=tmp_path, expert_key="solo", language_model=ScriptedModel([]))
    assert planned_model(options) == "gpt-4.1-mini"
    assert planned_model(RunOptions(workspace=tmp_path, expert_key="solo", model="o3")) == "o3"
    (tmp_path / "perstack.toml").write_text('[experts."solo"]\ninstruction = "x"\n')
    assert planned_model(options) == "claude-sonnet-4-5"  # the runtime's default, by name


def test_the_plain_start_does_not_load_the_ui_toolkit() -> None:
    """`perstack start --no-tui` (and the settings it reads) must not pay for textual."""
    import subprocess
    import sys

    probe = "import sys, studio.start, studio.settings; print('textual' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"
