"""``run()``: wire a RunSetting to the config, the model, storage and the loop. Wiring only."""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from runtime.config.env import env_file_paths, load_env
from runtime.config.loader import (
    EffectiveSettings,
    ExpertDefinition,
    LoadedConfig,
    effective_settings,
    load_config,
    parse_config,
    resolve_expert,
    resolve_tool_call_mode,
)
from runtime.engine.context import CURRENT_CALL, JobContext, Segment
from runtime.engine.driver import drive, interrupt_reason, publish_interrupt
from runtime.engine.prompt import DelegateInfo, build_system_prompt
from runtime.engine.secrets import Redactor
from runtime.engine.skillset import open_skills
from runtime.engine.states import recover_unstored_step
from runtime.errors import CheckpointError, ConfigError, PerstackError, StorageError, UsageError
from runtime.jobs.lock import INTERRUPTED_ERROR, JOB_INTERRUPTED
from runtime.jobs.events import read_job_events
from runtime.jobs.store import Storage, default_storage_root
from runtime.llm import LanguageModel
from runtime.schema.checkpoint import (
    Checkpoint,
    DelegatedBy,
    DelegationTarget,
    ExpertRef,
    Job,
    Step,
    ToolCall,
    ToolResult,
    Usage,
)
from runtime.schema.events import (
    TERMINAL_EVENT_TYPES,
    EventListener,
    InitializeRuntime,
    InteractiveToolCallInfo,
    PerstackEvent,
    StartRun,
    now_ms,
)
from runtime.schema.ids import new_id
from runtime.schema.messages import ExpertMessage, TextPart, first_text
from runtime.schema.setting import RunSetting
from runtime.skills.delegate import DelegateSkill
from runtime.skills.lockfile import load_lockfile
from runtime.version import __version__


async def run(
    setting: RunSetting,
    event_listener: EventListener | None = None,
    *,
    model: LanguageModel | None = None,
    config: LoadedConfig | None = None,
) -> Checkpoint:
    """Run an expert and return its final checkpoint.

    Args:
        setting: What to run. Unset fields fall back to perstack.toml, then to Perstack's defaults.
        event_listener: Called with every event, in order, on the running event loop, after any
            checkpoint the event carries has been stored. It must return quickly and not block;
            an exception it raises is logged and does not stop the run. These are the same events
            ``perstack run`` prints, one JSON object per line.
        model: A language model to use instead of the provider's (e.g. ``ScriptedModel``).
        config: An already loaded perstack.toml (skips discovery and loading).

    Returns:
        The final checkpoint. Its ``status`` tells how the run ended (``completed``,
        ``stoppedByInteractiveTool``, ``stoppedByExceededMaxSteps``, ``stoppedByError``); the
        last event carries the same checkpoint.

    Raises:
        ConfigError: perstack.toml is missing or invalid, or an API key is not set.
        UsageError: the expert is unknown or the continuation options are inconsistent.
        SkillError: a skill could not be started.
        CheckpointError: the job or checkpoint to continue from does not exist.
    """
    workspace = (setting.workspace or Path.cwd()).resolve()
    loaded = config or load_config_for(setting.expert_key, setting.config_path, workspace)
    settings = effective_settings(
        loaded.config,
        provider=setting.provider,
        model=setting.model,
        reasoning_budget=setting.reasoning_budget,
        max_steps=setting.max_steps,
        max_retries=setting.max_retries,
        timeout=setting.timeout,
    )
    env = load_env(*_env_source(loaded, setting.env_path, workspace))
    expert = resolve_expert(loaded, setting.expert_key)
    _check_delegates(loaded, expert)
    if setting.resume_from and not setting.continue_job:
        raise UsageError("--resume-from requires --continue-job <jobId>")
    storage = (
        Storage(setting.storage_path or default_storage_root(workspace)) if setting.store else None
    )
    sandboxed = setting.sandbox or bool(loaded.config.sandbox)
    if sandboxed:
        from runtime.sandbox import require_bwrap

        require_bwrap()  # fails before the job starts, saying what to install
    own_model = model is None
    if model is None:
        model = _provider_model(settings, env)
    try:
        return await _run_job(
            setting, event_listener, workspace, loaded, settings, env, expert, storage, model
        )
    finally:
        if own_model:
            # The run's connection pool: closed now, so nothing is left running at exit.
            await _close_model(model)


