"""The jobs API on real stored jobs: order by the jobs' own times, trees, checkpoints, follow."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
from pathlib import Path

import pytest

from runtime import RunSetting, StorageError, parse_config, run, tool_result_failed
from runtime.jobs import Jobs
from runtime.log.cli import main as log_main
from runtime.schema.events import PerstackEvent
from runtime.testing import ScriptedModel, call, reply
from studio.demo import DEMO_CONFIG, DEMO_EXPERT, DEMO_QUERY, demo_model
from studio.view_model import JobTree

SOLO = '[experts."solo"]\ninstruction = "Work alone."\n'
FUTURE = 4_000_000_000  # 2096: a copy or a backup tool touching the folders


async def solo_job(workspace: Path, query: str, *replies: object) -> str:
    config = parse_config(SOLO, path=workspace / "perstack.toml")
    model = ScriptedModel(list(replies) or [reply("done")])  # type: ignore[arg-type]
    setting = RunSetting(expert_key="solo", query=query, workspace=workspace)
    checkpoint = await run(setting, lambda _: None, model=model, config=config)
    return checkpoint.job_id


async def demo_job(workspace: Path) -> str:
    config = parse_config(DEMO_CONFIG.read_text(), path=workspace / "perstack.toml")
    setting = RunSetting(expert_key=DEMO_EXPERT, query=DEMO_QUERY, workspace=workspace)
    checkpoint = await run(setting, lambda _: None, model=demo_model(), config=config)
    return checkpoint.job_id


def touch_tree(folder: Path, when: float) -> None:
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (when, when))


async def test_jobs_are_listed_newest_first_by_their_own_start_not_file_times(
    tmp_path: Path,
) -> None:
    older = await solo_job(tmp_path, "first")
    newer = await solo_job(tmp_path, "second")
    jobs = Jobs.for_workspace(tmp_path)
    touch_tree(jobs.job_dir(older), FUTURE)  # the older job's files now look newest
    listed = jobs.list_jobs()
    assert [job.id for job in listed] == [newer, older]
    assert jobs.ids() == [newer, older]
    assert listed[0].started_at >= listed[1].started_at > 0
    assert [job.expert_key for job in listed] == ["solo", "solo"]
    assert all(job.status == "completed" and job.total_steps >= 1 for job in listed)


async def test_a_job_without_job_json_is_dated_and_described_by_its_events(
    tmp_path: Path,
) -> None:
    older = await solo_job(tmp_path, "first")
    newer = await solo_job(tmp_path, "second")
    jobs = Jobs.for_workspace(tmp_path)
    stored = json.loads((jobs.job_dir(older) / "job.json").read_text())
    (jobs.job_dir(older) / "job.json").unlink()  # as Perstack writes jobs: no job.json
    touch_tree(jobs.job_dir(older), FUTURE)
    assert jobs.ids() == [newer, older]
    summary = jobs.get(older)
    assert (summary.expert_key, summary.status) == ("solo", "completed")
    assert summary.started_at <= stored["startedAt"] + 1000
    assert summary.total_tokens == stored["usage"]["totalTokens"]


async def test_checkpoints_come_in_the_order_they_were_stored(tmp_path: Path) -> None:
    job_id = await demo_job(tmp_path)
    jobs = Jobs.for_workspace(tmp_path)
    # Reverse the files' times: the order must not come from them.
    files = sorted((jobs.job_dir(job_id) / "checkpoints").glob("*.json"))
    for index, path in enumerate(files):
        os.utime(path, (FUTURE - index, FUTURE - index))
    checkpoints = jobs.checkpoints(job_id)
    carried: dict[str, int] = {}
    for event in jobs.events(job_id, messages=False):
        if event.type in ("continueToNextStep", "completeRun", "stopRunByDelegate"):
            carried.setdefault(event.checkpoint.id, event.timestamp)
    # Each checkpoint is dated by the event that carried it, and they come in that order. Two
    # parallel delegates may store theirs in the same millisecond: no order exists between them.
    assert {c.id: c.stored_at for c in checkpoints} == carried
    stored = [c.stored_at or 0 for c in checkpoints]
    assert stored == sorted(stored)
    delegated = {c.expert_key for c in checkpoints if c.delegated}
    assert delegated == {"@demo/level-designer", "@demo/programmer"}
    assert {c.delegated_by for c in checkpoints if c.delegated} == {DEMO_EXPERT}
    last = jobs.checkpoint(job_id, checkpoints[-1].id)
    assert last.status == "completed" and last.messages


async def test_tree_and_runs_match_perstack_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    job_id = await demo_job(tmp_path)
    jobs = Jobs.for_workspace(tmp_path)
    (root,) = jobs.tree(job_id)
    assert root.expert_key == DEMO_EXPERT
    assert [child.expert_key for child in root.children] == [
        "@demo/level-designer",
        "@demo/programmer",
    ]
    out, err = io.StringIO(), io.StringIO()
    code = log_main(["--job", job_id, "--json"], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    shown = json.loads(out.getvalue())
    assert shown["delegationTree"] == [root.to_dict()]
    assert [run["runId"] for run in shown["runs"]] == [r.run_id for r in jobs.runs(job_id)]
    assert root.total_usage["totalTokens"] == jobs.get(job_id).total_tokens


async def test_follow_gives_a_live_job_s_events_as_they_come_and_ends_with_it(
    tmp_path: Path,
) -> None:
    config = parse_config(SOLO, path=tmp_path / "perstack.toml")
    (tmp_path / "notes.txt").write_text("hello")
    slow = [
        dataclasses.replace(call("readTextFile", path="notes.txt"), delay=0.3),
        dataclasses.replace(reply("done"), delay=0.3),
    ]
    setting = RunSetting(expert_key="solo", query="read it", workspace=tmp_path, job_id="live")
    emitted: list[str] = []
    started = asyncio.Event()

    def listen(event: PerstackEvent) -> None:
        emitted.append(event.type)
        if event.type == "startRun":
            started.set()

    running = asyncio.create_task(run(setting, listen, model=ScriptedModel(slow), config=config))
    await asyncio.wait_for(started.wait(), timeout=60)
    jobs = Jobs.for_workspace(tmp_path)
    assert jobs.is_live("live")
    followed = [event async for event in jobs.follow("live", interval=0.02)]
    await running
    stored = [event.type for event in jobs.events("live")]
    assert [event.type for event in followed] == stored
    assert "completeRun" in stored
    assert set(stored) <= set(emitted)
    # Following a finished job gives its events and stops at once.
    assert [event.type async for event in jobs.follow("live")] == stored


async def test_an_unknown_or_unsafe_job_id_is_a_clear_error(tmp_path: Path) -> None:
    await solo_job(tmp_path, "first")
    jobs = Jobs.for_workspace(tmp_path)
    for wanted in ("nope", "../jobs", ".."):
        with pytest.raises(StorageError, match="not found"):
            jobs.get(wanted)


@pytest.mark.parametrize(
    ("text", "is_error", "failed"),
    [
        ('{"error":"FileNotFound","message":"no such file"}', None, True),
        ("Error calling tool readTextFile: invalid params", None, True),
        ("error: exit code 2", None, True),
        ("ERRORS: 3 found", None, True),
        ('{"content":"x","note":"the word \\"error\\" in a value"}', None, False),
        ('{"error": 3}', None, False),
        ("An error occurred in the build log, but the file was saved", None, False),
        ("fine", True, True),
        ('{"path":"a.txt",' + '"x":"' + "y" * 5000 + '","error":"Late"}', None, True),
    ],
)
def test_one_rule_for_a_failed_tool_result(text: str, is_error: bool | None, failed: bool) -> None:
    assert tool_result_failed(text, is_error=is_error) is failed


async def test_perstack_log_and_the_studio_tree_agree_on_failed_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing file (the base skill's in-band error) and a good read: ✗ and ✓ in both views."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "there.txt").write_text("Errors: none, all good")
    job_id = await solo_job(
        tmp_path,
        "read",
        call("readTextFile", path="missing.txt"),
        call("readTextFile", path="there.txt"),
        reply("done"),
    )
    jobs = Jobs.for_workspace(tmp_path)
    tree = JobTree()
    for event in jobs.events(job_id, messages=False):
        tree.apply(event)
    studio = [
        call.status == "failed"
        for _, node in tree.walk()
        for step in node.steps
        for call in step.calls
    ]
    out, err = io.StringIO(), io.StringIO()
    assert log_main(["--job", job_id, "--tools"], stdout=out, stderr=err) == 0
    marks = [line.strip()[0] for line in out.getvalue().splitlines() if "readTextFile:" in line]
    assert [mark == "✗" for mark in marks] == studio == [True, False]


def test_the_studio_reads_job_files_only_through_the_jobs_api() -> None:
    studio = Path(__file__).parents[2] / "studio"
    readers = [
        path.relative_to(studio.parent)
        for path in studio.rglob("*.py")
        if any(
            needle in path.read_text()
            for needle in ('"job.json"', '"checkpoints"', "events.jsonl", "read_job_events")
        )
    ]
    assert readers == []


def test_steps_are_counted_once_per_step_number() -> None:
    """The one count (issue 16, bug 4): parallel delegates share their step numbers."""
    from runtime.jobs import StepNumbers, count_steps

    coordinator, designer, programmer = StepNumbers([1, 4, 5]), StepNumbers(), [3, 2]
    for step in (3, 2):  # in any order
        designer.add(step)
    assert list(designer) == [2, 3] and designer.ranges == [(2, 3)] and 3 in designer
    assert count_steps(coordinator, designer, programmer) == 5
    assert count_steps(coordinator) + count_steps(designer) + count_steps(programmer) == 7
    long = StepNumbers(range(1, 10_001))
    assert long.ranges == [(1, 10_000)] and count_steps(long, [10_000, 10_001]) == 10_001


async def test_the_tree_of_a_parallel_job_counts_its_steps_as_the_job_does(
    tmp_path: Path,
) -> None:
    job_id = await demo_job(tmp_path)
    jobs = Jobs.for_workspace(tmp_path)
    (root,) = jobs.tree(job_id)
    shown = root.to_dict()
    # The keys that were there keep their meaning; the rule's are added.
    assert (shown["steps"], shown["stepRanges"]) == (3, [[1, 1], [4, 5]])
    assert [child["stepRanges"] for child in shown["children"]] == [[[2, 3]], [[2, 3]]]
    assert (shown["totalSteps"], shown["branchOf"], shown["forkStep"]) == (5, None, None)
    stored = json.loads((jobs.job_dir(job_id) / "job.json").read_text())
    assert jobs.get(job_id).total_steps == root.total_steps == stored["totalSteps"]
