"""The agent loop through the public run(), with a scripted model (§5 of the reference)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from runtime import RunSetting, parse_config, run
from runtime.schema.checkpoint import Checkpoint
from runtime.schema.events import PerstackEvent
from runtime.testing import Reply, ScriptedModel, call, calls, fail, reply

TOML = """
model = "scripted"

[experts."writer"]
description = "Writes files"
instruction = "Write what you are asked to."
"""


def types(events: list[PerstackEvent]) -> list[str]:
    return [e.type for e in events]


def without_streams(events: list[PerstackEvent]) -> list[str]:
    return [t for t in types(events) if t not in ("streamRunResult", "streamReasoning")]


async def go(
    workspace: Path,
    replies: list[Reply],
    *,
    toml: str = TOML,
    expert: str = "writer",
    query: str = "hello",
    **overrides: Any,
) -> tuple[Checkpoint, list[PerstackEvent], ScriptedModel]:
    events: list[PerstackEvent] = []
    model = ScriptedModel(replies)
    setting = RunSetting(
        expert_key=expert,
        query=query,
        workspace=workspace,
        retry_base_delay_ms=0,
        **overrides,
    )
    checkpoint = await run(
        setting,
        events.append,
        model=model,
        config=parse_config(toml, path=workspace / "perstack.toml"),
    )
    return checkpoint, events, model


async def test_tool_then_attempt_completion_generates_the_result(tmp_path: Path) -> None:
    checkpoint, events, model = await go(
        tmp_path,
        [
            call("writeTextFile", path="notes/a.txt", text="hi"),
            call("attemptCompletion"),
            reply("I wrote notes/a.txt."),
        ],
    )
    assert without_streams(events) == [
        "initializeRuntime",
        "skillConnected",
        "startRun",
        "startGeneration",
        "callTools",
        "resolveToolResults",
        "finishToolCall",
        "continueToNextStep",
        "startGeneration",
        "callTools",
        "attemptCompletion",
        "startStreamingRunResult",
        "completeStreamingRunResult",
        "completeRun",
        "skillDisconnected",
    ]
    assert (tmp_path / "notes/a.txt").read_text() == "hi"
    assert checkpoint.status == "completed"
    assert checkpoint.step_number == 2
    complete = next(e for e in events if e.type == "completeRun")
    assert complete.text == "I wrote notes/a.txt."
    streamed = "".join(e.delta for e in events if e.type == "streamRunResult")
    assert streamed == "I wrote notes/a.txt."
    # The final generation gets no tools, the first ones get the base skill's tools.
    assert model.requests[-1].tools == []
    assert {t.name for t in model.requests[0].tools} >= {"writeTextFile", "attemptCompletion"}
    # Usage is summed over the three generations.
    assert checkpoint.usage.total_tokens == 45
    # Step numbers are job-global and start at 1.
    assert [e.step_number for e in events if e.type == "startGeneration"] == [1, 2]


async def test_text_only_reply_completes_implicitly(tmp_path: Path) -> None:
    checkpoint, events, _ = await go(tmp_path, [reply("Just an answer.")])
    # Streamed as it arrives, though Perstack streams only after attemptCompletion.
    assert types(events) == [
        "initializeRuntime",
        "skillConnected",
        "startRun",
        "startGeneration",
        "startStreamingRunResult",
        "streamRunResult",
        "streamRunResult",
        "completeStreamingRunResult",
        "completeRun",
        "skillDisconnected",
    ]
    assert "".join(e.delta for e in events if e.type == "streamRunResult") == "Just an answer."
    assert events[-3].text == events[-2].text == "Just an answer."
    assert checkpoint.status == "completed"
    assert checkpoint.messages[-1].type == "expertMessage"


async def test_text_before_tool_calls_is_streamed_too(tmp_path: Path) -> None:
    _, events, _ = await go(
        tmp_path,
        [
            Reply(
                text="Let me write it.", tool_calls=[("writeTextFile", {"path": "a", "text": ""})]
            ),
            reply("Written."),
        ],
    )
    # The text turned out not to be the result: the callTools that follows says so.
    assert without_streams(events)[3:7] == [
        "startGeneration",
        "startStreamingRunResult",
        "completeStreamingRunResult",
        "callTools",
    ]
    completed = [e.text for e in events if e.type == "completeStreamingRunResult"]
    assert completed == ["Let me write it.", "Written."]
    call_tools = next(e for e in events if e.type == "callTools")
    assert call_tools.new_message.contents[0].text == "Let me write it."


async def test_reasoning_stream_closes_before_the_text_stream(tmp_path: Path) -> None:
    _, events, _ = await go(tmp_path, [Reply(text="42", reasoning="Hmm.")])
    assert without_streams(events)[3:8] == [
        "startGeneration",
        "startStreamingReasoning",
        "completeStreamingReasoning",
        "startStreamingRunResult",
        "completeStreamingRunResult",
    ]


async def test_text_with_attempt_completion_uses_the_text(tmp_path: Path) -> None:
    _, events, model = await go(
        tmp_path, [Reply(text="Done already.", tool_calls=[("attemptCompletion", {})])]
    )
    assert types(events)[-3:] == ["callTools", "completeRun", "skillDisconnected"]
    assert events[-2].text == "Done already."
    assert len(model.requests) == 1


async def test_open_todos_block_completion(tmp_path: Path) -> None:
    checkpoint, events, _ = await go(
        tmp_path,
        [
            call("todo", newTodos=["write the file"]),
            call("attemptCompletion"),
            call("todo", completedTodos=[0]),
            call("attemptCompletion"),
            reply("All done."),
        ],
    )
    resolved = [e for e in events if e.type == "resolveToolResults"]
    blocked = json.loads(resolved[1].tool_results[0].result[0].text)
    assert blocked["remainingTodos"][0]["title"] == "write the file"
    assert checkpoint.status == "completed"


async def test_parallel_tool_calls_run_concurrently(tmp_path: Path) -> None:
    # Each command waits for the other's marker: run one after the other, both would time out.
    def waiter(mine: str, other: str) -> dict[str, Any]:
        script = f"touch {mine}; while [ ! -f {other} ]; do sleep 0.01; done; echo {mine}"
        return {
            "command": "sh",
            "args": ["-c", script],
            "env": {},
            "cwd": ".",
            "stdout": True,
            "stderr": True,
            "timeout": 5000,
        }

    _, events, _ = await go(
        tmp_path,
        [calls(("exec", waiter("a", "b")), ("exec", waiter("b", "a"))), reply("ok")],
    )
    results = next(e for e in events if e.type == "resolveToolResults").tool_results
    outputs = sorted(json.loads(r.result[0].text)["output"].strip() for r in results)
    assert outputs == ["a", "b"]


async def test_max_steps_stops_the_run(tmp_path: Path) -> None:
    checkpoint, events, _ = await go(
        tmp_path,
        [call("todo", newTodos=["x"]), call("todo", newTodos=["y"]), reply("never")],
        max_steps=2,
    )
    assert checkpoint.status == "stoppedByExceededMaxSteps"
    assert types(events)[-2] == "stopRunByExceededMaxSteps"
    assert checkpoint.step_number == 2


async def test_retryable_error_retries_then_succeeds(tmp_path: Path) -> None:
    checkpoint, events, _ = await go(
        tmp_path, [fail("rate limited", retryable=True, status_code=429), reply("fine")]
    )
    retry = next(e for e in events if e.type == "retry")
    assert json.loads(retry.reason) == {"error": "RateLimitError", "message": "rate limited"}
    assert checkpoint.status == "completed"
    assert checkpoint.retry_count == 0
    assert "continueToNextStep" in types(events)


async def test_non_retryable_error_stops_with_the_provider_message(tmp_path: Path) -> None:
    checkpoint, events, _ = await go(
        tmp_path, [fail("Incorrect API key provided", retryable=False, status_code=401)]
    )
    stop = events[-2]
    assert stop.type == "stopRunByError"
    assert stop.error.message == "Incorrect API key provided"
    assert stop.error.status_code == 401
    assert stop.error.is_retryable is False
    assert checkpoint.status == "stoppedByError"


async def test_retries_are_limited(tmp_path: Path) -> None:
    checkpoint, events, _ = await go(
        tmp_path,
        [fail("overloaded", retryable=True)] * 3,
        max_retries=2,
    )
    assert types(events).count("retry") == 2
    assert checkpoint.error is not None
    assert checkpoint.error.message == "Max retries (2) exceeded: overloaded"


async def test_empty_reply_is_retried(tmp_path: Path) -> None:
    checkpoint, events, _ = await go(tmp_path, [Reply(text=""), reply("now with text")])
    assert "retry" in types(events)
    assert checkpoint.status == "completed"


async def test_generation_timeout_is_retryable(tmp_path: Path) -> None:
    checkpoint, events, _ = await go(
        tmp_path, [Reply(text="slow", delay=1.0), reply("fast")], timeout=50
    )
    retry = next(e for e in events if e.type == "retry")
    assert json.loads(retry.reason)["error"] == "TimeoutError"
    assert checkpoint.status == "completed"


async def test_invalid_json_arguments_go_back_to_the_model(tmp_path: Path) -> None:
    checkpoint, events, _ = await go(
        tmp_path,
        [Reply(tool_calls=[("writeTextFile", '{"path": "a.txt", "text": ')]), reply("sorry")],
    )
    result = next(e for e in events if e.type == "resolveToolResults").tool_results[0]
    assert result.is_error is True
    assert "invalid JSON arguments" in result.result[0].text
    assert checkpoint.status == "completed"


async def test_unknown_tool_goes_back_to_the_model(tmp_path: Path) -> None:
    checkpoint, events, _ = await go(tmp_path, [call("teleport", to="mars"), reply("ok")])
    result = next(e for e in events if e.type == "resolveToolResults").tool_results[0]
    assert result.is_error is True
    assert "Tool 'teleport' not found" in result.result[0].text
    assert checkpoint.status == "completed"


async def test_reasoning_is_streamed_and_kept(tmp_path: Path) -> None:
    checkpoint, events, _ = await go(tmp_path, [Reply(text="42", reasoning="Let me think.")])
    assert types(events)[4:7] == [
        "startStreamingReasoning",
        "streamReasoning",
        "streamReasoning",
    ]
    done = next(e for e in events if e.type == "completeStreamingReasoning")
    assert done.text == "Let me think."
    thinking = checkpoint.messages[-1].contents[0]
    assert thinking.type == "thinkingPart"


async def test_listener_errors_do_not_stop_the_run(tmp_path: Path) -> None:
    def broken(event: PerstackEvent) -> None:
        raise RuntimeError("UI bug")

    setting = RunSetting(expert_key="writer", query="q", workspace=tmp_path)
    checkpoint = await run(
        setting,
        broken,
        model=ScriptedModel([reply("fine")]),
        config=parse_config(TOML, path=tmp_path / "perstack.toml"),
    )
    assert checkpoint.status == "completed"


async def test_system_prompt_has_instruction_and_skill_rules(tmp_path: Path) -> None:
    toml = """
