"""Snapshots of the Evals view, and of a job with a branch and of a fork in the run view."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import runtime.schema.events as events_module
from runtime import RunSetting, parse_config, run
from runtime.evals import CaseResult, CheckResult, EvalRun, store_eval_run
from runtime.jobs import Jobs
from runtime.testing import ScriptedModel, call, reply
from snapshots.helpers import SIZE, SMALL, wait_until
from snapshots.test_diff_screen import STARTED, _Clock
from studio.screens.evals import EvalsScreen
from studio.screens.history import stored_events
from studio.screens.run import RunScreen
from tests.evals.helpers import EVALS, TEAM

CHECKS = {
    "hello": ["hello.txt exists", "hello.txt contains 'hello world'", "result contains 'wrote'"],
    "seeded": ["`test -f copy.txt` exits 0", "judged by judge"],
    "wrong text": ["bye.txt contains 'farewell'"],
}


def _case(name: str, outcome: list[bool], steps: int, tokens: int, ms: int) -> CaseResult:
    checks = [
        CheckResult(
            type="fileExists",
            label=label,
            passed=passed,
            detail="" if passed else label.replace(" contains ", " has no "),
        )
        for label, passed in zip(CHECKS[name], outcome, strict=True)
    ]
    return CaseResult(
        name=name,
        expert="writer",
        passed=all(outcome),
        status="completed",
        job_id=f"job-{name.replace(' ', '-')}-{steps}",
        checks=checks,
        steps=steps,
        usage={"inputTokens": tokens - 20, "outputTokens": 20, "totalTokens": tokens},  # type: ignore[arg-type]
        duration_ms=ms,
    )


def eval_folder(folder: Path) -> Path:
    """evals.toml and two stored runs of it (the second regressed one case and fixed one) in
    ``folder``, where the studio opens; returns the team's perstack.toml for it to copy there."""
    source = folder / "source" / "perstack.toml"
    source.parent.mkdir(parents=True)
    source.write_text(TEAM)
    (folder / "evals.toml").write_text(EVALS)
    root = folder / "perstack"
    store_eval_run(
        root,
        EvalRun(
            id="run-monday",
            name="writer-evals",
            eval_file=str(folder / "evals.toml"),
            started_at=STARTED,
            duration_ms=2_400,
            cases=[
                _case("hello", [True, True, True], 2, 120, 800),
                _case("seeded", [True, True], 3, 260, 1_500),
                _case("wrong text", [False], 2, 110, 700),
            ],
        ),
    )
    store_eval_run(
        root,
        EvalRun(
            id="run-tuesday",
            name="writer-evals",
            eval_file=str(folder / "evals.toml"),
            started_at=STARTED + 86_400_000,
            duration_ms=2_100,
            cases=[
                _case("hello", [True, False, True], 2, 125, 750),
                _case("seeded", [True, True], 3, 250, 1_300),
                _case("wrong text", [True], 2, 105, 600),
            ],
        ),
    )
    return source


async def evals_open(pilot: Any) -> None:
    await pilot.press("f7")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, EvalsScreen))
    await pilot.pause()


class TestEvalsView:
    def test_scores_beside_the_previous_run(self, snap_compare, studio_app, tmp_path) -> None:
        """You should see the Evals view (F7) of writer-evals after two stored runs.

        Title "Evals · writer-evals (evals.toml, 3 cases)"; the summary "2/3 cases passed · run
        of 2025-01-03 10:00:00, 2.1 s · compared with the run of 2025-01-02 10:00:00 (2/3;
        [ older, ] newer)". The grid (Case, Result, Checks, Before, Steps, Tokens, Cost, Time):
        hello FAIL ✓✗✓ with "PASS ▼ regressed" in red; seeded PASS ✓✓ beside a dim PASS;
        wrong text PASS ✓ with "FAIL ▲ fixed" in green. Below, the highlighted case's line:
        "hello: completed, job job-hello-2 (Enter opens it)" and its failed check. The footer:
        r Run, [ Older, ] Newer, esc Back.
        """
        config = eval_folder(tmp_path)
        assert snap_compare(studio_app(config), terminal_size=SIZE, run_before=evals_open)

    def test_in_a_small_terminal(self, snap_compare, studio_app, tmp_path) -> None:
        """You should see the same Evals view in an 80×24 terminal.

        The summary wraps over two lines; the grid keeps its eight columns (scrolling
        sideways past Cost); the highlighted case's failed check shows under it.
        """
        config = eval_folder(tmp_path)
        assert snap_compare(studio_app(config), terminal_size=SMALL, run_before=evals_open)

    def test_no_eval_set_yet(self, snap_compare, studio_app) -> None:
        """You should see the Evals view of a folder without an eval set.

        Title "Evals · no eval set", and the text that says what an eval set is (a TOML file of
        cases and checks), that create-expert writes one as evals.toml, and to press r or run
        perstack eval evals.toml. No grid.
        """
        assert snap_compare(studio_app("minimal.toml"), terminal_size=SIZE, run_before=evals_open)