async def _close_model(model: LanguageModel) -> None:
    aclose = getattr(model, "aclose", None)
    if aclose is not None:
        await aclose()


async def _run_job(
    setting: RunSetting,
    event_listener: EventListener | None,
    workspace: Path,
    loaded: LoadedConfig,
    settings: EffectiveSettings,
    env: dict[str, str],
    expert: ExpertDefinition,
    storage: Storage | None,
    model: LanguageModel,
) -> Checkpoint:
    continued = _continuation_job_id(setting, storage)
    if continued is None and setting.interactive_answer:
        raise UsageError(
            "-i was given, but there is no pending interactive tool call (a new job); "
            "use it with --continue or --continue-job on a job that is waiting for an answer"
        )
    tracker = _JobTracker(event_listener)
    context = JobContext(
        # A continuation's job is read once its lock is held (_run_locked_job).
        job=Job(
            id=continued or setting.job_id or new_id(),
            status="running",
            coordinator_expert_key=expert.key,
            max_steps=settings.max_steps,
            started_at=now_ms(),
            config_sha256=loaded.sha256,
        ),
        model=model,
        workspace=workspace,
        max_steps=settings.max_steps,
        max_retries=settings.max_retries,
        timeout_ms=settings.timeout,
        reasoning_budget=settings.reasoning_budget,
        retry_base_delay_ms=setting.retry_base_delay_ms,
        env=env,
        storage=storage,
        listener=tracker,
        verbose=setting.verbose,
        expert_keys=sorted(loaded.config.experts),
        lockfile=load_lockfile(loaded, warn=logging.getLogger("runtime").warning),
        sandbox=setting.sandbox or bool(loaded.config.sandbox),
        tool_call_mode=resolve_tool_call_mode(settings.provider_setting, env),
        env_files=env_file_paths(*_env_source(loaded, setting.env_path, workspace)),
        redactor=Redactor.for_run(env, loaded.config),
    )
    context.nested_runner = partial(_nested_run, context)
    # One writer per job: taken once nothing but the run can fail, and before a continuation
    # reads its checkpoint; given up when the run returns.
    lock = (
        storage.lock_job(context.job.id, warn=logging.getLogger("runtime").warning)
        if storage is not None
        else None
    )
    try:
        return await _run_locked_job(
            context, tracker, setting, loaded, settings, expert, continued=continued is not None
        )
    finally:
        if lock is not None:
            lock.release()