[experts."writer"]
instruction = "Write poems."
[experts."writer".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
rule = "Never delete files."
pick = ["writeTextFile", "attemptCompletion"]
"""
    _, _, model = await go(tmp_path, [reply("ok")], toml=toml)
    system = model.requests[0].messages[0]
    assert system.type == "instructionMessage"
    text = system.contents[0].text
    assert "Write poems." in text
    assert '"@perstack/base" skill rules:\nNever delete files.' in text
    # The volatile part (directory, date) is the very end, after everything stable.
    head, tail = text.split("\n\n---\n\nEnvironment:\n")
    assert "Write poems." in head and "Never delete files." in head
    assert re.fullmatch(
        rf"- Working directory: {re.escape(str(tmp_path))}\n"
        r"- Current date: \d{4}-\d\d-\d\d \(UTC\)",
        tail,
    )
    assert sorted(t.name for t in model.requests[0].tools) == ["attemptCompletion", "writeTextFile"]


async def test_system_prompt_is_the_same_across_runs_up_to_the_environment(
    tmp_path: Path,
) -> None:
    prompts = []
    for workspace in (tmp_path / "one", tmp_path / "two"):
        workspace.mkdir()
        _, _, model = await go(workspace, [reply("ok")])
        prompts.append(model.requests[0].messages[0].contents[0].text)
    first, second = (p.split("Environment:")[0] for p in prompts)
    assert first == second
    assert first.endswith("Write what you are asked to.\n\n---\n\n")


async def test_storage_layout_and_no_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    checkpoint, events, _ = await go(tmp_path, [call("todo", newTodos=["a"]), reply("done")])
    job_dir = tmp_path / "perstack" / "jobs" / checkpoint.job_id
    job = json.loads((job_dir / "job.json").read_text())
    assert job["status"] == "completed"
    assert job["coordinatorExpertKey"] == "writer"
    assert job["totalSteps"] == 2
    assert job["schemaVersion"] == "1"
    assert len(job["configSha256"]) == 64
    checkpoints = sorted(p.name for p in (job_dir / "checkpoints").iterdir())
    assert f"{checkpoint.id}.json" in checkpoints
    run_dir = job_dir / "runs" / checkpoint.run_id
    setting = (run_dir / "run-setting.json").read_text()
    assert "sk-very-secret" not in setting
    # Every field Perstack's runSettingSchema requires (packages/core/src/schemas/runtime.ts),
    # with the two that hold secrets in Perstack's own files left empty.
    document = json.loads(setting)
    required = {
        "model": str,
        "providerConfig": dict,
        "jobId": str,
        "runId": str,
        "expertKey": str,
        "input": dict,
        "experts": dict,
        "maxRetries": int,
        "timeout": int,
        "startedAt": int,
        "updatedAt": int,
        "perstackApiBaseUrl": str,
        "env": dict,
    }
    assert {key: type(document.get(key)) for key in required} == required
    assert document["providerConfig"] == {"providerName": "anthropic", "apiKey": ""}
    assert document["env"] == {}
    assert document["perstackApiBaseUrl"].startswith("https://")
    writer = document["experts"]["writer"]
    assert (writer["key"], writer["name"], writer["version"]) == ("writer", "writer", "1.0.0")
    assert all(skill["name"] == name for name, skill in writer["skills"].items())
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    stored = [json.loads(line)["type"] for line in lines]
    assert stored == [
        e.type for e in events if e.type not in ("streamRunResult", "streamReasoning")
    ]


async def test_follow_up_continues_the_conversation(tmp_path: Path) -> None:
    first, _, _ = await go(tmp_path, [reply("first answer")], query="first")
    second, events, model = await go(
        tmp_path, [reply("second answer")], query="second", continue_job=first.job_id
    )
    assert second.job_id == first.job_id
    assert second.step_number == first.step_number + 1
    sent = model.requests[0].messages
    assert [m.type for m in sent] == [
        "instructionMessage",
        "userMessage",
        "expertMessage",
        "userMessage",
    ]
    start = next(e for e in events if e.type == "startRun")
    assert start.run_id != first.run_id


async def test_storage_can_be_turned_off(tmp_path: Path) -> None:
    await go(tmp_path, [reply("x")], store=False)
    assert not (tmp_path / "perstack").exists()
