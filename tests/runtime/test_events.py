"""Every event type survives a JSON round trip with Perstack's camelCase names."""

from __future__ import annotations

import json
import typing

import pytest
from pydantic import ValidationError

from runtime.schema import events as ev
from runtime.schema.checkpoint import (
    Checkpoint,
    DelegatedBy,
    DelegationTarget,
    ExpertRef,
    RunErrorInfo,
    Step,
    ToolCall,
    ToolResult,
    Usage,
)
from runtime.schema.messages import (
    ExpertMessage,
    FileInlinePart,
    ImageInlinePart,
    ImageUrlPart,
    InstructionMessage,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolMessage,
    ToolResultPart,
    UserMessage,
)

EXPERT = ExpertRef(key="writer", name="writer", version="1.0.0")
CALL = ToolCall(
    id="call_1", skill_name="@perstack/base", tool_name="todo", args={"newTodos": ["a"]}
)
RESULT = ToolResult(
    id="call_1", skill_name="@perstack/base", tool_name="todo", result=[TextPart(text="{}")]
)
EXPERT_MESSAGE = ExpertMessage(
    contents=[
        ThinkingPart(thinking="hm", signature="sig"),
        TextPart(text="doing it"),
        ToolCallPart(tool_call_id="call_1", tool_name="todo", args={"newTodos": ["a"]}),
    ]
)
TOOL_MESSAGE = ToolMessage(
    contents=[
        ToolResultPart(
            tool_call_id="call_1",
            tool_name="todo",
            contents=[
                TextPart(text="ok"),
                ImageInlinePart(encoded_data="aGk=", mime_type="image/png"),
                FileInlinePart(encoded_data="aGk=", mime_type="application/pdf"),
            ],
            is_error=False,
        )
    ]
)
CHECKPOINT = Checkpoint(
    id="cp1",
    job_id="job1",
    run_id="run1",
    status="stoppedByDelegate",
    step_number=3,
    messages=[
        InstructionMessage(contents=[TextPart(text="sys")], cache=True),
        UserMessage(
            contents=[
                TextPart(text="q"),
                ImageUrlPart(url="https://x/y.png", mime_type="image/png"),
            ]
        ),
        EXPERT_MESSAGE,
        TOOL_MESSAGE,
    ],
    expert=EXPERT,
    delegate_to=[
        DelegationTarget(expert=EXPERT, tool_call_id="c2", tool_name="writer", query="go")
    ],
    delegated_by=DelegatedBy(
        expert=EXPERT, tool_call_id="c0", tool_name="writer", checkpoint_id="cp0", run_id="run0"
    ),
    usage=Usage(input_tokens=3, output_tokens=4, total_tokens=7, cost_usd=0.001),
    pending_tool_calls=[CALL],
    partial_tool_results=[RESULT],
    error=RunErrorInfo(name="E", message="m", status_code=500, is_retryable=True),
    retry_count=1,
)
STEP = Step(
    step_number=3, new_messages=[EXPERT_MESSAGE], tool_calls=[CALL], usage=Usage(), started_at=1
)
RUN = {"job_id": "job1", "run_id": "run1", "expert_key": "writer", "step_number": 3}
RUNTIME = {"job_id": "job1", "run_id": "run1"}