async def _run_locked_job(
    context: JobContext,
    tracker: _JobTracker,
    setting: RunSetting,
    loaded: LoadedConfig,
    settings: EffectiveSettings,
    expert: ExpertDefinition,
    *,
    continued: bool,
) -> Checkpoint:
    storage = context.storage
    previous = None
    query = setting.query
    if continued:
        assert storage is not None
        previous = _continuation_checkpoint(setting, storage, context.job.id, expert)
        context.job = storage.load_job(context.job.id).model_copy(
            update={"status": "running", "finished_at": None, "max_steps": settings.max_steps}
        )
        if previous is None:
            query = _first_query(storage, context.job.id, setting.query)
    job = context.job
    run_id = new_id()
    if previous is None:
        checkpoint = _start_checkpoint(job.id, run_id, expert, step_number=1)
    else:
        checkpoint = previous.model_copy(
            update={"id": new_id(), "step_number": previous.step_number + 1, "run_id": run_id}
        )
    interactive_info = None
    if previous is not None and previous.status == "stoppedByInteractiveTool":
        if not setting.interactive_answer:
            pending = previous.pending_tool_calls or []
            name = pending[0].tool_name if pending else "?"
            raise UsageError(
                f"Job {previous.job_id!r} is waiting for the answer to interactive tool {name!r}; "
                "pass the answer as the query with -i"
            )
        checkpoint, interactive_info = _answer_interactive(checkpoint, setting.query)
    elif setting.interactive_answer:
        status = previous.status if previous is not None else "a new job"
        raise UsageError(
            f"-i was given, but there is no pending interactive tool call ({status}); "
            "use it with --continue or --continue-job on a job that is waiting for an answer"
        )
    # Written only once the options are known to be consistent: a refused continuation leaves
    # the job as it was.
    if storage is not None:
        # The run setting first: it holds the job's query, which a continuation of a job killed
        # before its first checkpoint starts again from (_first_query).
        storage.store_run_setting(
            job.id, run_id, _run_setting_document(setting, settings, expert, job.id, run_id, loaded)
        )
        storage.store_job(job)
    try:
        return await _run_expert(
            context,
            loaded,
            expert,
            checkpoint,
            query,
            run_id=run_id,
            coordinator=True,
            interactive_info=interactive_info,
            resume_point=previous,
        )
    except (asyncio.CancelledError, KeyboardInterrupt):
        _end_interrupted(context, tracker.last)
        raise


class _JobTracker:
    """Hands every event to the caller's listener, noting the coordinator's latest checkpoint."""

    def __init__(self, listener: EventListener | None) -> None:
        self.listener = listener
        self.last: Checkpoint | None = None

    def __call__(self, event: PerstackEvent) -> None:
        checkpoint = getattr(event, "checkpoint", None)
        if isinstance(checkpoint, Checkpoint) and checkpoint.delegated_by is None:
            self.last = checkpoint
        if self.listener is not None:
            self.listener(event)


def _end_interrupted(context: JobContext, last: Checkpoint | None) -> None:
    """Store the job as interrupted (its open runs have ended with their stop events)."""
    update: dict[str, Any] = {"status": JOB_INTERRUPTED, "finished_at": now_ms()}
    if last is not None:
        update |= {"total_steps": last.step_number, "usage": last.usage}
    context.job = context.job.model_copy(update=update)
    if context.storage is None:
        return
    try:
        context.storage.store_job(context.job)
    except StorageError as error:
        # The cancellation goes on; readers show a job nobody holds as interrupted anyway.
        context.warn(str(error))


def run_sync(
    setting: RunSetting,
    event_listener: EventListener | None = None,
    *,
    model: LanguageModel | None = None,
    config: LoadedConfig | None = None,
) -> Checkpoint:
    """Blocking wrapper around :func:`run` for scripts (starts its own event loop)."""
    return asyncio.run(run(setting, event_listener, model=model, config=config))


def _env_source(
    loaded: LoadedConfig, env_path: list[str] | None, workspace: Path
) -> tuple[list[str] | None, Path]:
    """The env files a run reads, and the folder they are relative to.

    ``--env-path``, else the toml's ``envPath``, else the default; relative to perstack.toml's
    folder, else the workspace.
    """
    return env_path or loaded.config.env_path, loaded.path.parent if loaded.path else workspace


def prewarm_model(
    config: LoadedConfig,
    *,
    workspace: Path | None = None,
    provider: str | None = None,
    model: str | None = None,
    env_path: list[str] | None = None,
    native: bool = True,
    litellm: bool = True,
) -> None:
    """Load the model client a run of ``config`` will use, so that its first request is fast.

    Blocking (imports, the TLS context, litellm's import when the provider needs litellm): call
    it in a thread while the user is still typing. Never raises; problems (a missing key, an
    unknown provider) are reported by :func:`run` when it starts.

    Args:
        config: The loaded perstack.toml.
        workspace: Where its .env files are looked up when the config has no path.
        provider: ``--provider``, overriding the toml.
        model: ``--model``, overriding the toml.
        env_path: ``--env-path``, overriding the toml's ``envPath``.
        native: Load a native client (imports, TLS context: milliseconds) if that is the one.
        litellm: Import litellm (seconds) if the model goes through litellm.
    """
    from runtime.llm.factory import prewarm

    try:
        settings = effective_settings(config, provider=provider, model=model)
        env = load_env(*_env_source(config, env_path, workspace or Path.cwd()))
    except PerstackError:
        return
    prewarm(
        settings.provider,
        settings.model,
        settings.provider_setting,
        env,
        native=native,
        litellm=litellm,
    )


