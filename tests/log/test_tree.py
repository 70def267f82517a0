"""The delegation tree: real delegation runs and hand-built streams (parallel, nested, failing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.log.conftest import JobBuilder, RealJobs, log


def tree_block(text: str) -> list[str]:
    block = text.split("Delegation tree:\n", 1)[1].split("\n\n", 1)[0]
    return block.splitlines()


def node_summary(node: dict[str, Any]) -> Any:
    return (
        node["expertKey"],
        node["status"],
        node["usage"]["totalTokens"],
        [node_summary(child) for child in node["children"]],
    )


def test_real_delegation_chain(real_jobs: RealJobs) -> None:
    result = log(real_jobs.root, "--job", real_jobs.delegation)
    lines = tree_block(result.out)
    assert lines[0].startswith(
        "  lead  completed  steps 1, 6-7  30 tokens  (with delegates: 7 steps, 75 tokens)  runs "
    )
    assert lines[1].startswith(
        "  └── @team/coder  completed  steps 2, 4-5  30 tokens  (with delegates: 4 steps, "
        "45 tokens)  runs "
    )
    assert lines[2].startswith("      └── @team/tester  completed  step 3  15 tokens  run ")
    assert "unknown" not in result.out
    assert '  Delegate to: @team/coder "build it"' in result.out
    assert '  Delegate to: @team/tester "test it"' in result.out
    assert "  Waiting for: @team/coder" in result.out
    data = log(real_jobs.root, "--job", real_jobs.delegation, "--json").json()
    (root,) = data["delegationTree"]
    assert node_summary(root) == (
        "lead",
        "completed",
        30,
        [("@team/coder", "completed", 30, [("@team/tester", "completed", 15, [])])],
    )
    # The subtree total equals the job's usage.
    assert root["totalUsage"]["totalTokens"] == data["job"]["usage"]["totalTokens"] == 75
    assert len(root["runIds"]) == 2
    coder = root["children"][0]
    assert coder["delegatedBy"]["expertKey"] == "lead"
    assert coder["delegatedBy"]["runId"] == root["runIds"][0]
    assert coder["query"] == "build it"
    assert coder["stepRanges"] == [[2, 2], [4, 5]]


def test_real_parallel_delegation(real_jobs: RealJobs) -> None:
    data = log(real_jobs.root, "--job", real_jobs.parallel, "--json").json()
    (root,) = data["delegationTree"]
    assert node_summary(root) == (
        "lead",
        "completed",
        30,
        [("@team/designer", "completed", 15, []), ("@team/coder", "completed", 15, [])],
    )
    runs = {run["runId"]: run for run in data["runs"]}
    children = [run for run in runs.values() if run["parentRunId"] == root["runIds"][0]]
    assert sorted(run["expertKey"] for run in children) == ["@team/coder", "@team/designer"]
    text = log(real_jobs.root, "--job", real_jobs.parallel).out
    lines = tree_block(text)
    assert lines[1].startswith("  ├── @team/designer  completed  step 2  15 tokens  run ")
    assert lines[2].startswith("  └── @team/coder  completed  step 2  15 tokens  run ")


def test_events_name_their_expert_when_the_job_has_several(real_jobs: RealJobs) -> None:
    text = log(real_jobs.root, "--job", real_jobs.delegation, "--type", "completeRun").out
    ends = [line.rsplit("  ", 1)[-1] for line in text.splitlines() if "] completeRun" in line]
    assert ends == ["@team/tester", "@team/coder", "lead"]


def build_parallel_team(root: Path) -> JobBuilder:
    """lead → two coders in parallel, each → a tester; tester A fails; coder A resumes first."""
    b = JobBuilder(root)
    lead = b.start("run-lead-1", "lead", "build the game")
    lead.tools("readTextFile", results={"readTextFile": "Error: no such file"})
    (call_a, stop_a), (call_b, stop_b) = lead.delegate(
        ("@team/coder", "part A"), ("@team/coder", "part B")
    )
    coder_a = b.start("run-coder-a", "@team/coder", "part A", delegated_by=(lead, call_a, stop_a))
    coder_b = b.start("run-coder-b", "@team/coder", "part B", delegated_by=(lead, call_b, stop_b))
    (test_a,) = coder_a.delegate(("@team/tester", "test A"))
    (test_b,) = coder_b.delegate(("@team/tester", "test B"))
    tester_b = b.start("run-tester-b", "@team/tester", "test B", delegated_by=(coder_b, *test_b))
    tester_b.complete("B green")
    tester_a = b.start("run-tester-a", "@team/tester", "test A", delegated_by=(coder_a, *test_a))
    tester_a.error("AuthenticationError", "bad key")
    # Coder A resumes first although coder B started last: the calls each resumed segment brings
    # results for (its checkpoint's delegateTo) tell which coder it continues.
    b.start("run-coder-a2", "@team/coder", resume=coder_a).complete("A done")
    b.start("run-coder-b2", "@team/coder", resume=coder_b).complete("B done")
    b.start("run-lead-2", "lead", resume=lead).complete("game built")
    b.store_job("completed", "lead")
    return b


def test_parallel_same_expert_segments_are_linked_by_the_calls_they_answer(tmp_path: Path) -> None:
    b = build_parallel_team(tmp_path / "perstack")
    data = log(b.root, "--json").json()
    (root,) = data["delegationTree"]
    assert root["runIds"] == ["run-lead-1", "run-lead-2"]
    coders = root["children"]
    assert [c["runIds"] for c in coders] == [
        ["run-coder-a", "run-coder-a2"],
        ["run-coder-b", "run-coder-b2"],
    ]
    assert [c["children"][0]["runIds"] for c in coders] == [["run-tester-a"], ["run-tester-b"]]
    assert coders[0]["children"][0]["status"] == "stoppedByError"
    runs = {run["runId"]: run for run in data["runs"]}
    assert runs["run-coder-a2"]["resumesRunId"] == "run-coder-a"
    assert runs["run-coder-a2"]["parentRunId"] == "run-lead-1"
    assert runs["run-tester-a"]["parentRunId"] == "run-coder-a"
    assert runs["run-lead-2"]["resumesRunId"] == "run-lead-1"
    assert runs["run-lead-1"]["parentRunId"] is None


def test_tree_text_with_costs(tmp_path: Path) -> None:
    b = build_parallel_team(tmp_path / "perstack")
    lines = tree_block(log(b.root).out)
    # This hand-built job numbers every step of the delegates 2, as parallel work shares the
    # job's step numbers: a subtree counts each number once.
    assert lines == [
        "  lead  completed  steps 1-2  300 tokens, $0.0300  (with delegates: 2 steps, 800 tokens, "
        "$0.0800)  runs run-lead-1, run-lead-2",
        "  ├── @team/coder  completed  step 2  200 tokens, $0.0200  (with delegates: 1 step, "
        "200 tokens, $0.0200)  runs run-coder-a, run-coder-a2",
        "  │   └── @team/tester  stoppedByError  step 2  0 tokens  run run-tester-a",
        "  └── @team/coder  completed  step 2  200 tokens, $0.0200  (with delegates: 1 step, "
        "300 tokens, $0.0300)  runs run-coder-b, run-coder-b2",
        "      └── @team/tester  completed  step 2  100 tokens, $0.0100  run run-tester-b",
    ]


def test_many_delegates_are_collapsed_in_text_but_not_in_json(tmp_path: Path) -> None:
    b = JobBuilder(tmp_path / "perstack")
    lead = b.start("run-lead-0", "lead", "many")
    for index in range(14):
        ((tool_call, stopped),) = lead.delegate(("@team/worker", f"task {index}"))
        child = b.start(
            f"run-w{index:02d}",
            "@team/worker",
            f"task {index}",
            delegated_by=(lead, tool_call, stopped),
        )
        child.complete("done")
        lead = b.start(f"run-lead-{index + 1}", "lead", resume=lead)
    lead.complete("all done")
    b.store_job("completed", "lead")
    text = log(b.root).out
    lines = tree_block(text)
    assert len(lines) == 12
    assert lines[0].startswith("  lead  completed  ")
    assert lines[0].endswith("runs run-lead-0, run-lead-1, … +13 more")
    assert lines[6] == "  ├── … 4 more delegates (@team/worker completed ×4; see --json)"
    assert lines[-1].startswith("  └── @team/worker  completed")
    data = log(b.root, "--json").json()
    assert len(data["delegationTree"][0]["children"]) == 14


def test_interactive_stop_in_a_hand_built_job(tmp_path: Path) -> None:
    b = JobBuilder(tmp_path / "perstack")
    asker = b.start("run-1", "asker", "paint it")
    asker.ask("askColor")
    b.store_job("stoppedByInteractiveTool", "asker")
    text = log(b.root).out
    assert "Job: job1 (stoppedByInteractiveTool)" in text
    assert "  Waiting for an answer to: askColor" in text
    assert "Delegation tree:" not in text and "Runs:" not in text
    data = log(b.root, "--json").json()
    assert data["runs"][0]["status"] == "stoppedByInteractiveTool"


def test_orphan_child_and_run_without_start_event(tmp_path: Path) -> None:
    # A child whose parent run is missing, and a run whose events lost their startRun: both
    # still appear, named after their expert, never "unknown".
    b = JobBuilder(tmp_path / "perstack")
    lead = b.start("run-lead", "lead", "go")
    ((tool_call, stopped),) = lead.delegate(("@team/coder", "x"))
    child = b.start("run-child", "@team/coder", "x", delegated_by=(lead, tool_call, stopped))
    child.complete("ok")
    b.store_job("running", "lead")
    events = b.storage.run_dir("job1", "run-lead") / "events.jsonl"
    lines = events.read_text().splitlines()
    events.write_text("\n".join(line for line in lines if '"startRun"' not in line) + "\n")
    data = log(b.root, "--json").json()
    keys = sorted(run["expertKey"] for run in data["runs"])
    assert keys == ["@team/coder", "lead"]
    text = log(b.root).out
    assert "unknown" not in text
    assert "@team/coder  completed" in text


def test_parallel_delegates_are_listed_in_call_order_whichever_started_first(
    tmp_path: Path,
) -> None:
    b = JobBuilder(tmp_path / "perstack")
    lead = b.start("run-lead-1", "lead", "build the game")
    (call_d, stop_d), (call_c, stop_c) = lead.delegate(
        ("@team/designer", "levels"), ("@team/coder", "code")
    )
    # The coder was called second but started (and finished) first.
    b.start("run-coder", "@team/coder", "code", delegated_by=(lead, call_c, stop_c)).complete("ok")
    b.start(
        "run-designer", "@team/designer", "levels", delegated_by=(lead, call_d, stop_d)
    ).complete("ok")
    b.start("run-lead-2", "lead", resume=lead).complete("game built")
    b.store_job("completed", "lead")

    (root,) = log(b.root, "--json").json()["delegationTree"]

    assert [child["runIds"] for child in root["children"]] == [["run-designer"], ["run-coder"]]
    lines = tree_block(log(b.root).out)
    assert lines[1].startswith("  ├── @team/designer")
    assert lines[2].startswith("  └── @team/coder")