SAMPLES: list[ev.PerstackEvent] = [
    ev.StartRun(**RUN, initial_checkpoint=CHECKPOINT, input_messages=CHECKPOINT.messages[:2]),
    ev.StartGeneration(**RUN, messages=CHECKPOINT.messages),
    ev.Retry(
        **RUN,
        reason='{"error":"E","message":"m"}',
        new_messages=[],
        tool_calls=[CALL],
        tool_results=[RESULT],
        usage=Usage(),
    ),
    ev.CallTools(**RUN, new_message=EXPERT_MESSAGE, tool_calls=[CALL], usage=Usage()),
    ev.CallInteractiveTool(**RUN, new_message=EXPERT_MESSAGE, tool_call=CALL, usage=Usage()),
    ev.CallDelegate(**RUN, new_message=EXPERT_MESSAGE, tool_calls=[CALL], usage=Usage()),
    ev.ResolveToolResults(**RUN, tool_results=[RESULT]),
    ev.AttemptCompletion(**RUN, tool_result=RESULT),
    ev.FinishToolCall(**RUN, new_messages=[TOOL_MESSAGE]),
    ev.ResumeToolCalls(**RUN, pending_tool_calls=[CALL], partial_tool_results=[RESULT]),
    ev.FinishAllToolCalls(**RUN, new_messages=[TOOL_MESSAGE]),
    ev.ContinueToNextStep(**RUN, checkpoint=CHECKPOINT, step=STEP, next_checkpoint=CHECKPOINT),
    ev.StopRunByInteractiveTool(**RUN, checkpoint=CHECKPOINT, step=STEP),
    ev.StopRunByDelegate(**RUN, checkpoint=CHECKPOINT, step=STEP),
    ev.StopRunByExceededMaxSteps(**RUN, checkpoint=CHECKPOINT, step=STEP),
    ev.StopRunByError(
        **RUN,
        checkpoint=CHECKPOINT,
        step=STEP,
        error=RunErrorInfo(name="E", message="m", is_retryable=False),
    ),
    ev.CompleteRun(**RUN, checkpoint=CHECKPOINT, step=STEP, text="done", usage=Usage()),
    ev.StartStreamingReasoning(**RUN),
    ev.StreamReasoning(**RUN, delta="a"),
    ev.CompleteStreamingReasoning(**RUN, text="a"),
    ev.StartStreamingRunResult(**RUN),
    ev.StreamRunResult(**RUN, delta="b"),
    ev.CompleteStreamingRunResult(**RUN, text="b"),
    ev.InitializeRuntime(
        **RUNTIME,
        runtime_version="0.1.0",
        expert_name="writer",
        experts=["writer"],
        model="m",
        max_steps=100,
        max_retries=5,
        timeout=300000,
        query="q",
        interactive_tool_call=ev.InteractiveToolCallInfo(tool_name="t", tool_call_id="c", text="x"),
    ),
    ev.SkillStarting(**RUNTIME, skill_name="s", command="uvx", args=["mcp-server-time"]),
    ev.SkillConnected(
        **RUNTIME,
        skill_name="s",
        server_info=ev.ServerInfo(name="s", version="1"),
        spawn_duration_ms=1,
        handshake_duration_ms=2,
        tool_discovery_duration_ms=3,
        connect_duration_ms=3,
        total_duration_ms=6,
    ),
    ev.SkillStderr(**RUNTIME, skill_name="s", message="warn"),
    ev.SkillDisconnected(**RUNTIME, skill_name="s"),
    ev.DockerBuildProgress(
        **RUNTIME, stage="building", service="runtime", message="m", progress=0.5
    ),
    ev.DockerContainerStatus(**RUNTIME, status="running", service="runtime"),
    ev.ProxyAccess(
        **RUNTIME, action="blocked", domain="evil.example", port=443, reason="not allowed"
    ),
]


def test_samples_cover_every_event_type() -> None:
    union = typing.get_args(typing.get_args(ev.PerstackEvent)[0])
    declared = {cls.model_fields["type"].default for cls in union}
    assert declared == {e.type for e in SAMPLES}
    assert len(declared) == 31  # 17 state + 6 streaming + 8 runtime


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_round_trip(event: ev.PerstackEvent) -> None:
    line = ev.event_to_json(event)
    assert "\n" not in line
    assert ev.event_from_json(line) == event


def test_wire_names_are_camel_case() -> None:
    data = json.loads(ev.event_to_json(SAMPLES[0]))
    assert {
        "type",
        "id",
        "timestamp",
        "jobId",
        "runId",
        "expertKey",
        "stepNumber",
        "initialCheckpoint",
        "inputMessages",
    } <= set(data)
    checkpoint = data["initialCheckpoint"]
    assert {
        "stepNumber",
        "delegateTo",
        "delegatedBy",
        "pendingToolCalls",
        "partialToolResults",
        "retryCount",
        "schemaVersion",
    } <= set(checkpoint)
    assert checkpoint["usage"]["costUsd"] == 0.001
    part = checkpoint["messages"][2]["contents"][2]
    assert part == {
        "type": "toolCallPart",
        "id": part["id"],
        "toolCallId": "call_1",
        "toolName": "todo",
        "args": {"newTodos": ["a"]},
    }


def test_runtime_events_have_no_expert_key() -> None:
    data = json.loads(ev.event_to_json(SAMPLES[-1]))
    assert "expertKey" not in data and "stepNumber" not in data
    assert isinstance(SAMPLES[-1], ev.RuntimeEventBase)
    assert isinstance(SAMPLES[0], ev.RunEventBase)
    assert isinstance(SAMPLES[19], ev.StreamingEventBase)


def test_unknown_event_type_is_rejected() -> None:
    with pytest.raises(ValidationError):
        ev.event_from_json('{"type": "nope", "jobId": "j", "runId": "r"}')


def test_unknown_schema_version_is_refused(tmp_path) -> None:
    from runtime.errors import CheckpointError
    from runtime.jobs.store import Storage

    storage = Storage(tmp_path)
    storage.store_checkpoint(CHECKPOINT)
    path = tmp_path / "jobs" / "job1" / "checkpoints" / "cp1.json"
    data = json.loads(path.read_text())
    assert storage.load_checkpoint("job1", "cp1") == CHECKPOINT
    data["schemaVersion"] = "99"
    path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="schema version '99'.*reads version"):
        storage.load_checkpoint("job1", "cp1")