DELEGATION_DEPTH_LIMIT = 8
"""Deeper delegation returns an error to the delegating expert (no runaway recursion)."""


async def _run_expert(
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


_RESUMABLE = frozenset({"init", "proceeding", "stoppedByDelegate"})
"""Statuses of a stored delegate checkpoint that a resumed parent continues rather than reuses
(plus ``stoppedByError`` for an interrupt: that run was stopped, not failed)."""


def _stored_delegations(job: JobContext, parent: Checkpoint) -> dict[str, Checkpoint]:
    """The latest stored checkpoint of each delegation ``parent`` is waiting for, by tool call.

    A delegate's checkpoints all carry the ``delegatedBy`` of the call that started it, through
    every continuation; the latest (by step number, then write time) is where it stands.
    """
    if job.storage is None:
        return {}
    waiting = {target.tool_call_id: target.expert.key for target in parent.delegate_to or []}
    latest: dict[str, Checkpoint] = {}
    for stored in job.storage.checkpoints(parent.job_id):
        by = stored.delegated_by
        if (
            by is not None
            and waiting.get(by.tool_call_id) == stored.expert.key
            and by.expert.key == parent.expert.key
        ):
            latest[by.tool_call_id] = stored  # ordered oldest first: the last one wins
    found = {call_id: _recovered(job.storage, stored) for call_id, stored in latest.items()}
    unstored = {call_id: key for call_id, key in waiting.items() if call_id not in found}
    if unstored:
        found.update(_first_steps(job.storage, parent, unstored))
    return found


def _first_steps(
    storage: Storage, parent: Checkpoint, unstored: dict[str, str]
) -> dict[str, Checkpoint]:
    """Delegations that stored no checkpoint but whose first step ran: rebuilt from events.

    ``unstored``: tool call id → delegate expert key. A delegation absent from the result
    starts again from its query.
    """
    job_dir = storage.job_dir(parent.job_id)
    runs: dict[str, str] = {}
    for event in read_job_events(job_dir, messages=False):
        if isinstance(event, StartRun):
            by = event.initial_checkpoint.delegated_by
            if by is not None and unstored.get(by.tool_call_id) == event.expert_key:
                runs[by.tool_call_id] = event.run_id
    found: dict[str, Checkpoint] = {}
    for call_id, run_id in runs.items():
        events = list(read_job_events(job_dir, run_ids=[run_id]))
        start = next((e for e in events if isinstance(e, StartRun)), None)
        if start is None or start.initial_checkpoint.status != "init":
            continue
        first = start.initial_checkpoint
        before = first.model_copy(
            update={
                "messages": [*first.messages, *start.input_messages],
                "step_number": first.step_number - 1,
                "run_id": run_id,
                "status": "proceeding",
            }
        )
        rebuilt = recover_unstored_step(before, events)
        if rebuilt is not before:
            found[call_id] = rebuilt
    return found


def _recovered(storage: Storage, checkpoint: Checkpoint) -> Checkpoint:
    """``checkpoint``, or past the step after it when that step ran but was never stored."""
    if checkpoint.status not in ("proceeding", "stoppedByError"):
        return checkpoint
    job_dir = storage.job_dir(checkpoint.job_id)
    return recover_unstored_step(checkpoint, read_job_events(job_dir, run_ids=[checkpoint.run_id]))


def _interrupted(checkpoint: Checkpoint) -> bool:
    return checkpoint.status == "stoppedByError" and (
        checkpoint.error is not None and checkpoint.error.name == INTERRUPTED_ERROR
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
    stored = _stored_delegations(job, parent) if resuming else {}

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
        prior = stored.get(call.id)
        final: Checkpoint | None = None
        if prior is not None and prior.status not in _RESUMABLE and not _interrupted(prior):
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
                start = _start_checkpoint(
                    parent.job_id,
                    child_run,
                    child_expert,
                    step_number=parent.step_number + 1,
                    delegated_by=_delegated_by(parent, call),
                )
            try:
                final = await _run_expert(
                    job,
                    loaded,
                    child_expert,
                    start,
                    # Resumed mid-run: nothing new is asked, its conversation goes on.
                    query if prior is None or prior.status == "init" else None,
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
        text = _result_text(final)
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


def load_config_for(expert_key: str, config: str | None, cwd: Path) -> LoadedConfig:
    """Load perstack.toml, or an empty one in ``cwd`` when none exists and the expert is built in.

    Raises:
        ConfigError: the file is missing (and the expert is not built in) or invalid.
    """
    try:
        return load_config(config, cwd)
    except ConfigError:
        from runtime.config.builtin import builtin_experts
        from runtime.config.loader import find_config

        if config is not None or expert_key not in builtin_experts():
            raise
        try:
            find_config(None, cwd)
        except ConfigError:
            return parse_config("", path=cwd / "perstack.toml")
        raise


async def _nested_run(
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
        _check_delegates(loaded, expert)
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
    start = _start_checkpoint(
        job.job.id,
        run_id,
        expert,
        step_number=parent_step + 1,
        delegated_by=_delegated_by(current[1], current[0]) if current else None,
    )
    try:
        final = await _run_expert(
            nested, loaded, expert, start, query, run_id=run_id, coordinator=False, depth=1
        )
    except PerstackError as error:
        return {"status": "notStarted", "error": str(error), "runs": collector.runs}
    job.extra_usage = job.extra_usage + final.usage
    usage = final.usage
    return {
        "status": final.status,
        "result": _result_text(final) if final.status == "completed" else None,
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


def _ref(expert: ExpertDefinition) -> ExpertRef:
    return ExpertRef(key=expert.key, name=expert.name, version=expert.version)


def _delegated_by(parent: Checkpoint, call: ToolCall) -> DelegatedBy:
    """The link from a child run back to the call (and checkpoint) of its parent."""
    return DelegatedBy(
        expert=parent.expert,
        tool_call_id=call.id,
        tool_name=call.tool_name,
        checkpoint_id=parent.id,
        run_id=parent.run_id,
    )


def _start_checkpoint(
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


def _result_text(checkpoint: Checkpoint) -> str:
    for message in reversed(checkpoint.messages):
        if isinstance(message, ExpertMessage):
            return first_text(message) or ""
    return ""


def _check_delegates(loaded: LoadedConfig, expert: ExpertDefinition) -> None:
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


def _answer_interactive(
    checkpoint: Checkpoint, answer: str
) -> tuple[Checkpoint, InteractiveToolCallInfo]:
    """Bind the user's answer to a pending interactive call (JSON form, else the first one)."""
    pending = list(checkpoint.pending_tool_calls or [])
    if checkpoint.status != "stoppedByInteractiveTool" or not pending:
        raise UsageError(
            "-i was given, but the job is not waiting for an interactive answer "
            f"(its last checkpoint is {checkpoint.status!r})"
        )
    target, text = pending[0], answer
    try:
        data = json.loads(answer)
    except ValueError:
        data = None
    if isinstance(data, dict) and "toolCallId" in data:
        match = next((c for c in pending if c.id == data["toolCallId"]), None)
        if match is None:
            ids = ", ".join(c.id for c in pending)
            raise UsageError(f"No pending tool call {data['toolCallId']!r}; pending: {ids}")
        target, text = match, str(data.get("text", ""))
    result = ToolResult(
        id=target.id,
        skill_name=target.skill_name,
        tool_name=target.tool_name,
        result=[TextPart(text=text)],
    )
    updated = checkpoint.model_copy(
        update={
            "pending_tool_calls": [c for c in pending if c.id != target.id] or None,
            "partial_tool_results": [*(checkpoint.partial_tool_results or []), result],
        }
    )
    return updated, InteractiveToolCallInfo(
        tool_name=target.tool_name, tool_call_id=target.id, text=text
    )


def _provider_model(settings: EffectiveSettings, env: dict[str, str]) -> LanguageModel:
    # Imported here: nothing that makes no model call should load a model client.
    from runtime.llm.factory import create_model

    return create_model(settings.provider, settings.model, settings.provider_setting, env)


def _continuation_job_id(setting: RunSetting, storage: Storage | None) -> str | None:
    """The job ``--continue`` / ``--continue-job`` names (``None`` for a new job)."""
    if not (setting.continue_job or setting.continue_latest):
        return None
    if storage is None:
        raise UsageError("Continuing a job needs storage; it is turned off for this run")
    job_id = setting.continue_job
    if job_id is None:
        job_ids = storage.job_ids()
        if not job_ids:
            raise CheckpointError(f"No jobs found in {storage.jobs_dir} to continue")
        return job_ids[0]
    if not storage.job_dir(job_id).is_dir():
        recent = ", ".join(storage.job_ids()[:5]) or "none"
        raise CheckpointError(
            f"Job {job_id!r} not found in {storage.jobs_dir} (most recent jobs: {recent})"
        )
    return job_id


def _continuation_checkpoint(
    setting: RunSetting, storage: Storage, job_id: str, expert: ExpertDefinition
) -> Checkpoint | None:
    """The checkpoint a continuation of ``job_id`` starts from (read under the job's lock).

    None when the job stored none (its process died during its first step): it starts again.
    """
    if setting.resume_from:
        checkpoint = storage.load_checkpoint(job_id, setting.resume_from)
    else:
        coordinator = [c for c in storage.checkpoints(job_id) if c.delegated_by is None]
        if not coordinator:
            return None
        checkpoint = _recovered(storage, coordinator[-1])
    if checkpoint.expert.key != expert.key:
        raise UsageError(
            f"Checkpoint expert key {checkpoint.expert.key!r} does not match "
            f"input expert key {expert.key!r}"
        )
    return checkpoint


def _first_query(storage: Storage, job_id: str, query: str) -> str:
    """The query a job that stored no checkpoint starts again from.

    Its own first query (from its first run's run-setting.json), so that a continuation such as
    "go on" does not lose the task; a different new query follows it.
    """
    for run_id in storage.run_ids(job_id):
        try:
            text = storage.load_run_setting(job_id, run_id).get("input", {}).get("text")
        except (PerstackError, AttributeError):
            continue
        if isinstance(text, str) and text.strip():
            return text if query.strip() in ("", text) else f"{text}\n\n{query}"
    return query


def _run_setting_document(
    setting: RunSetting,
    settings: Any,
    expert: ExpertDefinition,
    job_id: str,
    run_id: str,
    loaded: LoadedConfig,
) -> dict[str, Any]:
    # Deliberately built field by field: run-setting.json must never hold a key or env value.
    now = now_ms()
    return {
        "schemaVersion": "1",
        "model": settings.model,
        "providerName": settings.provider,
        "jobId": job_id,
        "runId": run_id,
        "expertKey": expert.key,
        "input": {"text": setting.query},
        "reasoningBudget": settings.reasoning_budget,
        "maxSteps": settings.max_steps,
        "maxRetries": settings.max_retries,
        "timeout": settings.timeout,
        "configPath": str(loaded.path) if loaded.path else loaded.label,
        "startedAt": now,
        "updatedAt": now,
    }