SOLO = '[experts."solo"]\ninstruction = "Read the notes, one file a step."\n'


def _reads(*names: str) -> list[Any]:
    return [call("readTextFile", path=name) for name in names]


def branched_job(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """job "branchy": four reads and a result; then resumed from step 2 with another query."""
    (workspace / "perstack.toml").write_text(SOLO)
    config = parse_config(SOLO, path=workspace / "perstack.toml")
    with monkeypatch.context() as patch:
        patch.setattr(events_module, "time", _Clock())
        first = RunSetting(expert_key="solo", query="Read a to d.", workspace=workspace)
        script = [*_reads("a.md", "b.md", "c.md", "d.md"), call("attemptCompletion")]
        done = asyncio.run(
            run(
                first.model_copy(update={"job_id": "branchy"}),
                model=ScriptedModel([*script, reply("Read all four.")]),
                config=config,
            )
        )
        early = next(
            c for c in Jobs(workspace / "perstack").checkpoints(done.job_id) if c.step_number == 2
        )
        again = RunSetting(
            expert_key="solo",
            query="Only the first two, please.",
            workspace=workspace,
            continue_job="branchy",
            resume_from=early.id,
        )
        asyncio.run(
            run(
                again,
                model=ScriptedModel([call("attemptCompletion"), reply("Read a and b.")]),
                config=config,
            )
        )
        fork = RunSetting(
            expert_key="solo",
            query="Now read e.md too.",
            workspace=workspace,
            job_id="forked",
            fork_from=early.id,
        )
        asyncio.run(
            run(
                fork,
                model=ScriptedModel([*_reads("e.md"), call("attemptCompletion"), reply("Read e.")]),
                config=config,
            )
        )
    return "branchy"


def _showing(job_id: str) -> Any:
    async def show(pilot: Any) -> None:
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, RunScreen))
        screen = pilot.app.screen
        screen.load_job(job_id, stored_events(screen.options.workspace, job_id))
        await pilot.pause()
        screen.refresh_tree()
        await pilot.pause()

    return show


class TestBranches:
    def test_a_job_with_a_branch(self, snap_compare, tmp_path, monkeypatch) -> None:
        """You should see job branchy: a run, and a branch from its step 2 beside it.

        The tree: "job branchy" with two solo lines. The first, done, with steps 1 to 6 (four
        readTextFile calls, a.md to d.md, then attemptCompletion). The second, marked
        "↱ branch from step 2", with its own steps 3 and 4 (attemptCompletion): the old line
        keeps its later steps. The detail pane shows the job and both queries.
        """
        from snapshots.conftest import make_run

        workspace = tmp_path / "ws"
        workspace.mkdir()
        job = branched_job(workspace, monkeypatch)
        app = make_run(workspace, "solo", None, ScriptedModel([]))
        assert snap_compare(app, terminal_size=SIZE, run_before=_showing(job))

    def test_a_fork_of_it(self, snap_compare, tmp_path, monkeypatch) -> None:
        """You should see job forked: made from branchy's step 2 with another query.

        The tree: "job forked" with its solo run going on from step 3 (a readTextFile of e.md,
        then attemptCompletion) to its result "Read e.", done; the job's steps and tokens count
        from the fork point on.
        """
        from snapshots.conftest import make_run

        workspace = tmp_path / "ws"
        workspace.mkdir()
        branched_job(workspace, monkeypatch)
        record = json.loads((workspace / "perstack" / "jobs" / "forked" / "job.json").read_text())
        assert record["origin"]["jobId"] == "branchy"
        app = make_run(workspace, "solo", None, ScriptedModel([]))
        assert snap_compare(app, terminal_size=SIZE, run_before=_showing("forked"))
