"""The run screen's plain parts: the view of the job and the check of saved definitions."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.definitions import SavedDefinitions, file_stamp
from studio.run_view import RunView, args_preview, duration_text, short
from studio.view_model import JobTree, RunNode


def test_the_phase_follows_the_model_s_first_output() -> None:
    view = RunView("solo", model_label="gpt-4.1")
    assert view.phase_after("startGeneration") is None  # no run in flight
    view.phase = "starting"
    assert view.phase_text() == "starting…"
    assert view.phase_after("startRun") == "starting"
    assert view.phase_after("startGeneration") == "connecting"
    view.phase, view.provider = "connecting", "openai"
    assert view.phase_text() == "connecting to openai…"
    assert view.phase_after("streamRunResult") is None
    assert view.phase_after("stopRunByError") is None


def test_the_status_line_before_any_run() -> None:
    view = RunView("solo", model_label="demo-scripted", demo=True)
    parts = view.status_parts(running=False, waiting=False, failed=False)
    assert parts == ["solo", "demo-scripted", "demo model", "no steps yet", "0 tok", "idle"]
    assert view.status_parts(running=False, waiting=True, failed=False)[-1] == "waiting for input"
    assert view.status_parts(running=False, waiting=False, failed=True)[-1] == "failed"


def test_short_texts() -> None:
    assert short("a  b\nc", 10) == "a b c"
    assert short("abcdefghij", 5) == "abcd…"
    assert args_preview({"path": "x.txt"}) == 'path="x.txt"'
    assert duration_text(0, 999) == "<1 s" and duration_text(0, 1500) == "1.5 s"
    assert duration_text(None, 10) == "—"


def test_definitions_are_checked_when_due(tmp_path: Path) -> None:
    definitions = SavedDefinitions("solo", None, tmp_path)
    job = JobTree()
    assert definitions.due(job)
    assert definitions.mark_stale(job) == []  # no file loaded: nothing to compare with
    assert not definitions.due(job)
    job.runs["x"] = RunNode("x", "solo", ["run-1"], None, None)  # a run appeared
    assert definitions.due(job)


def test_file_stamps(tmp_path: Path) -> None:
    path = tmp_path / "perstack.toml"
    assert file_stamp(None) is None and file_stamp(path) is None
    path.write_text("x")
    stamp = file_stamp(path)
    assert stamp is not None and stamp[0] == path and stamp[2] == 1


def test_the_demo_is_paced_for_watching_unless_told_not_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every scripted answer of the studio's demo waits (0.8 s by default) so a newcomer sees
    the tree grow; PERSTACK_DEMO_PACE changes it (the tests set 0)."""
    from studio.demo import demo_pace, demo_script

    monkeypatch.delenv("PERSTACK_DEMO_PACE")
    assert demo_pace() == 0.8
    monkeypatch.setenv("PERSTACK_DEMO_PACE", "0.25")
    assert demo_pace() == 0.25
    monkeypatch.setenv("PERSTACK_DEMO_PACE", "fast")
    assert demo_pace() == 0.8
    delays = {answer.delay for answers in demo_script(0.25).values() for answer in answers}
    assert delays == {0.25}
