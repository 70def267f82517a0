"""Delegation, interactive tools and resume through run(), with a scripted model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime import RunSetting, UsageError, parse_config, run
from runtime.llm import GenerationRequest
from runtime.schema.events import PerstackEvent
from runtime.testing import Reply, ScriptedModel, call, calls, reply, scripted_team

TEAM = """
[experts."lead"]
description = "Coordinates"
instruction = "You lead the team."
delegates = ["@team/designer", "@team/coder"]

[experts."@team/designer"]
description = "Designs levels"
instruction = "You design levels."

[experts."@team/coder"]
description = "Writes code"
instruction = "You write code."
delegates = ["@team/tester"]

[experts."@team/tester"]
description = "Tests code"
instruction = "You test code."

[experts."asker"]
instruction = "Ask the user before acting."
[experts."asker".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
[experts."asker".skills."ask"]
type = "interactiveSkill"
[experts."asker".skills."ask".tools."askColor"]
description = "Ask the user for a colour"
inputJsonSchema = '{"type": "object", "properties": {"question": {"type": "string"}}}'
"""


async def go(
    workspace: Path, model: ScriptedModel, expert: str, query: str, **overrides: Any
) -> tuple[Any, list[PerstackEvent]]:
    events: list[PerstackEvent] = []
    setting = RunSetting(
        expert_key=expert, query=query, workspace=workspace, retry_base_delay_ms=0, **overrides
    )
    config = parse_config(TEAM, path=workspace / "perstack.toml")
    checkpoint = await run(setting, events.append, model=model, config=config)
    return checkpoint, events


def flow(events: list[PerstackEvent]) -> list[str]:
    keep = {
        "startRun",
        "callDelegate",
        "stopRunByDelegate",
        "completeRun",
        "stopRunByError",
        "callInteractiveTool",
        "stopRunByInteractiveTool",
        "resumeToolCalls",
    }
    return [f"{e.type}:{e.expert_key}" for e in events if e.type in keep]


async def test_delegation_chain(tmp_path: Path) -> None:
    model = scripted_team(
        {
            "You lead the team.": [call("coder", query="build it"), reply("shipped")],
            "You write code.": [call("tester", query="test it"), reply("built and tested")],
            "You test code.": [reply("all green")],
        }
    )
    checkpoint, events = await go(tmp_path, model, "lead", "make a game")
    assert flow(events) == [
        "startRun:lead",
        "callDelegate:lead",
        "stopRunByDelegate:lead",
        "startRun:@team/coder",
        "callDelegate:@team/coder",
        "stopRunByDelegate:@team/coder",
        "startRun:@team/tester",
        "completeRun:@team/tester",
        "startRun:@team/coder",
        "completeRun:@team/coder",
        "startRun:lead",
        "completeRun:lead",
    ]
    assert checkpoint.status == "completed"
    # Each segment has its own run id and its own initializeRuntime.
    starts = [e for e in events if e.type == "startRun"]
    assert len({e.run_id for e in starts}) == len(starts)
    inits = [e for e in events if e.type == "initializeRuntime"]
    assert len(inits) == len(starts)
    # The child sees only its own prompt and the query, never the parent's history.
    tester_start = next(e for e in starts if e.expert_key == "@team/tester")
    assert [m.type for m in tester_start.input_messages] == ["instructionMessage", "userMessage"]
    assert tester_start.initial_checkpoint.delegated_by.expert.key == "@team/coder"
    # The child's result comes back as the tool result of the delegate call.
    resumed = [m for m in checkpoint.messages if m.type == "toolMessage"][0]
    assert resumed.contents[0].contents[0].text == "built and tested"
    # Step numbers are job-global: the parent resumes after its children's steps.
    steps = [e.step_number for e in starts]
    assert steps == sorted(steps)
    # Usage is summed over the whole tree: 5 generations of 15 tokens.
    assert checkpoint.usage.total_tokens == 75
    job = json.loads((tmp_path / "perstack/jobs" / checkpoint.job_id / "job.json").read_text())
    assert job["status"] == "completed"
    assert job["totalTokens"] if "totalTokens" in job else job["usage"]["totalTokens"] == 75


async def test_parallel_delegates_run_side_by_side(tmp_path: Path) -> None:
    model = scripted_team(
        {
            "You lead the team.": [
                calls(("designer", {"query": "levels"}), ("coder", {"query": "code"})),
                reply("both done"),
            ],
            "You design levels.": [reply("3 levels")],
            "You write code.": [reply("main.ts")],
            "You test code.": [],
        }
    )
    checkpoint, events = await go(tmp_path, model, "lead", "go")
    delegate = next(e for e in events if e.type == "callDelegate")
    assert sorted(c.tool_name for c in delegate.tool_calls) == ["coder", "designer"]
    stop = next(e for e in events if e.type == "stopRunByDelegate")
    assert len(stop.checkpoint.delegate_to) == 2
    tool_message = [m for m in checkpoint.messages if m.type == "toolMessage"][0]
    texts = sorted(part.contents[0].text for part in tool_message.contents)
    assert texts == ["3 levels", "main.ts"]
    # Both children started before either finished: they ran concurrently.
    order = [f"{e.type}:{e.expert_key}" for e in events if e.type in ("startRun", "completeRun")]
    assert order.index("startRun:@team/coder") < order.index("completeRun:@team/designer")
    assert checkpoint.usage.total_tokens == 60


async def test_failed_delegate_returns_an_error_to_the_parent(tmp_path: Path) -> None:
    model = scripted_team(
        {
            "You lead the team.": [call("designer", query="levels"), reply("recovered")],
            "You design levels.": [call("todo", newTodos=["a"]), call("todo", newTodos=["b"])],
        }
    )
    checkpoint, events = await go(tmp_path, model, "lead", "go", max_steps=3)
    results = [e for e in events if e.type == "finishAllToolCalls"][0].new_messages[0].contents
    assert results[0].is_error is True
    assert (
        results[0]
        .contents[0]
        .text.startswith("Delegation to @team/designer failed: stoppedByExceededMaxSteps")
    )


async def test_missing_delegate_fails_before_the_run(tmp_path: Path) -> None:
    toml = '[experts."a"]\ninstruction = "x"\ndelegates = ["ghost"]\n'
    with pytest.raises(UsageError, match='Delegate expert "ghost" not found: expert "a"'):
        await run(
            RunSetting(expert_key="a", query="q", workspace=tmp_path),
            model=ScriptedModel([]),
            config=parse_config(toml, path=tmp_path / "perstack.toml"),
        )


async def test_delegate_without_query_gets_an_error_result(tmp_path: Path) -> None:
    model = scripted_team({"You lead the team.": [call("designer"), reply("ok")]})
    checkpoint, events = await go(tmp_path, model, "lead", "go")
    message = [m for m in checkpoint.messages if m.type == "toolMessage"][0]
    assert "query argument is missing" in message.contents[0].contents[0].text
    assert not any(e.type == "startRun" and e.expert_key == "@team/designer" for e in events)


async def test_interactive_stop_and_resume(tmp_path: Path) -> None:
    model = ScriptedModel(
        [
            calls(
                ("writeTextFile", {"path": "a.txt", "text": "x"}),
                ("askColor", {"question": "Which?"}),
            ),
        ]
    )
    stopped, events = await go(tmp_path, model, "asker", "paint it")
    assert stopped.status == "stoppedByInteractiveTool"
    assert flow(events)[-2:] == ["callInteractiveTool:asker", "stopRunByInteractiveTool:asker"]
    assert [c.tool_name for c in stopped.pending_tool_calls] == ["askColor"]
    assert [r.tool_name for r in stopped.partial_tool_results] == ["writeTextFile"]

    resumed_model = ScriptedModel([reply("Painted it blue.")])
    final, events = await go(
        tmp_path,
        resumed_model,
        "asker",
        "blue",
        continue_job=stopped.job_id,
        interactive_answer=True,
    )
    assert final.status == "completed"
    init = events[0]
    assert init.type == "initializeRuntime" and init.interactive_tool_call.text == "blue"
    sent = resumed_model.requests[0].messages
    tool_message = sent[-1]
    assert tool_message.type == "toolMessage"
    answers = {p.tool_name: p.contents[0].text for p in tool_message.contents}
    assert answers["askColor"] == "blue"
    assert "finishAllToolCalls" in [e.type for e in events]


async def test_interactive_answer_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no pending interactive tool call"):
        await go(tmp_path, ScriptedModel([]), "asker", "blue", interactive_answer=True)
    done, _ = await go(tmp_path, ScriptedModel([reply("hi")]), "asker", "hello")
    with pytest.raises(UsageError, match=r"no pending interactive tool call \(completed\)"):
        await go(
            tmp_path,
            ScriptedModel([]),
            "asker",
            "x",
            continue_job=done.job_id,
            interactive_answer=True,
        )


async def test_resume_from_an_earlier_checkpoint(tmp_path: Path) -> None:
    model = ScriptedModel([call("todo", newTodos=["a"]), reply("first")])
    first, events = await go(tmp_path, model, "asker", "one")
    earlier = next(e for e in events if e.type == "continueToNextStep").checkpoint
    second_model = ScriptedModel([reply("branched")])
    second, _ = await go(
        tmp_path, second_model, "asker", "again", continue_job=first.job_id, resume_from=earlier.id
    )
    assert second.status == "completed"
    # Resumed from step 1: the first run's final answer is not in the history.
    texts = [
        p.text
        for m in second_model.requests[0].messages
        for p in m.contents
        if p.type == "textPart"
    ]
    assert "first" not in texts


async def test_resume_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--resume-from requires --continue-job"):
        await go(tmp_path, ScriptedModel([]), "asker", "x", resume_from="abc")
    done, _ = await go(tmp_path, ScriptedModel([reply("hi")]), "asker", "hello")
    from runtime import CheckpointError

    with pytest.raises(CheckpointError, match="Checkpoint 'nope' not found"):
        await go(
            tmp_path, ScriptedModel([]), "asker", "x", continue_job=done.job_id, resume_from="nope"
        )


async def test_runaway_recursion_stops_at_the_depth_limit(tmp_path: Path) -> None:
    from runtime.engine.expert_run import DELEGATION_DEPTH_LIMIT

    toml = (
        '[experts."echo"]\ndescription = "Echoes"\ninstruction = "Delegate."\n'
        'delegates = ["echo"]\n'
    )

    def choose(request: GenerationRequest) -> Reply:
        # Delegate on the first generation of every run; answer once a result came back.
        if request.messages[-1].type == "toolMessage":
            return reply("unwound")
        return call("echo", query="go deeper")

    events: list[PerstackEvent] = []
    checkpoint = await run(
        RunSetting(expert_key="echo", query="start", workspace=tmp_path, max_steps=100),
        events.append,
        model=ScriptedModel(choose),
        config=parse_config(toml, path=tmp_path / "perstack.toml"),
    )
    assert checkpoint.status == "completed"
    starts = [e for e in events if e.type == "startRun" and e.input_messages]
    assert len(starts) == DELEGATION_DEPTH_LIMIT + 1  # the coordinator and 8 nested levels
    refused = [
        part
        for e in events
        if e.type == "finishAllToolCalls"
        for m in e.new_messages
        for part in m.contents
        if part.is_error
    ]
    assert len(refused) == 1
    assert "delegation depth limit (8) reached" in refused[0].contents[0].text
