"""One rule for a job's tree, steps and totals: ``perstack log``, the jobs API, the studio's history
row and the studio's tree show the same numbers (issue 16, bugs 3 and 4).

Bug 4: the history said "Steps 8" where the tree said "11 steps" (the tree added up its runs' steps,
and parallel delegates share their step numbers), and ``log --summary`` counted 16 tool calls where
11 were made (it counted the calls' events and their results' events). Bug 3: a follow-up query
showed the coordinator as a second root with only its new tokens, and a resume from an earlier
checkpoint mixed the old branch's later steps into the coordinator's.

The jobs are real: built with ``runtime.run`` and a scripted team, in three stages: a coordinator
with two parallel delegates, the same job continued twice, then resumed from an earlier checkpoint.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from runtime import RunSetting, parse_config, run
from runtime.jobs import Jobs, TreeNode, count_steps
from runtime.log.cli import main as log_main
from runtime.schema.events import PerstackEvent
from runtime.testing import ScriptedModel, call, calls, reply, scripted_team
from studio.run_view import RunView
from studio.view_model import JobTree

TEAM = """
[experts."lead"]
instruction = "You lead: ask the writers."
delegates = ["a", "b"]

[experts."a"]
instruction = "You are writer A."

[experts."b"]
instruction = "You are writer B."
"""


def team_model() -> ScriptedModel:
    """Each generation reports 15 tokens (see ScriptedModel)."""
    return scripted_team(
        {
            "You lead": [
                calls(("a", {"query": "part A"}), ("b", {"query": "part B"})),
                reply("lead: first answer"),
                call("a", query="part A again"),
                reply("lead: second answer"),
                reply("lead: third answer"),
                call("b", query="part B, differently"),
                reply("lead: the branch's answer"),
            ],
            "writer A": [
                call("readTextFile", path="a1.txt"),
                call("readTextFile", path="a2.txt"),
                reply("A: done"),
                reply("A: again"),
            ],
            "writer B": [reply("B: done"), reply("B: differently")],
        }
    )


class Stages:
    """The job, built one stage at a time, and the studio's tree fed its events live."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.config = parse_config(TEAM, path=workspace / "perstack.toml")
        self.model = team_model()
        self.live = JobTree()
        self.job_id = ""

    async def run(self, query: str, **options: object) -> None:
        setting = RunSetting(expert_key="lead", query=query, workspace=self.workspace, **options)  # type: ignore[arg-type]
        events: list[PerstackEvent] = []
        checkpoint = await run(setting, events.append, model=self.model, config=self.config)
        for event in events:
            self.live.apply(event)
        self.job_id = checkpoint.job_id

    async def follow_up(self, query: str) -> None:
        await self.run(query, continue_job=self.job_id)

    async def resume_from(self, checkpoint_id: str, query: str) -> None:
        await self.run(query, continue_job=self.job_id, resume_from=checkpoint_id)


def runtime_shape(roots: list[TreeNode]) -> list[tuple[int, str, int, int, int | None]]:
    out: list[tuple[int, str, int, int, int | None]] = []

    def visit(node: TreeNode, depth: int) -> None:
        tokens = node.total_usage["totalTokens"]
        out.append((depth, node.expert_key, node.total_steps, tokens, node.fork_step))
        for child in node.children:
            visit(child, depth + 1)

    for root in roots:
        visit(root, 0)
    return out


def studio_shape(tree: JobTree) -> list[tuple[int, str, int, int, int | None]]:
    return [
        (depth, n.expert_key, tree.total_steps(n), tree.rollup(n).total_tokens, n.fork_step)
        for depth, n in tree.walk()
    ]


