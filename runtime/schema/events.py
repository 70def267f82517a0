"""Every event the runtime emits (§3 of the reference), as one discriminated union.

Wire names and camelCase fields follow Perstack. Three families share base fields:
:class:`RunEventBase` (expert state events), :class:`StreamingEventBase` (fire-and-forget deltas)
and :class:`RuntimeEventBase` (skills, runtime set-up, sandbox). Tell them apart with
``isinstance``, never by probing fields.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter

from runtime.schema.base import WireModel
from runtime.schema.checkpoint import Checkpoint, RunErrorInfo, Step, ToolCall, ToolResult, Usage
from runtime.schema.ids import new_id
from runtime.schema.kinds import TERMINAL_EVENT_TYPES as TERMINAL_EVENT_TYPES
from runtime.schema.messages import ExpertMessage, Message, ToolMessage


def now_ms() -> int:
    """Milliseconds since the epoch, the timestamp unit of every event."""
    return time.time_ns() // 1_000_000


class _EventBase(WireModel):
    # Built on first use: a run emits about half of the 31 types (~10 ms at import otherwise).
    model_config = ConfigDict(defer_build=True)

    id: str = Field(default_factory=new_id)
    timestamp: int = Field(default_factory=now_ms)
    job_id: str
    run_id: str


class RunEventBase(_EventBase):
    """Fields of every expert state event."""

    expert_key: str
    step_number: int


class StreamingEventBase(RunEventBase):
    """Fields of every streaming event (not stored one by one; their complete* events are)."""


class RuntimeEventBase(_EventBase):
    """Fields of every runtime event: no expert key, no step number."""


# Expert state events -------------------------------------------------------------------------


class StartRun(RunEventBase):
    """A run segment starts (fresh, continued, resumed or delegated)."""

    type: Literal["startRun"] = "startRun"
    initial_checkpoint: Checkpoint
    input_messages: list[Message]
    definition_sha256: str | None = None
    """:attr:`ExpertDefinition.sha256` of the definition this segment runs (not in Perstack):
    a viewer compares it with the file now to mark runs made with an older definition."""


class StartGeneration(RunEventBase):
    """A model call starts with these messages."""

    type: Literal["startGeneration"] = "startGeneration"
    messages: list[Message]


class Retry(RunEventBase):
    """A generation failed in a retryable way; the step will be tried again."""

    type: Literal["retry"] = "retry"
    reason: str
    """JSON string ``{"error": name, "message": text}``."""
    new_messages: list[Message]
    tool_calls: list[ToolCall] | None = None
    tool_results: list[ToolResult] | None = None
    usage: Usage


class CallTools(RunEventBase):
    """The model asked for tool calls."""

    type: Literal["callTools"] = "callTools"
    new_message: ExpertMessage
    tool_calls: list[ToolCall]
    usage: Usage


class CallInteractiveTool(RunEventBase):
    """An interactive tool call needs an answer from the user."""

    type: Literal["callInteractiveTool"] = "callInteractiveTool"
    new_message: ExpertMessage
    tool_call: ToolCall
    usage: Usage


class CallDelegate(RunEventBase):
    """The model called one or more delegate experts."""

    type: Literal["callDelegate"] = "callDelegate"
    new_message: ExpertMessage
    tool_calls: list[ToolCall]
    usage: Usage


class ResolveToolResults(RunEventBase):
    """Tool calls finished with these results."""

    type: Literal["resolveToolResults"] = "resolveToolResults"
    tool_results: list[ToolResult]


class AttemptCompletion(RunEventBase):
    """attemptCompletion found no open todos; the final result will be generated."""

    type: Literal["attemptCompletion"] = "attemptCompletion"
    tool_result: ToolResult


class FinishToolCall(RunEventBase):
    """The tool results were added to the conversation."""

    type: Literal["finishToolCall"] = "finishToolCall"
    new_messages: list[ToolMessage]


class ResumeToolCalls(RunEventBase):
    """A resumed run goes on with calls still pending from before it stopped."""

    type: Literal["resumeToolCalls"] = "resumeToolCalls"
    pending_tool_calls: list[ToolCall]
    partial_tool_results: list[ToolResult]


class FinishAllToolCalls(RunEventBase):
    """Every pending call of a resumed run has a result; they become one tool message."""

    type: Literal["finishAllToolCalls"] = "finishAllToolCalls"
    new_messages: list[ToolMessage]


class ContinueToNextStep(RunEventBase):
    """A step ended; the next one starts from ``nextCheckpoint``."""

    type: Literal["continueToNextStep"] = "continueToNextStep"
    checkpoint: Checkpoint
    step: Step
    next_checkpoint: Checkpoint


class StopRunByInteractiveTool(RunEventBase):
    """The run paused for the user's answer to an interactive tool."""

    type: Literal["stopRunByInteractiveTool"] = "stopRunByInteractiveTool"
    checkpoint: Checkpoint
    step: Step


