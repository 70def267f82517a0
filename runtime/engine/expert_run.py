"""Running one expert: its skills, its segments, and the delegates it stops for.

An expert runs until it stops for a reason other than its delegates. When it stops for them,
they run concurrently, each as an expert of its own (to the depth limit), and their results
resume it. :mod:`runtime.engine.runner` starts the coordinator here; create-expert's nested runs
(:mod:`runtime.engine.nested`) start their experts here too.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import UTC, datetime

from runtime.config.loader import LoadedConfig
from runtime.config.resolve import ExpertDefinition, resolve_expert
from runtime.engine.context import JobContext, Segment
from runtime.engine.continuation import (
    RESUMABLE,
    stored_delegations,
    was_interrupted,
)
from runtime.engine.driver import drive, interrupt_reason, publish_interrupt
from runtime.engine.prompt import DelegateInfo, build_system_prompt
from runtime.engine.skillset import open_skills
from runtime.errors import PerstackError, UsageError
from runtime.schema.checkpoint import (
    Checkpoint,
    DelegatedBy,
    DelegationTarget,
    ExpertRef,
    Step,
    ToolCall,
    ToolResult,
    Usage,
)
from runtime.schema.events import InitializeRuntime, InteractiveToolCallInfo, now_ms
from runtime.schema.ids import new_id
from runtime.schema.messages import ExpertMessage, InstructionMessage, TextPart, first_text
from runtime.skills.delegate import DelegateSkill
from runtime.version import __version__

__all__ = [
    "DELEGATION_DEPTH_LIMIT",
    "check_delegates",
    "delegation_link",
    "result_text",
    "run_expert",
    "start_checkpoint",
]

DELEGATION_DEPTH_LIMIT = 8
"""Deeper delegation returns an error to the delegating expert (no runaway recursion)."""


async def run_expert(
    job: JobContext,
    loaded: LoadedConfig,
    expert: ExpertDefinition,
    checkpoint: Checkpoint,
    query: str | None,
    *,
    run_id: str,
    coordinator: bool,
    depth: int = 0,
    interactive_info: InteractiveToolCallInfo | None = None,
    resume_point: Checkpoint | None = None,
) -> Checkpoint:
    """Run an expert until it stops for a reason other than its delegates.

    Its skills stay up across its segments (a parent resuming after delegation does not respawn
    its MCP servers). Every segment gets a new run id and its own ``initializeRuntime``.

    An interrupt ends the open run with a stop event: :func:`drive` ends a run whose loop is
    going; a run interrupted before that (its skills starting) ends here, on ``resume_point``
    (the stored checkpoint a continuation starts from) or its start checkpoint, unchanged, so
    that the job continues from it again.
    """
    config = loaded.config
    expert.require_base_skill()  # a delegate without it fails when it is called, as in Perstack
    async with AsyncExitStack() as stack:
        _publish_initialize(job, expert, run_id, query, coordinator, interactive_info)
        not_started: Checkpoint | None = resume_point or checkpoint
        try:
            tool_index = await open_skills(
                job,
                stack,
                dict(expert.skills),
                run_id=run_id,
                coordinator=coordinator,
                base_command=config.perstack_base_skill_command,
            )
            delegates = [resolve_expert(loaded, key) for key in expert.delegates]
            for delegate in delegates:
                skill = DelegateSkill(delegate.key, delegate.description)
                for definition in skill.tools():
                    if definition.name in tool_index:
                        job.warn(
                            f'expert "{expert.key}": delegate tool {definition.name!r} of '
                            f'"{delegate.key}" clashes with another tool and is not offered'
                        )
                        continue
                    tool_index[definition.name] = (skill, definition)
            rules = [(name, skill.rule) for name, skill in expert.skills.items() if skill.rule]
            prompt = build_system_prompt(
                instruction=expert.instruction,
                now=datetime.now(UTC),
                cwd=str(job.workspace),
                skill_rules=rules,
                delegates=[
                    DelegateInfo(name=d.key, description=d.description or "") for d in delegates
                ],
            )
            if job.fresh_instructions:
                checkpoint = _with_instruction(checkpoint, prompt)
            # A checkpoint saved while delegates were running (e.g. the process was killed)
            # resumes its delegates, each from its own latest stored checkpoint.
            delegates_pending = checkpoint.status == "stoppedByDelegate"
            resuming = delegates_pending
            while True:
                if not delegates_pending:
                    segment = Segment(
                        job=job,
                        expert=_ref(expert),
                        run_id=run_id,
                        system_prompt=prompt,
                        tool_index=tool_index,
                        coordinator=coordinator,
                        delegate_versions={d.key: d.version for d in delegates},
                        definition_sha256=expert.sha256,
                    )
                    not_started = None
                    checkpoint = await drive(segment, checkpoint, query)
                    if checkpoint.status != "stoppedByDelegate":
                        return checkpoint
                checkpoint = await _run_delegates(
                    job, loaded, checkpoint, depth=depth, resuming=resuming
                )
                delegates_pending = resuming = False
                run_id = new_id()
                query = None
                _publish_initialize(job, expert, run_id, None, coordinator, None)
        except (asyncio.CancelledError, KeyboardInterrupt) as stop:
            if not_started is not None:
                step = Step(step_number=not_started.step_number, started_at=now_ms())
                publish_interrupt(
                    job, run_id, not_started, step, interrupt_reason(stop), started=False
                )
            raise


def _with_instruction(checkpoint: Checkpoint, prompt: str) -> Checkpoint:
    """``checkpoint`` with ``prompt`` as its system prompt (a fork of an edited expert)."""
    messages = checkpoint.messages
    if not messages or not isinstance(messages[0], InstructionMessage):
        return checkpoint  # a run not started yet: it builds its prompt itself
    if messages[0].contents and messages[0].contents[0].text == prompt:
        return checkpoint
    fresh = InstructionMessage(contents=[TextPart(text=prompt)], cache=messages[0].cache)
    return checkpoint.model_copy(update={"messages": [fresh, *messages[1:]]})


def _publish_initialize(
    job: JobContext,
    expert: ExpertDefinition,
    run_id: str,
    query: str | None,
    coordinator: bool,
    interactive_info: InteractiveToolCallInfo | None,
) -> None:
    job.publish(
        InitializeRuntime(
            job_id=job.job.id,
            run_id=run_id,
            runtime_version=__version__,
            expert_name=expert.name,
            experts=job.expert_keys,
            model=job.model.model_name,
            max_steps=job.max_steps,
            max_retries=job.max_retries,
            timeout=job.timeout_ms,
            query=query,
            interactive_tool_call=interactive_info,
        ),
        coordinator=coordinator,
    )


async def _run_delegates(
    job: JobContext,
    loaded: LoadedConfig,
    parent: Checkpoint,
    *,
    depth: int,
    resuming: bool = False,
) -> Checkpoint:
    """Run the delegates ``parent`` stopped for, concurrently; return the checkpoint to resume.

    Failures of a delegate (error, max steps, a skill that would not start, the depth limit)
    become error tool results for the parent instead of ending the job.

    ``resuming``: ``parent`` was stored while its delegates ran (the process died or was
    interrupted). Each delegate then goes on from its own latest stored checkpoint instead of
    starting over: a finished one's result is reused, an unfinished one continues (its steps
    numbered on from its last), one that never stored a checkpoint starts from its query.
    """
    targets = parent.delegate_to or []
    pending = parent.pending_tool_calls or []
    calls = {c.id: c for c in pending}
    stored = stored_delegations(job, parent) if resuming else {}

    async def one(target: DelegationTarget) -> tuple[ToolResult, Checkpoint | None]:
        call = calls[target.tool_call_id]
        skill_name = f"delegate/{target.expert.key}"

        def error(message: str) -> tuple[ToolResult, Checkpoint | None]:
            text = f"Delegation to {target.expert.key} failed: {message}"
            return (
                ToolResult(
                    id=call.id,
                    skill_name=skill_name,
                    tool_name=call.tool_name,
                    result=[TextPart(text=text)],
                    is_error=True,
                ),
                None,
            )

        query = call.args.get("query")
        if not isinstance(query, str) or not query.strip():
            return error("the query argument is missing; call the delegate with a query string")
        if depth + 1 > DELEGATION_DEPTH_LIMIT:
            return error(f"delegation depth limit ({DELEGATION_DEPTH_LIMIT}) reached")
        child_expert = resolve_expert(loaded, target.expert.key)
        child_run = new_id()
        chosen, follow_up = job.resume_delegations.pop(call.id, (None, None))
        prior = chosen or stored.get(call.id)
        final: Checkpoint
        if (
            chosen is None
            and prior is not None
            and prior.status not in RESUMABLE
            and not was_interrupted(prior)
        ):
            final = prior  # it had finished (or failed) before: its outcome stands
        else:
            if prior is not None:
                start = prior.model_copy(
                    update={
                        "id": new_id(),
                        "step_number": prior.step_number + 1,
                        "run_id": child_run,
                    }
                )
            else:
                start = start_checkpoint(
                    parent.job_id,
                    child_run,
                    child_expert,
                    step_number=parent.step_number + 1,
                    delegated_by=delegation_link(parent, call),
                )
            try:
                final = await run_expert(
                    job,
                    loaded,
                    child_expert,
                    start,
                    # Resumed mid-run: nothing new is asked, its conversation goes on; resumed
                    # from a checkpoint the user chose, it gets their query.
                    query if prior is None or prior.status == "init" else follow_up,
                    run_id=child_run,
                    coordinator=False,
                    depth=depth + 1,
                    resume_point=prior,
                )
            except PerstackError as failure:
                return error(str(failure))
        if final.status != "completed":
            reason = final.error.message if final.error else final.status
            result, _ = error(f"{final.status}: {reason}")
            return result, final
        text = result_text(final)
        return (
            ToolResult(
                id=call.id,
                skill_name=skill_name,
                tool_name=call.tool_name,
                result=[TextPart(text=text)],
            ),
            final,
        )

    outcomes = await asyncio.gather(*(one(target) for target in targets))
    results = [result for result, _ in outcomes]
    finals = [final for _, final in outcomes if final is not None]
    usage = parent.usage
    for final in finals:
        usage = usage + final.usage
    step = max([parent.step_number, *(f.step_number for f in finals)]) + 1
    done = {target.tool_call_id for target in targets}
    return parent.model_copy(
        update={
            "id": new_id(),
            "step_number": step,
            "usage": usage,
            "pending_tool_calls": [c for c in pending if c.id not in done] or None,
            "partial_tool_results": [*(parent.partial_tool_results or []), *results],
        }
    )


def _ref(expert: ExpertDefinition) -> ExpertRef:
    return ExpertRef(key=expert.key, name=expert.name, version=expert.version)


def delegation_link(parent: Checkpoint, call: ToolCall) -> DelegatedBy:
    """The link from a child run back to the call (and checkpoint) of its parent."""
    return DelegatedBy(
        expert=parent.expert,
        tool_call_id=call.id,
        tool_name=call.tool_name,
        checkpoint_id=parent.id,
        run_id=parent.run_id,
    )


def start_checkpoint(
    job_id: str,
    run_id: str,
    expert: ExpertDefinition,
    *,
    step_number: int,
    delegated_by: DelegatedBy | None = None,
) -> Checkpoint:
    """The ``init`` checkpoint a fresh run (coordinator, delegate or nested) starts from."""
    return Checkpoint(
        id=new_id(),
        job_id=job_id,
        run_id=run_id,
        status="init",
        step_number=step_number,
        messages=[],
        expert=_ref(expert),
        delegated_by=delegated_by,
        usage=Usage(),
    )


def result_text(checkpoint: Checkpoint) -> str:
    """The final answer of a finished run: its last expert message's text ("" if none)."""
    for message in reversed(checkpoint.messages):
        if isinstance(message, ExpertMessage):
            return first_text(message) or ""
    return ""


def check_delegates(loaded: LoadedConfig, expert: ExpertDefinition) -> None:
    """Fail before the job starts when any expert reachable from ``expert`` names a missing one."""
    seen: set[str] = set()
    queue = [expert]
    while queue:
        current = queue.pop()
        if current.key in seen:
            continue
        seen.add(current.key)
        for key in current.delegates:
            try:
                queue.append(resolve_expert(loaded, key))
            except UsageError:
                raise UsageError(
                    f'Delegate expert "{key}" not found: expert "{current.key}" lists it in '
                    f"delegates, but {loaded.label} does not define it. Define "
                    f'[experts."{key}"] or remove it from delegates.'
                ) from None
