"""The state machine driver: run a state, store what its event carries, emit it, move on."""

from __future__ import annotations

import asyncio
import logging

from runtime.engine.context import JobContext, Segment
from runtime.engine.states import STATES, LoopState, StateName
from runtime.jobs.lock import INTERRUPTED_ERROR
from runtime.schema.checkpoint import Checkpoint, RunErrorInfo, Step
from runtime.schema.events import StopRunByError, now_ms

logger = logging.getLogger("runtime")


async def drive(seg: Segment, checkpoint: Checkpoint, query: str | None) -> Checkpoint:
    """Run one segment from ``checkpoint`` until it stops; return its final checkpoint.

    On cancellation (or Ctrl+C) the run ends with a ``stopRunByError`` named ``Interrupted``
    whose checkpoint is stored before the cancellation propagates, so an interrupted run can be
    continued.
    """
    state = LoopState(checkpoint=checkpoint, step=seg.new_step(checkpoint), query=query)
    name: StateName = "init"
    try:
        while name != "stopped":
            transition = await STATES[name](seg, state)
            state.checkpoint, state.step = transition.checkpoint, transition.step
            seg.job.publish(transition.event, coordinator=seg.coordinator)
            name = transition.next
    except (asyncio.CancelledError, KeyboardInterrupt) as stop:
        started = state.checkpoint.status == "proceeding"
        publish_interrupt(
            seg.job,
            seg.run_id,
            state.checkpoint,
            state.step,
            interrupt_reason(stop),
            started=started,
        )
        raise
    return state.checkpoint


def interrupt_reason(stop: BaseException) -> str:
    """How a run was stopped, from the cancellation's message (``"cancelled"`` without one)."""
    if isinstance(stop, asyncio.CancelledError) and stop.args and isinstance(stop.args[0], str):
        return stop.args[0] or "cancelled"
    if isinstance(stop, KeyboardInterrupt):
        return "interrupted by Ctrl+C"
    return "cancelled"


def publish_interrupt(
    job: JobContext,
    run_id: str,
    checkpoint: Checkpoint,
    step: Step,
    reason: str,
    *,
    started: bool,
) -> None:
    """End an interrupted run with a ``stopRunByError`` named ``Interrupted``.

    A run whose loop had started stops like a run that hit an error: its checkpoint becomes
    ``stoppedByError``, which continues exactly as the ``proceeding`` one it was (the query is
    added as a new user message). A run stopped before its first state keeps the checkpoint it
    would have started from unchanged, so continuing it later starts it as this run would have.

    The job itself is left to the runner (``interrupted``). Never raises: a failure to store
    is logged, and the cancellation goes on.
    """
    error = RunErrorInfo(
        name=INTERRUPTED_ERROR,
        message=f"Run {reason}; its last checkpoint is saved and the job can be continued",
        is_retryable=True,
    )
    stopped = (
        checkpoint.model_copy(update={"status": "stoppedByError", "error": error})
        if started
        else checkpoint
    )
    event = StopRunByError(
        job_id=job.job.id,
        run_id=run_id,
        expert_key=checkpoint.expert.key,
        step_number=checkpoint.step_number,
        checkpoint=stopped,
        step=step.model_copy(update={"finished_at": now_ms()}),
        error=error,
    )
    try:
        job.publish(event, coordinator=False)
    except Exception:
        logger.exception("could not store the end of interrupted run %s", run_id)
