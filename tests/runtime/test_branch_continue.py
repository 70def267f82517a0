"""A follow-up after a branch goes on with the branch (issue 16: branches are kept as branches)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime import RunSetting, parse_config, run
from runtime.jobs import Jobs
from runtime.testing import ScriptedModel, call, reply

TOML = '[experts."solo"]\ninstruction = "Work step by step."\n'


async def go(workspace: Path, replies: list[Any], query: str, **overrides: Any) -> Any:
    setting = RunSetting(expert_key="solo", query=query, workspace=workspace, **overrides)
    config = parse_config(TOML, path=workspace / "perstack.toml")
    return await run(setting, None, model=ScriptedModel(replies), config=config)


def steps(n: int) -> list[Any]:
    return [call("readTextFile", path=f"missing-{i}.txt") for i in range(n)]


async def test_a_follow_up_after_a_branch_continues_the_branch(tmp_path: Path) -> None:
    first = await go(tmp_path, [*steps(5), call("attemptCompletion"), reply("long line")], "go")
    assert first.step_number == 6
    early = next(
        c for c in Jobs(tmp_path / "perstack").checkpoints(first.job_id) if c.step_number == 2
    )
    branch = await go(
        tmp_path,
        [call("attemptCompletion"), reply("short branch")],
        "take the short way",
        continue_job=first.job_id,
        resume_from=early.id,
    )
    assert branch.step_number < first.step_number  # the old line reached a higher step
    follow = ScriptedModel([reply("on the branch")])
    config = parse_config(TOML, path=tmp_path / "perstack.toml")
    setting = RunSetting(
        expert_key="solo", query="and then?", workspace=tmp_path, continue_job=first.job_id
    )
    done = await run(setting, None, model=follow, config=config)
    assert done.status == "completed"
    # The follow-up saw the branch's conversation, not the old line's.
    seen = " ".join(str(m.model_dump()) for m in follow.requests[0].messages)
    assert "short branch" in seen and "long line" not in seen
