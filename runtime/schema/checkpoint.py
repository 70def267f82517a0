"""Job, checkpoint, step and usage documents (§4 of the reference), with schema versions.

Schema policy: every persisted document carries ``schemaVersion``. A reader accepts the versions
listed in ``SCHEMA_VERSION_SUMMARIES`` and refuses any other, naming the versions it reads. Bump
the version when a field changes meaning or a required field is added, and add a one-line summary.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from runtime.errors import CheckpointError
from runtime.schema.base import WireModel
from runtime.schema.messages import Message, MessagePart

SCHEMA_VERSION = "1"
SCHEMA_VERSION_SUMMARIES: dict[str, str] = {
    "1": "Perstack 0.0.x checkpoint/job shape plus schemaVersion and usage.costUsd.",
}


def check_schema_version(version: str, *, what: str) -> None:
    """Refuse a document whose schema version this runtime does not read.

    Raises:
        CheckpointError: ``version`` is not one of ``SCHEMA_VERSION_SUMMARIES``.
    """
    if version not in SCHEMA_VERSION_SUMMARIES:
        known = ", ".join(sorted(SCHEMA_VERSION_SUMMARIES))
        raise CheckpointError(
            f"{what} has schema version {version!r}; this runtime reads version(s) {known}. "
            "Upgrade perstack to read it."
        )


class Usage(WireModel):
    """Token counts (and cost where the model's price is known), summed over generations."""

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: float | None = None
    """Cost in US dollars; None when no generation had a known price."""

    def __add__(self, other: Usage) -> Usage:
        cost: float | None
        if self.cost_usd is None and other.cost_usd is None:
            cost = None
        else:
            cost = (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            cost_usd=cost,
        )


class ToolCall(WireModel):
    """A tool call with the skill that owns the tool."""

    id: str = Field(min_length=1, max_length=255)
    skill_name: str
    tool_name: str
    args: dict[str, Any]


class ToolResult(WireModel):
    """The result of a tool call; ``id`` is the tool call's id."""

    id: str
    skill_name: str
    tool_name: str
    result: list[MessagePart]
    is_error: bool | None = None
    """True when the call failed (not in Perstack; we flag errors for the model and for UIs)."""


class ExpertRef(WireModel):
    """The identity of an expert inside a checkpoint."""

    key: str
    name: str
    version: str


class DelegationTarget(WireModel):
    """One delegate the run stopped for."""

    expert: ExpertRef
    tool_call_id: str
    tool_name: str
    query: str


class DelegatedBy(WireModel):
    """The parent run a delegated run returns to."""

    expert: ExpertRef
    tool_call_id: str
    tool_name: str
    checkpoint_id: str
    run_id: str


class RunErrorInfo(WireModel):
    """Why a run stopped by error."""

    name: str
    message: str
    status_code: int | None = None
    is_retryable: bool


CheckpointStatus = Literal[
    "init",
    "proceeding",
    "completed",
    "stoppedByInteractiveTool",
    "stoppedByDelegate",
    "stoppedByExceededMaxSteps",
    "stoppedByError",
]


class Checkpoint(WireModel):
    """The complete state of a run after a step: enough to resume it."""

    schema_version: str = SCHEMA_VERSION
    id: str
    job_id: str
    run_id: str
    status: CheckpointStatus
    step_number: int
    """Job-global step counter, starting at 1 and continuing across delegation."""
    messages: list[Message]
    expert: ExpertRef
    delegate_to: list[DelegationTarget] | None = None
    delegated_by: DelegatedBy | None = None
    usage: Usage = Field(default_factory=Usage)
    context_window: int | None = None
    context_window_usage: float | None = None
    """Share of the context window the last request occupied (not cumulative, unlike Perstack)."""
    pending_tool_calls: list[ToolCall] | None = None
    partial_tool_results: list[ToolResult] | None = None
    metadata: dict[str, Any] | None = None
    error: RunErrorInfo | None = None
    retry_count: int | None = None


class Step(WireModel):
    """What happened in one step of a run."""

    step_number: int
    input_messages: list[Message] | None = None
    new_messages: list[Message] = Field(default_factory=list)
    tool_calls: list[ToolCall] | None = None
    tool_results: list[ToolResult] | None = None
    pending_tool_calls: list[ToolCall] | None = None
    partial_tool_results: list[ToolResult] | None = None
    usage: Usage = Field(default_factory=Usage)
    started_at: int
    finished_at: int | None = None


JobStatus = Literal[
    "running",
    "completed",
    "stoppedByMaxSteps",
    "stoppedByInteractiveTool",
    "stoppedByError",
    "interrupted",
]
"""Perstack's job statuses, plus ``interrupted`` (ours: Perstack has no status for it): the
process stopped on Ctrl+C, SIGTERM or a cancel before the job ended. Its runs end with a
``stopRunByError`` named ``Interrupted``; the job continues with ``--continue``."""


class JobOrigin(WireModel):
    """The job a job was made from: replayed from its recording, or forked from a checkpoint.

    Not in Perstack's job.json (its readers ignore the key): Perstack has no replays or forks.
    """

    kind: Literal["replay", "fork"]
    job_id: str
    checkpoint_id: str | None = None
    """The checkpoint a fork started from."""


class Job(WireModel):
    """One `perstack run` invocation and every continuation of it."""

    schema_version: str = SCHEMA_VERSION
    id: str
    status: JobStatus
    coordinator_expert_key: str
    total_steps: int = 0
    max_steps: int | None = None
    usage: Usage = Field(default_factory=Usage)
    started_at: int
    finished_at: int | None = None
    config_sha256: str | None = None
    """sha256 of the perstack.toml the job started with (None for configs built in code)."""
    origin: JobOrigin | None = None
    """Where the job came from, when it is a replay or a fork of another job."""


JOB_STATUS_BY_CHECKPOINT: dict[CheckpointStatus, JobStatus] = {
    "init": "running",
    "proceeding": "running",
    "stoppedByDelegate": "running",
    "completed": "completed",
    "stoppedByInteractiveTool": "stoppedByInteractiveTool",
    "stoppedByExceededMaxSteps": "stoppedByMaxSteps",
    "stoppedByError": "stoppedByError",
}
"""The job status a coordinator checkpoint status implies."""