def perstack_log_summary(workspace: Path, job_id: str) -> dict[str, str]:
    out, err = io.StringIO(), io.StringIO()
    storage = str(workspace / "perstack")
    code = log_main(["--storage", storage, "--job", job_id, "--summary"], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    return dict(re.findall(r"^ *(Steps|Usage|Tool Calls|Delegations): (.*)$", out.getvalue(), re.M))


def agree(stages: Stages) -> tuple[list[TreeNode], JobTree]:
    """Every view of the job shows the same tree and numbers; returns the jobs API's tree."""
    jobs = Jobs.for_workspace(stages.workspace)
    roots = jobs.tree(stages.job_id)
    (row,) = jobs.list_jobs()  # what the studio's history row shows
    # The job's steps and tokens are its tree's: every step number once, every run's tokens.
    assert row.total_steps == count_steps(*(n.steps for root in roots for n in root.walk()))
    assert row.total_tokens == sum(root.total_usage["totalTokens"] for root in roots)
    # The studio's tree, live and replayed from storage, is the jobs API's tree.
    replayed = JobTree(stages.job_id)
    for event in jobs.events(stages.job_id, messages=False):
        replayed.apply(event)
    assert studio_shape(stages.live) == studio_shape(replayed) == runtime_shape(roots)
    # The studio's rows and job line say what the jobs API says.
    view = RunView("lead", model_label="scripted")
    view.job = replayed
    for root_id, root in zip(replayed.roots, roots, strict=True):
        label = view.run_label(replayed.runs[root_id]).plain
        assert f" · {root.total_steps} step" in label
        assert f" · {root.total_usage['totalTokens']:,} tok" in label
    assert f" · {row.total_tokens:,} tok" in view.job_label().plain
    # perstack log --summary says the same.
    shown = perstack_log_summary(stages.workspace, stages.job_id)
    assert shown["Steps"] == str(row.total_steps)
    assert shown["Usage"].startswith(f"{row.total_tokens:,} tokens")
    return roots, replayed


def tool_calls_made(stages: Stages) -> int:
    jobs = Jobs.for_workspace(stages.workspace)
    return sum(len(e.tool_calls) for e in jobs.events(stages.job_id) if e.type == "callTools")


async def test_parallel_delegates_share_their_steps_and_the_job_counts_them_once(
    tmp_path: Path,
) -> None:
    stages = Stages(tmp_path)
    await stages.run("write it")
    roots, tree = agree(stages)
    # lead: step 1 (calls a and b), 5 (takes their results), 6 (answers); a: steps 2-4 (two
    # reads and its answer); b: step 2, beside a. Six steps, not 3 + 3 + 1 = 7.
    assert runtime_shape(roots) == [
        (0, "lead", 6, 90, None),
        (1, "a", 3, 45, None),
        (1, "b", 1, 15, None),
    ]
    (lead,) = roots
    assert [child.steps for child in lead.children] == [[2, 3, 4], [2]]
    summary = perstack_log_summary(tmp_path, stages.job_id)
    assert tool_calls_made(stages) == 4  # a, b, and a's two reads
    assert (summary["Tool Calls"], summary["Delegations"]) == ("4", "2")


async def test_a_job_continued_twice_is_one_coordinator_with_every_delegate_under_it(
    tmp_path: Path,
) -> None:
    stages = Stages(tmp_path)
    await stages.run("write it")
    await stages.follow_up("once more")
    await stages.follow_up("and a third time")
    roots, tree = agree(stages)
    # One coordinator: the follow-ups go on with it (they were separate roots, with only their
    # own tokens), and the delegate of the second query hangs under the call that started it.
    assert runtime_shape(roots) == [
        (0, "lead", 11, 150, None),
        (1, "a", 3, 45, None),
        (1, "b", 1, 15, None),
        (1, "a", 1, 15, None),
    ]
    (lead,) = tree.roots
    assert len(tree.runs[lead].run_ids) == 5
    assert (
        tree.rollup(tree.runs[lead]).total_tokens
        == Jobs.for_workspace(tmp_path).get(stages.job_id).total_tokens
    )
    summary = perstack_log_summary(tmp_path, stages.job_id)
    assert (summary["Steps"], summary["Tool Calls"], summary["Delegations"]) == ("11", "5", "3")


async def test_a_resume_from_an_earlier_checkpoint_is_a_branch_beside_the_old_one(
    tmp_path: Path,
) -> None:
    stages = Stages(tmp_path)
    await stages.run("write it")
    await stages.follow_up("once more")
    await stages.follow_up("and a third time")
    jobs = Jobs.for_workspace(tmp_path)
    first_answer = next(
        c for c in jobs.checkpoints(stages.job_id) if c.expert_key == "lead" and c.step_number == 6
    )
    assert first_answer.status == "completed"
    await stages.resume_from(first_answer.id, "write it differently")
    roots, tree = agree(stages)
    # The old line keeps its steps 7-11; the branch goes on from step 6 with its own steps 7-10
    # and its own delegate, nested under it (not beside the coordinator).
    assert runtime_shape(roots) == [
        (0, "lead", 11, 150, None),
        (1, "a", 3, 45, None),
        (1, "b", 1, 15, None),
        (1, "a", 1, 15, None),
        (0, "lead", 4, 45, 6),
        (1, "b", 1, 15, None),
    ]
    old, branch = roots
    assert branch.branch_of == old.segments[0].run_id
    assert branch.steps == [7, 9, 10] and old.steps == [1, 5, 6, 7, 9, 10, 11]
    node = tree.runs[tree.roots[1]]
    assert (node.branch_of, node.fork_step) == (tree.roots[0], 6)
    view = RunView("lead", model_label="scripted")
    view.job = tree
    assert "↱ branch from step 6 · 4 steps · 45 tok" in view.run_label(node).plain
    # The job: 11 step numbers (the branch's share the old line's), 195 tokens spent in all.
    row = jobs.get(stages.job_id)
    assert (row.total_steps, row.total_tokens) == (11, 195)
    summary = perstack_log_summary(tmp_path, stages.job_id)
    assert (summary["Tool Calls"], summary["Delegations"]) == ("6", "4")
