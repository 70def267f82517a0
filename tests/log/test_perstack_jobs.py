"""Jobs written by the real Perstack CLI (tests/fixtures/perstack-jobs, copied unedited) read here.

Perstack writes no job.json and stores one JSON file per event
(``runs/<runId>/event-<epochMs>-<step>-<type>.json``); the jobs API, ``perstack log`` and the
studio's replay read that layout as they read ours.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from runtime.jobs import Jobs
from runtime.log import main as log_main
from studio.view_model import JobTree
from tests.fakellm import FakeLLM, reply_text

FIXTURES = Path(__file__).parents[1] / "fixtures" / "perstack-jobs"


@pytest.fixture
def workspace(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    shutil.copytree(FIXTURES / str(request.param), tmp_path / "ws")
    return tmp_path / "ws"


def log(workspace: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.chdir(workspace)
    out, err = io.StringIO(), io.StringIO()
    code = log_main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("workspace", ["interactive"], indirect=True)
def test_perstack_log_shows_a_perstack_job(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = log(workspace, monkeypatch)
    assert code == 0, err
    assert "Job: r9yazilris0ks7i4zpdy1qe2 (completed)" in out
    assert "Expert: asker" in out
    assert "Steps: 3" in out
    assert "asker  completed  steps 1-3  390 tokens" in out
    assert "[Step 1] callInteractiveTool" in out and "[Step 3] completeRun" in out
    code, out, err = log(workspace, monkeypatch, "--json", "--take", "0")
    assert code == 0, err
    document = json.loads(out)
    assert document["job"]["coordinatorExpertKey"] == "asker"
    assert document["summary"]["totalEvents"] == 15
    assert [run["status"] for run in document["runs"]] == [
        "stoppedByInteractiveTool",
        "completed",
    ]


@pytest.mark.parametrize("workspace", ["parallel-delegates"], indirect=True)
def test_the_jobs_api_reads_a_perstack_team_job(workspace: Path) -> None:
    jobs = Jobs.for_workspace(workspace)
    (job,) = jobs.list_jobs()
    assert (job.expert_key, job.status, job.total_tokens) == ("coordinator", "completed", 1450)
    assert job.started_at == min(
        int(path.name.split("-")[1]) for path in workspace.glob("perstack/jobs/*/runs/*/*.json")
    )
    (root,) = jobs.tree(job.id)
    assert root.expert_key == "coordinator" and root.status == "completed"
    assert sorted(child.expert_key for child in root.children) == sorted(
        f"helper{n}" for n in range(10)
    )
    checkpoints = jobs.checkpoints(job.id)
    assert checkpoints[0].expert_key == "coordinator"
    assert checkpoints[-1].status == "completed" and checkpoints[-1].expert_key == "coordinator"
    assert all(c.stored_at is not None for c in checkpoints)
    assert [c.stored_at for c in checkpoints] == sorted(c.stored_at or 0 for c in checkpoints)
    # The studio's tree, replayed from the stored events, agrees.
    tree = JobTree()
    for event in jobs.events(job.id, messages=False):
        tree.apply(event)
    walked = [(depth, node.expert_key) for depth, node in tree.walk()]
    assert walked[0] == (0, "coordinator")
    assert sorted(key for depth, key in walked if depth == 1) == sorted(
        f"helper{n}" for n in range(10)
    )


@pytest.mark.parametrize("workspace", ["interactive"], indirect=True)
def test_a_perstack_job_continues_here_with_an_answer(workspace: Path, fake_llm: FakeLLM) -> None:
    """Resume Perstack's interactive stop with an answer: the job completes, in our layout
    beside Perstack's files, which stay as they were."""
    import hashlib
    import subprocess
    import sys

    jobs = Jobs.for_workspace(workspace)
    (job,) = jobs.list_jobs()
    waiting = next(c for c in jobs.checkpoints(job.id) if c.status == "stoppedByInteractiveTool")
    before = {
        path: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in jobs.job_dir(job.id).rglob("*")
        if path.is_file()
    }
    fake_llm.script(reply_text("Blue it is."))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "studio",
            "run",
            "asker",
            "blue",
            "--continue-job",
            job.id,
            "--resume-from",
            waiting.id,
            "-i",
            "--provider",
            "openai",
            "--model",
            "gpt-4.1",
        ],
        cwd=workspace,
        env=fake_llm.process_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in before} == before
    after = jobs.get(job.id)
    assert (after.status, after.expert_key) == ("completed", "asker")
    runs = jobs.runs(job.id)
    assert len(runs) == 3 and runs[-1].status == "completed"
    assert (jobs.job_dir(job.id) / "runs" / runs[-1].run_id / "events.jsonl").is_file()
    # The answer went to the pending askUser call.
    sent = json.dumps(fake_llm.requests[-1])
    assert "blue" in sent and "askUser" in sent
