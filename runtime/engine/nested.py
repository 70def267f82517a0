"""Nested runs: create-expert runs an expert it has just written, inside the calling job."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from runtime.config.loader import load_config
from runtime.config.resolve import resolve_expert
from runtime.engine.context import CURRENT_CALL, JobContext
from runtime.engine.expert_run import (
    check_delegates,
    delegation_link,
    result_text,
    run_expert,
    start_checkpoint,
)
from runtime.errors import PerstackError
from runtime.schema.events import TERMINAL_EVENT_TYPES
from runtime.schema.ids import new_id

__all__ = ["nested_run"]


async def nested_run(
    job: JobContext, expert_key: str, query: str, max_steps: int
) -> dict[str, Any]:
    """Run an expert of the workspace's perstack.toml inside this job, for create-expert.

    The file is read afresh (it was just written). The run is linked to the tool call that
    asked for it, like a delegation, so the event stream and the studio's tree nest it there.
    Its usage is added to the calling run's.
    """
    current = CURRENT_CALL.get()
    try:
        loaded = load_config(None, job.workspace)
        expert = resolve_expert(loaded, expert_key)
        check_delegates(loaded, expert)
    except PerstackError as error:
        return {"status": "notStarted", "error": str(error)}
    collector = _RunCollector()

    def tee(event: Any) -> None:
        collector(event)
        if job.listener is not None:
            job.listener(event)

    parent_step = current[1].step_number if current else 0
    nested = replace(
        job,
        listener=tee,
        max_steps=parent_step + max_steps,
        expert_keys=sorted(loaded.config.experts),
        nested_runner=None,
    )
    run_id = new_id()
    start = start_checkpoint(
        job.job.id,
        run_id,
        expert,
        step_number=parent_step + 1,
        delegated_by=delegation_link(current[1], current[0]) if current else None,
    )
    try:
        final = await run_expert(
            nested, loaded, expert, start, query, run_id=run_id, coordinator=False, depth=1
        )
    except PerstackError as error:
        return {"status": "notStarted", "error": str(error), "runs": collector.runs}
    job.extra_usage = job.extra_usage + final.usage
    usage = final.usage
    return {
        "status": final.status,
        "result": result_text(final) if final.status == "completed" else None,
        "error": final.error.message if final.error else None,
        "steps": final.step_number - parent_step,
        "usage": {"totalTokens": usage.total_tokens, "costUsd": usage.cost_usd},
        "runs": collector.runs,
        "problems": collector.problems,
    }


class _RunCollector:
    """Summarises a nested run's events: each expert run and the problems seen."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self._by_run: dict[str, dict[str, Any]] = {}
        self._depth: dict[str, int] = {}
        self._open: dict[tuple[str, str | None], dict[str, Any]] = {}

    def __call__(self, event: Any) -> None:
        kind = event.type
        if kind == "startRun":
            parent = event.initial_checkpoint.delegated_by
            key = (event.expert_key, parent.tool_call_id if parent else None)
            entry = self._open.get(key)
            if entry is None:
                depth = self._depth.get(parent.run_id, -1) + 1 if parent else 0
                entry = {"expert": event.expert_key, "depth": depth, "status": "running"}
                self.runs.append(entry)
                self._open[key] = entry
            self._by_run[event.run_id] = entry
            self._depth[event.run_id] = entry["depth"]
        elif kind == "resolveToolResults":
            for result in event.tool_results:
                if result.is_error:
                    text = " ".join(p.text for p in result.result if p.type == "textPart")
                    self.problems.append(f"{event.expert_key}: {result.tool_name}: {text[:200]}")
        elif kind == "retry":
            self.problems.append(f"{event.expert_key}: retry: {event.reason[:200]}")
        elif kind in TERMINAL_EVENT_TYPES and (entry := self._by_run.get(event.run_id)):
            entry["status"] = event.checkpoint.status
            entry["lastStep"] = event.step_number
            entry["totalTokens"] = event.checkpoint.usage.total_tokens
            if kind == "stopRunByError":
                self.problems.append(f"{event.expert_key}: stopped: {event.error.message}")
