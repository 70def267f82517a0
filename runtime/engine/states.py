"""The agent loop's states (§5.1 of the reference): one function per state, one event each.

Every state function takes the segment and the current :class:`LoopState` and returns a
:class:`Transition`: the event to publish, the next state, and the new checkpoint and step.
Checkpoints and steps are immutable; each transition builds new ones.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from runtime.config.schema import BASE_SKILL_NAME
from runtime.engine.context import CURRENT_CALL, CURRENT_GENERATION, Segment
from runtime.engine.text_calls import parse_text_tool_calls
from runtime.errors import ModelError, PerstackError
from runtime.llm import (
    Finish,
    GenerationRequest,
    ReasoningDelta,
    TextDelta,
    ToolCallChunk,
)
from runtime.schema.checkpoint import (
    Checkpoint,
    DelegationTarget,
    ExpertRef,
    RunErrorInfo,
    Step,
    ToolCall,
    ToolResult,
    Usage,
)
from runtime.schema.events import (
    AttemptCompletion,
    CallDelegate,
    CallInteractiveTool,
    CallTools,
    CompleteRun,
    CompleteStreamingReasoning,
    CompleteStreamingRunResult,
    ContinueToNextStep,
    FinishAllToolCalls,
    FinishToolCall,
    PerstackEvent,
    ResolveToolResults,
    ResumeToolCalls,
    Retry,
    StartGeneration,
    StartRun,
    StartStreamingReasoning,
    StartStreamingRunResult,
    StopRunByDelegate,
    StopRunByError,
    StopRunByExceededMaxSteps,
    StopRunByInteractiveTool,
    StreamReasoning,
    StreamRunResult,
    now_ms,
)
from runtime.schema.ids import new_id
from runtime.schema.messages import (
    ExpertMessage,
    ExpertPart,
    FileInlinePart,
    ImageInlinePart,
    InstructionMessage,
    Message,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolMessage,
    ToolResultPart,
    UserMessage,
    first_text,
)
from runtime.skills.base import inline_file_results
from runtime.skills.types import ToolOutcome

StateName = Literal[
    "init",
    "preparingForStep",
    "generatingToolCall",
    "callingTool",
    "resolvingToolResult",
    "generatingRunResult",
    "callingDelegate",
    "callingInteractiveTool",
    "finishingStep",
    "stopped",
]

MAX_RETRY_DELAY_MS = 30_000
_SKIPPED_BY_COMPLETION = (
    "Not executed: attemptCompletion was called in the same reply. Call attemptCompletion alone."
)


@dataclass
class LoopState:
    """What the loop carries between states."""

    checkpoint: Checkpoint
    step: Step
    query: str | None = None


@dataclass(frozen=True)
class Transition:
    """The outcome of one state."""

    event: PerstackEvent
    next: StateName
    checkpoint: Checkpoint
    step: Step


StateFunction = Callable[[Segment, LoopState], Awaitable[Transition]]


_Model = TypeVar("_Model", bound=BaseModel)


def _with(model: _Model, **update: Any) -> _Model:
    return model.model_copy(update=update)


def _finish(step: Step) -> Step:
    return _with(step, finished_at=now_ms())


def _add_usage(checkpoint: Checkpoint, step: Step, usage: Usage) -> tuple[Checkpoint, Step]:
    return _with(checkpoint, usage=checkpoint.usage + usage), _with(step, usage=step.usage + usage)


# Init ----------------------------------------------------------------------------------------


async def init(seg: Segment, state: LoopState) -> Transition:
    """Build the input messages for a fresh, continued or resumed run (§4.6).

    A run stopped for delegates or for an interactive answer resumes with its pending calls and
    partial results (the answer, or the delegates' results, already merged in by the runner);
    a delegate resumed after its process died (no query: nothing new was asked) goes on from its
    conversation as stored; any other run gets the query as a new user message.
    """
    checkpoint = state.checkpoint
    inputs: list[Message] = []
    if checkpoint.status == "init":
        inputs.append(InstructionMessage(contents=[TextPart(text=seg.system_prompt)], cache=True))
    resumed = state.query is None and checkpoint.status != "init"
    if checkpoint.status not in ("stoppedByDelegate", "stoppedByInteractiveTool") and not resumed:
        inputs.append(UserMessage(contents=[TextPart(text=state.query or "")]))
    started = _with(
        checkpoint,
        status="proceeding",
        messages=[*checkpoint.messages, *inputs],
        run_id=seg.run_id,
        error=None,
        delegate_to=None,
    )
    step = _with(seg.new_step(started), input_messages=inputs)
    event = StartRun(
        **seg.event_fields(checkpoint),
        initial_checkpoint=checkpoint,
        input_messages=inputs,
        definition_sha256=seg.definition_sha256,
    )
    return Transition(event, "preparingForStep", started, step)


# PreparingForStep ----------------------------------------------------------------------------


async def preparing_for_step(seg: Segment, state: LoopState) -> Transition:
    """Resume pending calls, flush partial results, or start a generation."""
    checkpoint = state.checkpoint
    if checkpoint.pending_tool_calls:
        event: PerstackEvent = ResumeToolCalls(
            **seg.event_fields(checkpoint),
            pending_tool_calls=checkpoint.pending_tool_calls,
            partial_tool_results=checkpoint.partial_tool_results or [],
        )
        step = _with(
            state.step,
            pending_tool_calls=checkpoint.pending_tool_calls,
            partial_tool_results=checkpoint.partial_tool_results or [],
        )
        return Transition(event, "callingTool", checkpoint, step)
    if checkpoint.partial_tool_results:
        message = _tool_message(checkpoint.partial_tool_results)
        updated = _with(
            checkpoint,
            messages=[*checkpoint.messages, message],
            partial_tool_results=None,
            pending_tool_calls=None,
        )
        step = _with(state.step, new_messages=[*state.step.new_messages, message])
        event = FinishAllToolCalls(**seg.event_fields(checkpoint), new_messages=[message])
        return Transition(event, "finishingStep", updated, step)
    if checkpoint.retry_count:
        delay = min(
            seg.job.retry_base_delay_ms * 2 ** (checkpoint.retry_count - 1), MAX_RETRY_DELAY_MS
        )
        # Jitter spreads retries of parallel runs hitting the same rate limit.
        await asyncio.sleep(delay * random.uniform(0.8, 1.2) / 1000)
    event = StartGeneration(**seg.event_fields(checkpoint), messages=checkpoint.messages)
    return Transition(event, "generatingToolCall", checkpoint, state.step)


# Generation ----------------------------------------------------------------------------------


@dataclass
class _Generated:
    text: str = ""
    reasoning: str = ""
    signature: str | None = None
    tool_calls: list[ToolCallChunk] = field(default_factory=list)
    finish: Finish | None = None


async def _generate(seg: Segment, checkpoint: Checkpoint, *, with_tools: bool) -> _Generated:
    """Run one generation, publishing its reasoning and text as streaming events.

    Text is streamed as it arrives in both generation states, not only in GeneratingRunResult
    as in Perstack: a local model can take half a minute over a text-only answer. A reply
    that turns out to end with tool calls was not the result after all; consumers learn that
    from the ``callTools`` that follows its ``completeStreamingRunResult``.
    """
    job = seg.job
    request = GenerationRequest(
        messages=checkpoint.messages,
        tools=seg.tool_specs if with_tools else [],
        reasoning_budget=job.reasoning_budget,
        timeout_ms=job.timeout_ms,
    )
    fields = seg.event_fields(checkpoint)
    out = _Generated()
    reasoning_open = result_open = False
    prepare = getattr(job.model, "prepare", None)
    if prepare is not None:
        # Loading a client library (litellm: seconds) is not generating: outside the deadline,
        # or a short timeout would expire before the request is even sent.
        await prepare()
    CURRENT_GENERATION.set((seg.expert.key, seg.run_id, checkpoint.step_number))
    try:
        # Enforced here as well as by the model, so every LanguageModel gets the same limit.
        async with asyncio.timeout(job.timeout_ms / 1000):
            async for chunk in job.model.stream(request):
                if isinstance(chunk, ReasoningDelta):
                    if not reasoning_open:
                        job.publish(StartStreamingReasoning(**fields), coordinator=seg.coordinator)
                        reasoning_open = True
                    out.reasoning += chunk.text
                    job.publish(
                        StreamReasoning(**fields, delta=chunk.text), coordinator=seg.coordinator
                    )
                elif isinstance(chunk, TextDelta):
                    if reasoning_open:
                        job.publish(
                            CompleteStreamingReasoning(**fields, text=out.reasoning),
                            coordinator=seg.coordinator,
                        )
                        reasoning_open = False
                    if not result_open:
                        job.publish(StartStreamingRunResult(**fields), coordinator=seg.coordinator)
                        result_open = True
                    job.publish(
                        StreamRunResult(**fields, delta=chunk.text), coordinator=seg.coordinator
                    )
                    out.text += chunk.text
                elif isinstance(chunk, ToolCallChunk):
                    out.tool_calls.append(chunk)
                else:
                    out.finish = chunk
                    out.signature = chunk.reasoning_signature
    except TimeoutError as error:
        raise ModelError(
            f"Generation timed out after {job.timeout_ms} ms", name="TimeoutError", retryable=True
        ) from error
    if reasoning_open:
        job.publish(
            CompleteStreamingReasoning(**fields, text=out.reasoning), coordinator=seg.coordinator
        )
    if result_open:
        job.publish(
            CompleteStreamingRunResult(**fields, text=out.text), coordinator=seg.coordinator
        )
    if out.finish is None:
        raise ModelError(
            "The model stream ended without a finish", name="IncompleteStream", retryable=True
        )
    if job.storage is not None:
        _record(seg, checkpoint, request, out, out.finish)
    return out


def _record(
    seg: Segment, checkpoint: Checkpoint, request: GenerationRequest, out: _Generated, end: Finish
) -> None:
    # Imported after the first answer: the recording is not on a run's way to its first request.
    from runtime.engine.recording import recorded_answer

    recorder = seg.job.recorder_for_job()
    try:
        recorder.record(
            expert_key=seg.expert.key,
            run_id=seg.run_id,
            step_number=checkpoint.step_number,
            model=seg.job.model.model_name,
            context_window=seg.job.model.context_window(),
            request=request,
            answer=recorded_answer(
                text=out.text,
                reasoning=out.reasoning,
                signature=out.signature,
                tool_calls=out.tool_calls,
                usage=end.usage,
                finish_reason=end.finish_reason,
            ),
        )
    except PerstackError as error:
        # The recording serves replays; losing it must not lose the run.
        seg.job.warn(f"model call not recorded: {error}")


def _expert_parts(generated: _Generated) -> list[ExpertPart]:
    parts: list[ExpertPart] = []
    if generated.reasoning:
        parts.append(ThinkingPart(thinking=generated.reasoning, signature=generated.signature))
    if generated.text.strip():
        parts.append(TextPart(text=generated.text))
    return parts


def _context_usage(seg: Segment, usage: Usage, checkpoint: Checkpoint) -> Checkpoint:
    window = seg.job.model.context_window()
    if not window:
        return checkpoint
    # Occupancy of the last request, not Perstack's cumulative ratio (which exceeds 1).
    occupancy = (usage.input_tokens + usage.output_tokens) / window
    return _with(checkpoint, context_window=window, context_window_usage=round(occupancy, 4))


def _retry_or_stop(
    seg: Segment, state: LoopState, error: ModelError, usage: Usage | None = None
) -> Transition:
    checkpoint, step = state.checkpoint, state.step
    if usage is not None:
        checkpoint, step = _add_usage(checkpoint, step, usage)
    retries = checkpoint.retry_count or 0
    if error.retryable and retries < seg.job.max_retries:
        reason = json.dumps({"error": error.name, "message": error.message})
        notice = UserMessage(contents=[TextPart(text=reason)])
        checkpoint = _with(
            checkpoint, messages=[*checkpoint.messages, notice], retry_count=retries + 1
        )
        step = _with(step, new_messages=[*step.new_messages, notice])
        event: PerstackEvent = Retry(
            **seg.event_fields(checkpoint),
            reason=reason,
            new_messages=[notice],
            usage=usage or Usage(),
        )
        return Transition(event, "finishingStep", checkpoint, step)
    message = error.message
    name = error.name
    if error.retryable:
        message = f"Max retries ({seg.job.max_retries}) exceeded: {message}"
        name = "MaxRetriesExceeded" if name == "NoOutput" else name
    info = RunErrorInfo(
        name=name, message=message, status_code=error.status_code, is_retryable=error.retryable
    )
    checkpoint = _with(checkpoint, status="stoppedByError", error=info)
    step = _finish(step)
    stop = StopRunByError(
        **seg.event_fields(checkpoint), checkpoint=checkpoint, step=step, error=info
    )
    return Transition(stop, "stopped", checkpoint, step)


def _parse_args(seg: Segment, chunk: ToolCallChunk) -> dict[str, Any]:
    try:
        args = json.loads(chunk.arguments or "{}")
    except json.JSONDecodeError as error:
        seg.invalid_args[chunk.id] = f"invalid JSON arguments ({error.msg} at position {error.pos})"
        return {}
    if not isinstance(args, dict):
        seg.invalid_args[chunk.id] = "arguments must be a JSON object"
        return {}
    return args


_KIND_ORDER = {"mcp": 0, "delegate": 1, "interactive": 2}


async def generating_tool_call(seg: Segment, state: LoopState) -> Transition:
    """Ask the model for the next tool calls (or a final text answer).

    With ``toolCallMode = "text"``, a reply whose text is nothing but calls to known tools
    (:mod:`runtime.engine.text_calls`) is taken as those calls.
    """
    try:
        generated = await _generate(seg, state.checkpoint, with_tools=True)
    except ModelError as error:
        return _retry_or_stop(seg, state, error)
    assert generated.finish is not None
    usage = generated.finish.usage
    checkpoint, step = _add_usage(state.checkpoint, state.step, usage)
    checkpoint = _context_usage(seg, usage, checkpoint)
    if generated.finish.finish_reason == "length":
        return _retry_or_stop(
            seg,
            LoopState(checkpoint, step),
            ModelError(
                "Generation length exceeded. Try again.", name="LengthExceeded", retryable=True
            ),
        )
    if not generated.tool_calls and seg.job.tool_call_mode == "text":
        written = parse_text_tool_calls(generated.text, seg.tool_index)
        if written:
            # The text was the calls, not an answer: keep only the calls in the conversation.
            generated.tool_calls, generated.text = written, ""
    if not generated.tool_calls:
        if not generated.text.strip():
            return _retry_or_stop(
                seg,
                LoopState(checkpoint, step),
                ModelError(
                    "You must generate a tool call or provide a response. Try again.",
                    name="NoOutput",
                    retryable=True,
                ),
            )
        # A text-only reply is the run's result (implicit completion).
        message = ExpertMessage(contents=_expert_parts(generated))
        checkpoint = _with(
            checkpoint, messages=[*checkpoint.messages, message], status="completed", retry_count=0
        )
        step = _finish(_with(step, new_messages=[*step.new_messages, message]))
        event: PerstackEvent = CompleteRun(
            **seg.event_fields(checkpoint),
            checkpoint=checkpoint,
            step=step,
            text=generated.text,
            usage=usage,
        )
        return Transition(event, "stopped", checkpoint, step)

    calls: list[ToolCall] = []
    for chunk in generated.tool_calls:
        owner = seg.tool_index.get(chunk.name)
        skill_name = owner[0].name if owner else ""
        calls.append(
            ToolCall(
                id=chunk.id,
                skill_name=skill_name,
                tool_name=chunk.name,
                args=_parse_args(seg, chunk),
            )
        )
    calls.sort(
        key=lambda c: (
            _KIND_ORDER[seg.tool_index[c.tool_name][0].kind] if c.tool_name in seg.tool_index else 0
        )
    )
    parts: list[ExpertPart] = _expert_parts(generated)
    parts.extend(ToolCallPart(tool_call_id=c.id, tool_name=c.tool_name, args=c.args) for c in calls)
    message = ExpertMessage(contents=parts)
    checkpoint = _with(checkpoint, messages=[*checkpoint.messages, message], retry_count=0)
    step = _with(
        step, new_messages=[*step.new_messages, message], tool_calls=calls, pending_tool_calls=calls
    )
    event = CallTools(
        **seg.event_fields(checkpoint), new_message=message, tool_calls=calls, usage=usage
    )
    return Transition(event, "callingTool", checkpoint, step)


# CallingTool ---------------------------------------------------------------------------------


def _result(call: ToolCall, outcome: ToolOutcome) -> ToolResult:
    return ToolResult(
        id=call.id,
        skill_name=call.skill_name,
        tool_name=call.tool_name,
        result=list(outcome.contents),
        is_error=True if outcome.is_error else None,
    )


async def _execute(seg: Segment, call: ToolCall, checkpoint: Checkpoint) -> ToolResult:
    if call.id in seg.invalid_args:
        outcome = ToolOutcome.error(
            f"Error calling tool {call.tool_name}: {seg.invalid_args.pop(call.id)}. "
            "Call it again with valid JSON arguments."
        )
        return _result(call, outcome)
    owner = seg.tool_index.get(call.tool_name)
    if owner is None:
        available = ", ".join(sorted(seg.tool_index))
        outcome = ToolOutcome.error(
            f"Tool {call.tool_name!r} not found. Available tools: {available}"
        )
        return _result(call, outcome)
    skill, _ = owner
    token = CURRENT_CALL.set((call, checkpoint))
    try:
        outcome = await skill.call(call.tool_name, call.args)
    finally:
        CURRENT_CALL.reset(token)
    job = seg.job
    if call.tool_name in ("readImageFile", "readPdfFile") and not outcome.is_error:
        # Inlining reads up to 30 MB; keep that off the event loop. Whichever skill named the
        # file, it is read only from inside the workspace, never from storage or an env file.
        outcome = await asyncio.to_thread(
            inline_file_results,
            call.tool_name,
            outcome,
            workspace=job.workspace,
            storage_dir=job.storage.root if job.storage else None,
            env_files=job.env_files,
        )
    # Every skill's result passes here once, before the conversation, checkpoints and events
    # hold it: the one place where the run's secret values are taken out.
    return _result(call, job.redactor.redact_outcome(outcome))


def _is_completion(call: ToolCall) -> bool:
    return call.tool_name == "attemptCompletion" and call.skill_name.startswith(BASE_SKILL_NAME)


async def calling_tool(seg: Segment, state: LoopState) -> Transition:
    """Run the step's tool calls (MCP calls in parallel) or handle attemptCompletion."""
    checkpoint, step = state.checkpoint, state.step
    calls = list(step.pending_tool_calls or step.tool_calls or [])
    fields = seg.event_fields(checkpoint)
    completion = next((c for c in calls if _is_completion(c)), None)
    if completion is not None:
        result = await _execute(seg, completion, checkpoint)
        others = [
            _result(c, ToolOutcome.error(_SKIPPED_BY_COMPLETION))
            for c in calls
            if c is not completion
        ]
        remaining = _remaining_todos(result)
        if remaining or result.is_error:
            results = [result, *others]
            step = _with(step, tool_results=results, pending_tool_calls=None)
            event: PerstackEvent = ResolveToolResults(**fields, tool_results=results)
            return Transition(event, "resolvingToolResult", checkpoint, step)
        last_text = _last_expert_text(checkpoint)
        if last_text:
            tool_message = _tool_message([result, *others])
            answer = ExpertMessage(contents=[TextPart(text=last_text)])
            checkpoint = _with(
                checkpoint,
                messages=[*checkpoint.messages, tool_message, answer],
                status="completed",
            )
            step = _finish(
                _with(
                    step,
                    tool_results=[result, *others],
                    pending_tool_calls=None,
                    new_messages=[*step.new_messages, tool_message, answer],
                )
            )
            event = CompleteRun(
                **fields, checkpoint=checkpoint, step=step, text=last_text, usage=Usage()
            )
            return Transition(event, "stopped", checkpoint, step)
        step = _with(step, tool_results=[result, *others], pending_tool_calls=None)
        return Transition(
            AttemptCompletion(**fields, tool_result=result), "generatingRunResult", checkpoint, step
        )

    by_kind: dict[str, list[ToolCall]] = {"mcp": [], "delegate": [], "interactive": []}
    for c in calls:
        owner = seg.tool_index.get(c.tool_name)
        # Unknown tools and bad arguments are answered with an error like any MCP call.
        kind = owner[0].kind if owner and c.id not in seg.invalid_args else "mcp"
        by_kind[kind].append(c)
    results = list(step.partial_tool_results or [])
    results.extend(await asyncio.gather(*(_execute(seg, c, checkpoint) for c in by_kind["mcp"])))
    if seg.job.extra_usage.total_tokens or seg.job.extra_usage.cost_usd:
        # Nested runs started by a tool (create-expert's runExpert) are paid by this run.
        checkpoint, step = _add_usage(checkpoint, step, seg.job.extra_usage)
        seg.job.extra_usage = Usage()
    waiting = [*by_kind["delegate"], *by_kind["interactive"]]
    if waiting:
        step = _with(step, partial_tool_results=results, pending_tool_calls=waiting)
        checkpoint = _with(checkpoint, partial_tool_results=results, pending_tool_calls=waiting)
        message = _last_expert_message(checkpoint)
        if by_kind["delegate"]:
            event = CallDelegate(
                **fields, new_message=message, tool_calls=by_kind["delegate"], usage=Usage()
            )
            return Transition(event, "callingDelegate", checkpoint, step)
        event = CallInteractiveTool(
            **fields, new_message=message, tool_call=by_kind["interactive"][0], usage=Usage()
        )
        return Transition(event, "callingInteractiveTool", checkpoint, step)
    step = _with(step, tool_results=results, pending_tool_calls=None, partial_tool_results=None)
    checkpoint = _with(checkpoint, pending_tool_calls=None, partial_tool_results=None)
    return Transition(
        ResolveToolResults(**fields, tool_results=results), "resolvingToolResult", checkpoint, step
    )


def _last_expert_message(checkpoint: Checkpoint) -> ExpertMessage:
    for message in reversed(checkpoint.messages):
        if isinstance(message, ExpertMessage):
            return message
    return ExpertMessage(contents=[])


# CallingDelegate / CallingInteractiveTool ----------------------------------------------------


async def calling_delegate(seg: Segment, state: LoopState) -> Transition:
    """Stop the run so the runner can start the delegates (single or parallel)."""
    checkpoint, step = state.checkpoint, _finish(state.step)
    targets = []
    for c in checkpoint.pending_tool_calls or []:
        owner = seg.tool_index.get(c.tool_name)
        if owner is None or owner[0].kind != "delegate":
            continue
        key = owner[0].name
        query = c.args.get("query")
        targets.append(
            DelegationTarget(
                expert=ExpertRef(
                    key=key, name=key, version=seg.delegate_versions.get(key, "1.0.0")
                ),
                tool_call_id=c.id,
                tool_name=c.tool_name,
                query=query if isinstance(query, str) else "",
            )
        )
    stopped = _with(checkpoint, status="stoppedByDelegate", delegate_to=targets)
    event = StopRunByDelegate(**seg.event_fields(stopped), checkpoint=stopped, step=step)
    return Transition(event, "stopped", stopped, step)


async def calling_interactive_tool(seg: Segment, state: LoopState) -> Transition:
    """Stop the run until the user answers the first pending interactive call."""
    checkpoint, step = state.checkpoint, _finish(state.step)
    stopped = _with(checkpoint, status="stoppedByInteractiveTool")
    event = StopRunByInteractiveTool(**seg.event_fields(stopped), checkpoint=stopped, step=step)
    return Transition(event, "stopped", stopped, step)


def _remaining_todos(result: ToolResult) -> list[Any]:
    text = next((p.text for p in result.result if isinstance(p, TextPart)), "")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return []
    remaining = data.get("remainingTodos") if isinstance(data, dict) else None
    return remaining if isinstance(remaining, list) else []


def _last_expert_text(checkpoint: Checkpoint) -> str | None:
    for message in reversed(checkpoint.messages):
        if isinstance(message, ExpertMessage):
            text = first_text(message)
            return text if text and text.strip() else None
    return None


def _tool_message(results: list[ToolResult]) -> ToolMessage:
    parts = [
        ToolResultPart(
            tool_call_id=r.id,
            tool_name=r.tool_name,
            contents=[
                p for p in r.result if isinstance(p, TextPart | ImageInlinePart | FileInlinePart)
            ],
            is_error=r.is_error,
        )
        for r in results
    ]
    return ToolMessage(contents=parts)


# ResolvingToolResult -------------------------------------------------------------------------


async def resolving_tool_result(seg: Segment, state: LoopState) -> Transition:
    """Add the step's tool results to the conversation as one tool message."""
    message = _tool_message(list(state.step.tool_results or []))
    checkpoint = _with(state.checkpoint, messages=[*state.checkpoint.messages, message])
    step = _with(state.step, new_messages=[*state.step.new_messages, message])
    event = FinishToolCall(**seg.event_fields(checkpoint), new_messages=[message])
    return Transition(event, "finishingStep", checkpoint, step)


# GeneratingRunResult -------------------------------------------------------------------------


async def generating_run_result(seg: Segment, state: LoopState) -> Transition:
    """Generate the final answer with no tools, streaming it."""
    checkpoint, step = state.checkpoint, state.step
    if not isinstance(checkpoint.messages[-1], ToolMessage):
        message = _tool_message(list(step.tool_results or []))
        checkpoint = _with(checkpoint, messages=[*checkpoint.messages, message])
        step = _with(step, new_messages=[*step.new_messages, message])
    try:
        generated = await _generate(seg, checkpoint, with_tools=False)
    except ModelError as error:
        return _retry_or_stop(seg, LoopState(checkpoint, step), error)
    assert generated.finish is not None
    usage = generated.finish.usage
    checkpoint, step = _add_usage(checkpoint, step, usage)
    checkpoint = _context_usage(seg, usage, checkpoint)
    parts = _expert_parts(generated)
    if not any(isinstance(p, TextPart) for p in parts):
        parts.append(TextPart(text=generated.text))
    answer = ExpertMessage(contents=parts)
    checkpoint = _with(
        checkpoint, messages=[*checkpoint.messages, answer], status="completed", retry_count=0
    )
    step = _finish(_with(step, new_messages=[*step.new_messages, answer]))
    event = CompleteRun(
        **seg.event_fields(checkpoint),
        checkpoint=checkpoint,
        step=step,
        text=generated.text,
        usage=usage,
    )
    return Transition(event, "stopped", checkpoint, step)


# FinishingStep -------------------------------------------------------------------------------


async def finishing_step(seg: Segment, state: LoopState) -> Transition:
    """Close the step; stop at maxSteps (job-global), else move to the next step."""
    checkpoint, step = state.checkpoint, _finish(state.step)
    fields = seg.event_fields(checkpoint)
    if checkpoint.step_number >= seg.job.max_steps:
        stopped = _with(checkpoint, status="stoppedByExceededMaxSteps")
        event: PerstackEvent = StopRunByExceededMaxSteps(**fields, checkpoint=stopped, step=step)
        return Transition(event, "stopped", stopped, step)
    following = _with(checkpoint, id=new_id(), step_number=checkpoint.step_number + 1)
    event = ContinueToNextStep(
        **fields, checkpoint=checkpoint, step=step, next_checkpoint=following
    )
    return Transition(event, "preparingForStep", following, seg.new_step(following))


STATES: dict[StateName, StateFunction] = {
    "init": init,
    "preparingForStep": preparing_for_step,
    "generatingToolCall": generating_tool_call,
    "callingTool": calling_tool,
    "resolvingToolResult": resolving_tool_result,
    "generatingRunResult": generating_run_result,
    "callingDelegate": calling_delegate,
    "callingInteractiveTool": calling_interactive_tool,
    "finishingStep": finishing_step,
}


# Recovery ------------------------------------------------------------------------------------


def recover_unstored_step(checkpoint: Checkpoint, events: Iterable[PerstackEvent]) -> Checkpoint:
    """``checkpoint`` moved past a step whose tools all ran but whose end was never stored.

    A checkpoint is stored when a step ends; a process killed between a step's tool results and
    that moment would, when continued, ask the model again and run the tools again (a file
    written twice). The step's ``callTools`` and ``resolveToolResults`` events, stored as they
    happened, hold all of it: this rebuilds the step's end from them. Only plain steps are
    rebuilt: every call resolved, none a delegation, an interactive tool or attemptCompletion
    (those steps end in ways of their own). Anything else returns ``checkpoint`` unchanged.

    Args:
        checkpoint: A run's latest stored checkpoint.
        events: That run segment's stored events (messages put back).
    """
    step = checkpoint.step_number + 1
    calls: CallTools | None = None
    results: ResolveToolResults | None = None
    for event in events:
        if event.run_id != checkpoint.run_id or getattr(event, "step_number", None) != step:
            continue
        if isinstance(event, CallTools):
            calls = event
        elif isinstance(event, ResolveToolResults):
            results = event
    if calls is None or results is None or not calls.tool_calls:
        return checkpoint
    called = [c.id for c in calls.tool_calls]
    if any(c.tool_name == "attemptCompletion" for c in calls.tool_calls):
        return checkpoint
    if sorted(called) != sorted(r.id for r in results.tool_results):
        return checkpoint
    by_id = {r.id: r for r in results.tool_results}
    ordered = [by_id[call_id] for call_id in called]
    return _with(
        checkpoint,
        id=new_id(),
        step_number=step,
        status="proceeding",
        messages=[*checkpoint.messages, calls.new_message, _tool_message(ordered)],
        usage=checkpoint.usage + calls.usage,
        pending_tool_calls=None,
        partial_tool_results=None,
        error=None,
    )
