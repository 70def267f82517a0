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