class StopRunByDelegate(RunEventBase):
    """The run paused while delegates work."""

    type: Literal["stopRunByDelegate"] = "stopRunByDelegate"
    checkpoint: Checkpoint
    step: Step


class StopRunByExceededMaxSteps(RunEventBase):
    """The job reached maxSteps."""

    type: Literal["stopRunByExceededMaxSteps"] = "stopRunByExceededMaxSteps"
    checkpoint: Checkpoint
    step: Step


class StopRunByError(RunEventBase):
    """The run stopped on an error the model cannot fix."""

    type: Literal["stopRunByError"] = "stopRunByError"
    checkpoint: Checkpoint
    step: Step
    error: RunErrorInfo


class CompleteRun(RunEventBase):
    """The run finished with a result."""

    type: Literal["completeRun"] = "completeRun"
    checkpoint: Checkpoint
    step: Step
    text: str
    usage: Usage
    """Usage of the last generation only (the checkpoint has the cumulative usage)."""


# Streaming events ----------------------------------------------------------------------------


class StartStreamingReasoning(StreamingEventBase):
    """Reasoning text starts to arrive."""

    type: Literal["startStreamingReasoning"] = "startStreamingReasoning"


class StreamReasoning(StreamingEventBase):
    """A piece of reasoning text."""

    type: Literal["streamReasoning"] = "streamReasoning"
    delta: str


class CompleteStreamingReasoning(StreamingEventBase):
    """All reasoning text of this generation."""

    type: Literal["completeStreamingReasoning"] = "completeStreamingReasoning"
    text: str


class StartStreamingRunResult(StreamingEventBase):
    """The final result starts to arrive."""

    type: Literal["startStreamingRunResult"] = "startStreamingRunResult"


class StreamRunResult(StreamingEventBase):
    """A piece of the final result."""

    type: Literal["streamRunResult"] = "streamRunResult"
    delta: str


class CompleteStreamingRunResult(StreamingEventBase):
    """The whole final result text."""

    type: Literal["completeStreamingRunResult"] = "completeStreamingRunResult"
    text: str


# Runtime events ------------------------------------------------------------------------------


class InteractiveToolCallInfo(WireModel):
    """The interactive answer a resumed run starts with."""

    tool_name: str
    tool_call_id: str
    text: str


class InitializeRuntime(RuntimeEventBase):
    """A run segment is being set up."""

    type: Literal["initializeRuntime"] = "initializeRuntime"
    runtime_version: str
    runtime: str | None = "local"
    expert_name: str
    experts: list[str]
    model: str
    max_steps: int | None = None
    max_retries: int
    timeout: int
    query: str | None = None
    interactive_tool_call: InteractiveToolCallInfo | None = None


class SkillStarting(RuntimeEventBase):
    """A stdio MCP server is about to be spawned."""

    type: Literal["skillStarting"] = "skillStarting"
    skill_name: str
    command: str
    args: list[str]


class ServerInfo(WireModel):
    """Name and version an MCP server reported."""

    name: str
    version: str


