"""The state machine driver: run a state, store what its event carries, emit it, move on."""

from __future__ import annotations

import asyncio

from runtime.checkpoint import Checkpoint
from runtime.loop.context import Segment
from runtime.loop.states import STATES, LoopState, StateName


async def drive(seg: Segment, checkpoint: Checkpoint, query: str | None) -> Checkpoint:
    """Run one segment from ``checkpoint`` until it stops; return its final checkpoint.

    On cancellation the latest checkpoint is stored before the cancellation propagates, so a
    cancelled run can be continued.
    """
    state = LoopState(checkpoint=checkpoint, step=seg.new_step(checkpoint), query=query)
    name: StateName = "init"
    try:
        while name != "stopped":
            transition = await STATES[name](seg, state)
            state.checkpoint, state.step = transition.checkpoint, transition.step
            seg.job.publish(transition.event, coordinator=seg.coordinator)
            name = transition.next
    except asyncio.CancelledError:
        seg.job.store_checkpoint(state.checkpoint)
        raise
    return state.checkpoint
