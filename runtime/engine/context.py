"""The objects a run is made of: the job (shared by every segment) and one run segment."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.config.resolve import ToolCallMode
from runtime.engine.secrets import Redactor
from runtime.jobs.store import EventCompactor, Storage
from runtime.llm import LanguageModel, ToolSpec
from runtime.schema.checkpoint import (
    JOB_STATUS_BY_CHECKPOINT,
    Checkpoint,
    ExpertRef,
    Job,
    Step,
    ToolCall,
    Usage,
)
from runtime.schema.events import (
    TERMINAL_EVENT_TYPES,
    EventListener,
    PerstackEvent,
    SkillStderr,
    StreamReasoning,
    StreamRunResult,
    now_ms,
)
from runtime.skills.types import Skill, ToolDefinition

if TYPE_CHECKING:
    from runtime.engine.recording import Fingerprinter, Recorder
    from runtime.skills.lockfile import Lockfile

logger = logging.getLogger("runtime")

CURRENT_CALL: ContextVar[tuple[ToolCall, Checkpoint] | None] = ContextVar(
    "perstack_current_call", default=None
)
"""The tool call being executed (with the checkpoint it was made at), for skills that start
nested runs and must link them to the call."""

CURRENT_GENERATION: ContextVar[tuple[str, str, int] | None] = ContextVar(
    "perstack_current_generation", default=None
)
"""The expert key, run id and step number of the generation being made, for a model that answers
from a recording (:mod:`runtime.engine.replay`) and must say whose call did not match."""

# Deltas are many and small; their start/complete events carry the same information.
_UNSTORED_EVENT_TYPES = (StreamReasoning, StreamRunResult)


@dataclass
class JobContext:
    """Everything shared by the run segments of one job."""

    job: Job
    model: LanguageModel
    workspace: Path
    max_steps: int
    max_retries: int
    timeout_ms: int
    reasoning_budget: str | int
    retry_base_delay_ms: int
    env: dict[str, str]
    storage: Storage | None
    listener: EventListener | None
    verbose: bool = False
    expert_keys: list[str] = field(default_factory=list)
    """Every expert key of the config (for initializeRuntime)."""
    sandbox: bool = False
    """Run exec and stdio skills in an OS sandbox."""
    extra_usage: Usage = field(default_factory=Usage)
    """Usage of nested runs started by tools, not yet added to the calling run's checkpoint."""
    nested_runner: Callable[..., Awaitable[dict[str, Any]]] | None = None
    """Runs an expert of the workspace's perstack.toml inside this job (create-expert's
    runExpert); set by the runner."""
    run_job: Callable[..., Awaitable[Checkpoint]] | None = None
    """Runs a job of its own with this job's model (:func:`runtime.run` with the model bound):
    create-expert's ``runEvalSet`` runs the cases of an eval set with it; set by the runner."""
    compactor: EventCompactor = field(default_factory=EventCompactor)
    """Keeps stored events from repeating the conversation that checkpoint files hold."""
    lockfile: Lockfile | None = None
    """perstack.lock, when present and readable: recorded MCP skills start on first use."""
    tool_call_mode: ToolCallMode = "native"
    """``text`` also takes a reply whose text is only a JSON tool call as that call (see
    :mod:`runtime.engine.text_calls`)."""
    env_files: tuple[Path, ...] = ()
    """The run's env files (``envPath``): the base skill refuses them like ``.env``."""
    resume_delegations: dict[str, tuple[Checkpoint, str | None]] = field(default_factory=dict)
    """Tool call id → a delegate checkpoint to go on from instead of its latest, and the
    follow-up query for it (``--resume-from`` a delegate's checkpoint); each is used once."""
    redactor: Redactor = field(default_factory=Redactor)
    """Takes the run's secret values out of tool results and skill stderr
    (:mod:`runtime.engine.secrets`)."""
    fresh_instructions: bool = False
    """An expert resumed from a stored checkpoint gets its current system prompt in place of
    the one it was stored with (a fork: its definition may have been edited since)."""
    recorder: Recorder | None = None
    """Appends each model call to the job's recording (:mod:`runtime.engine.recording`); made
    at the first call (:meth:`recorder_for_job`)."""
    fingerprints: Fingerprinter | None = None
    """The request fingerprints of a replay's model, for the recorder to share (each message is
    hashed once)."""

    def recorder_for_job(self) -> Recorder:
        """The job's recorder, made on first use (storage must be on)."""
        if self.recorder is None:
            from runtime.engine.recording import Fingerprinter, Recorder

            assert self.storage is not None
            fingerprints = self.fingerprints or Fingerprinter(self.workspace)
            self.recorder = Recorder(self.storage, self.job.id, fingerprints, self.redactor)
        return self.recorder

    def store_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Persist a checkpoint (nothing when storage is off)."""
        if self.storage is not None:
            self.storage.store_checkpoint(checkpoint)
            self.compactor.remember(checkpoint)

    def publish(self, event: PerstackEvent, *, coordinator: bool = True) -> None:
        """Store what ``event`` carries, then hand it to the listener.

        The order (store, then emit) means a listener that sees an event can rely on its
        checkpoint being on disk.
        """
        if isinstance(event, SkillStderr) and self.redactor:
            # A server's stderr is the one stored text that does not pass through a tool result.
            event = event.model_copy(update={"message": self.redactor.redact(event.message)})
        checkpoint: Checkpoint | None = getattr(event, "checkpoint", None)
        if checkpoint is not None:
            self.store_checkpoint(checkpoint)
        if self.storage is not None and not isinstance(event, _UNSTORED_EVENT_TYPES):
            line = self.compactor.to_json(event)
            self.storage.append_event(event.job_id, event.run_id, line)
        if coordinator and event.type in TERMINAL_EVENT_TYPES and checkpoint is not None:
            self.update_job(checkpoint, finished=event.type != "stopRunByDelegate")
        if self.listener is not None:
            try:
                self.listener(event)
            except Exception:
                # A broken listener (a UI bug) must not lose the agent's work.
                logger.exception("event listener raised on %s", event.type)

    def update_job(self, checkpoint: Checkpoint, *, finished: bool) -> None:
        """Reflect a coordinator checkpoint in job.json."""
        self.job = self.job.model_copy(
            update={
                "status": JOB_STATUS_BY_CHECKPOINT[checkpoint.status],
                "total_steps": checkpoint.step_number,
                "usage": checkpoint.usage,
                "finished_at": now_ms() if finished else None,
            }
        )
        if self.storage is not None:
            self.storage.store_job(self.job)

    def warn(self, message: str) -> None:
        """A diagnostic for the operator, through the ``runtime`` logger (never stdout).

        The CLI prints these on stderr; the studio keeps them off the terminal, which Textual
        draws on.
        """
        logger.warning(message)


@dataclass
class Segment:
    """One run segment: an expert running with its own context window and skills."""

    job: JobContext
    expert: ExpertRef
    run_id: str
    system_prompt: str
    tool_index: dict[str, tuple[Skill, ToolDefinition]]
    coordinator: bool = True
    delegate_versions: dict[str, str] = field(default_factory=dict)
    """Delegate expert key → version, for delegateTo targets."""
    invalid_args: dict[str, str] = field(default_factory=dict)
    """Tool call id → JSON error, for calls whose arguments did not parse."""
    definition_sha256: str | None = None
    """Hash of the expert definition this segment runs (reported in startRun)."""

    @property
    def tool_specs(self) -> list[ToolSpec]:
        """The tools as the model sees them."""
        return [
            ToolSpec(
                name=name, description=definition.description, input_schema=definition.input_schema
            )
            for name, (_, definition) in self.tool_index.items()
        ]

    def event_fields(self, checkpoint: Checkpoint) -> dict[str, Any]:
        """The base fields of a run event emitted at ``checkpoint``."""
        return {
            "job_id": self.job.job.id,
            "run_id": self.run_id,
            "expert_key": self.expert.key,
            "step_number": checkpoint.step_number,
        }

    def new_step(self, checkpoint: Checkpoint) -> Step:
        """A fresh step record for the step ``checkpoint`` is at."""
        return Step(step_number=checkpoint.step_number, started_at=now_ms())