class SkillConnected(RuntimeEventBase):
    """A skill is connected and its tools are listed."""

    type: Literal["skillConnected"] = "skillConnected"
    skill_name: str
    server_info: ServerInfo | None = None
    spawn_duration_ms: int | None = None
    handshake_duration_ms: int | None = None
    tool_discovery_duration_ms: int | None = None
    connect_duration_ms: int | None = None
    total_duration_ms: int | None = None


class SkillStderr(RuntimeEventBase):
    """A chunk of a skill process's stderr."""

    type: Literal["skillStderr"] = "skillStderr"
    skill_name: str
    message: str


class SkillDisconnected(RuntimeEventBase):
    """A skill was closed (or its process ended)."""

    type: Literal["skillDisconnected"] = "skillDisconnected"
    skill_name: str
    reason: str | None = None
    """Why, when it was not a normal close (e.g. the process crashed)."""


class DockerBuildProgress(RuntimeEventBase):
    """Container image build progress."""

    type: Literal["dockerBuildProgress"] = "dockerBuildProgress"
    stage: Literal["pulling", "building", "complete", "error"]
    service: str
    message: str
    progress: float | None = None


class DockerContainerStatus(RuntimeEventBase):
    """Container status change."""

    type: Literal["dockerContainerStatus"] = "dockerContainerStatus"
    status: Literal["starting", "running", "healthy", "unhealthy", "stopped", "error"]
    service: str
    message: str | None = None


class ProxyAccess(RuntimeEventBase):
    """A sandboxed network access was allowed or blocked."""

    type: Literal["proxyAccess"] = "proxyAccess"
    action: Literal["allowed", "blocked"]
    domain: str
    port: int
    reason: str | None = None


ExpertStateEvent = (
    StartRun
    | StartGeneration
    | Retry
    | CallTools
    | CallInteractiveTool
    | CallDelegate
    | ResolveToolResults
    | AttemptCompletion
    | FinishToolCall
    | ResumeToolCalls
    | FinishAllToolCalls
    | ContinueToNextStep
    | StopRunByInteractiveTool
    | StopRunByDelegate
    | StopRunByExceededMaxSteps
    | StopRunByError
    | CompleteRun
)
StreamingEvent = (
    StartStreamingReasoning
    | StreamReasoning
    | CompleteStreamingReasoning
    | StartStreamingRunResult
    | StreamRunResult
    | CompleteStreamingRunResult
)
RuntimeEvent = (
    InitializeRuntime
    | SkillStarting
    | SkillConnected
    | SkillStderr
    | SkillDisconnected
    | DockerBuildProgress
    | DockerContainerStatus
    | ProxyAccess
)

PerstackEvent = Annotated[
    ExpertStateEvent | StreamingEvent | RuntimeEvent, Field(discriminator="type")
]
"""Any event the runtime emits."""

if TYPE_CHECKING:
    EVENT_ADAPTER: TypeAdapter[PerstackEvent]
    """Parse (``validate_json``) and dump any event. Built on first use (see __getattr__)."""


@functools.cache
def _event_adapter() -> TypeAdapter[PerstackEvent]:
    return TypeAdapter(PerstackEvent)


def __getattr__(name: str) -> Any:
    # The adapter of the union of every event type costs ~8 ms to build; a run only emits
    # events and never needs it, readers (perstack log, the studio's replay) build it once.
    if name == "EVENT_ADAPTER":
        return _event_adapter()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


EventListener = Callable[[Any], None]
"""Called with each event, in order, on the runtime's event loop. Must return quickly.

Typed loosely so that ``list.append`` and lambdas fit; the argument is always a PerstackEvent.
"""


def event_to_json(event: PerstackEvent) -> str:
    """One compact JSON line for ``event`` (camelCase, unset optional fields left out)."""
    return event.to_json()


def event_from_json(line: str | bytes) -> PerstackEvent:
    """Parse one JSON event line.

    Raises:
        pydantic.ValidationError: the line is not a known event.
    """
    return _event_adapter().validate_json(line)
