"""``perstack export JOB --format perstack DIR``: a job in Perstack's layout, read back here."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from runtime import RunSetting, parse_config, run
from runtime.export import main as export_main
from runtime.jobs import Jobs
from studio.demo import DEMO_CONFIG, DEMO_EXPERT, DEMO_QUERY, demo_model

FIXTURE_EVENT = Path(__file__).parent / "fixtures" / "perstack-jobs" / "interactive"
EVENT_FILE = re.compile(r"event-\d+-\d+-[A-Za-z]+\.json")


async def demo_job(workspace: Path) -> str:
    config = parse_config(DEMO_CONFIG.read_text(), path=workspace / "perstack.toml")
    setting = RunSetting(expert_key=DEMO_EXPERT, query=DEMO_QUERY, workspace=workspace)
    checkpoint = await run(setting, lambda _: None, model=demo_model(), config=config)
    return checkpoint.job_id


def export(workspace: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = export_main(list(args), stdout=out, stderr=err, workspace=workspace)
    return code, out.getvalue(), err.getvalue()


async def test_an_exported_job_is_perstack_s_layout_and_reads_the_same(tmp_path: Path) -> None:
    job_id = await demo_job(tmp_path)
    ours = Jobs.for_workspace(tmp_path)
    code, out, err = export(tmp_path, job_id, str(tmp_path / "exported"), "--format", "perstack")
    assert code == 0, err
    assert err == ""
    job_dir = tmp_path / "exported" / "jobs" / job_id
    assert out.startswith(f"Exported job {job_id}: ") and str(job_dir) in out
    files = list((job_dir / "runs").glob("*/*.json"))
    events = [path for path in files if path.name != "run-setting.json"]
    assert events and all(EVENT_FILE.fullmatch(path.name) for path in events)
    assert not list(job_dir.rglob("*.jsonl"))
    # The conversation is inline, as Perstack stores it (ours refers to checkpoint files).
    generation = next(path for path in events if path.name.endswith("-startGeneration.json"))
    assert json.loads(generation.read_text())["messages"]
    assert "messagesRef" not in "".join(path.read_text() for path in events)
    # Each event file has the top-level keys Perstack's own files have.
    perstack_keys = set(
        json.loads(next(FIXTURE_EVENT.glob("perstack/jobs/*/runs/*/*-startRun.json")).read_text())
    )
    started = json.loads(next(p for p in events if p.name.endswith("-startRun.json")).read_text())
    assert perstack_keys <= set(started)
    # Read back through the jobs API: the same job, tree and events.
    theirs = Jobs(tmp_path / "exported")
    assert theirs.get(job_id).status == ours.get(job_id).status == "completed"
    assert [n.to_dict() for n in theirs.tree(job_id)] == [n.to_dict() for n in ours.tree(job_id)]
    stepped = [e for e in ours.events(job_id) if getattr(e, "step_number", None) is not None]
    # (Events of one millisecond may come in another order: the layout keeps no line order.)
    assert sorted(e.to_json() for e in theirs.events(job_id)) == sorted(
        e.to_json() for e in stepped
    )
    assert [c.id for c in theirs.checkpoints(job_id)] == [c.id for c in ours.checkpoints(job_id)]


async def test_events_that_would_share_a_file_name_are_named(tmp_path: Path) -> None:
    job_id = await demo_job(tmp_path)
    jobs = Jobs.for_workspace(tmp_path)
    # A run with a continueToNextStep (not every run has one; glob order is arbitrary).
    marker = '"type":"continueToNextStep"'
    runs = sorted(jobs.job_dir(job_id).glob("runs/*/events.jsonl"))
    events_file = next(path for path in runs if marker in path.read_text())
    lines = events_file.read_text().splitlines()
    twin = json.loads(next(line for line in lines if marker in line))
    twin["id"] = "the-twin"
    events_file.write_text("\n".join([*lines, json.dumps(twin)]) + "\n")
    code, out, err = export(tmp_path, job_id, str(tmp_path / "exported"))
    assert code == 0
    assert "event the-twin (continueToNextStep) not written" in err
    assert f"-{twin['stepNumber']}-continueToNextStep.json" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "out"], "Job 'nope' not found"),
        (["JOB", "out", "--format", "langgraph"], None),
    ],
)
async def test_bad_input_is_a_clear_error(
    tmp_path: Path, args: list[str], message: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = await demo_job(tmp_path)
    args = [job_id if arg == "JOB" else arg for arg in args]
    code, _, err = export(tmp_path, *args)
    assert code == 2
    if message is not None:
        assert message in err
    else:
        assert "invalid choice" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


async def test_an_existing_export_is_never_overwritten(tmp_path: Path) -> None:
    job_id = await demo_job(tmp_path)
    assert export(tmp_path, job_id, str(tmp_path / "out"))[0] == 0
    code, _, err = export(tmp_path, job_id, str(tmp_path / "out"))
    assert code == 2 and "already exists" in err
