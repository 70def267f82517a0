"""``run()``: wire a RunSetting to the config, the model, storage and the loop. Wiring only.

Running the experts is :mod:`runtime.engine.expert_run`'s; finding where a continued job starts
is :mod:`runtime.engine.continuation`'s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.config.env import env_file_paths, load_env
from runtime.config.loader import LoadedConfig, load_config, parse_config
from runtime.config.resolve import (
    EffectiveSettings,
    ExpertDefinition,
    effective_settings,
    perstack_expert,
    resolve_expert,
    resolve_tool_call_mode,
)
from runtime.engine.context import JobContext
from runtime.engine.continuation import (
    answer_interactive,
    continuation_checkpoint,
    continuation_job_id,
    first_query,
)
from runtime.engine.expert_run import check_delegates, run_expert, start_checkpoint
from runtime.engine.nested import nested_run
from runtime.engine.secrets import Redactor
from runtime.errors import CheckpointError, ConfigError, PerstackError, StorageError, UsageError
from runtime.jobs.lock import JOB_INTERRUPTED
from runtime.jobs.store import Storage, default_storage_root
from runtime.llm import LanguageModel
from runtime.schema.checkpoint import Checkpoint, Job, JobOrigin
from runtime.schema.events import (
    EventListener,
    InteractiveToolCallInfo,
    PerstackEvent,
    now_ms,
)
from runtime.schema.ids import new_id
from runtime.schema.setting import RunSetting
from runtime.skills.lockfile import load_lockfile

if TYPE_CHECKING:
    from runtime.engine.recording import Fingerprinter


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
    expert.require_base_skill()  # before a job exists: nothing is stored for a refused run
    check_delegates(loaded, expert)
    if setting.resume_from and not setting.continue_job:
        raise UsageError("--resume-from requires --continue-job <jobId>")
    storage = (
        Storage(setting.storage_path or default_storage_root(workspace, loaded.config.storage_url))
        if setting.store
        else None
    )
    sandboxed = setting.sandbox or bool(loaded.config.sandbox)
    if sandboxed:
        from runtime.sandbox import require_bwrap

        require_bwrap()  # fails before the job starts, saying what to install
    fingerprints: Fingerprinter | None = None
    own_model = model is None or setting.replay_of is not None
    if setting.replay_of is not None:
        from runtime.engine.recording import Fingerprinter

        fingerprints = Fingerprinter(workspace)
        model = _replay_model(setting, storage, settings, env, fingerprints, model)
    elif model is None:
        model = _provider_model(settings, env)
    try:
        if setting.fork_from is not None:
            # Last of the checks: a refused run leaves no fork job behind.
            setting = _fork(setting, storage)
        return await _run_job(
            setting,
            event_listener,
            workspace,
            loaded,
            settings,
            env,
            expert,
            storage,
            model,
            fingerprints,
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
    fingerprints: Fingerprinter | None,
) -> Checkpoint:
    continued = continuation_job_id(setting, storage)
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
            origin=JobOrigin(kind="replay", job_id=setting.replay_of)
            if setting.replay_of
            else None,
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
    context.nested_runner = partial(nested_run, context)
    context.fresh_instructions = setting.fork_from is not None
    context.run_job = partial(run, model=model)
    context.fingerprints = fingerprints
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
        from runtime.jobs.api import Jobs  # only continuations read a job back: not at start-up

        # job.json, or for a job Perstack wrote (it has none) what its events say.
        record = Jobs(storage.root).record(context.job.id)
        delegations: dict[str, Checkpoint] = {}
        previous = continuation_checkpoint(setting, storage, record, expert, delegations)
        # The query goes to the delegate resumed from (the first found); its parents go on.
        context.resume_delegations = {
            call_id: (stored, setting.query if index == 0 else None)
            for index, (call_id, stored) in enumerate(delegations.items())
        }
        context.job = record.model_copy(
            update={"status": "running", "finished_at": None, "max_steps": settings.max_steps}
        )
        if previous is None:
            query = first_query(storage, context.job.id, setting.query)
    job = context.job
    run_id = new_id()
    if previous is None:
        checkpoint = start_checkpoint(job.id, run_id, expert, step_number=1)
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
        checkpoint, interactive_info = answer_interactive(checkpoint, setting.query)
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
        # before its first checkpoint starts again from (first_query).
        storage.store_run_setting(
            job.id,
            run_id,
            _run_setting_document(setting, settings, expert, job.id, run_id, loaded)
            | _input_document(setting, interactive_info),
        )
        storage.store_job(job)
    try:
        return await run_expert(
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


def _provider_model(settings: EffectiveSettings, env: dict[str, str]) -> LanguageModel:
    # Imported here: nothing that makes no model call should load a model client.
    from runtime.llm.factory import create_model

    return create_model(settings.provider, settings.model, settings.provider_setting, env)


def _fork(setting: RunSetting, storage: Storage | None) -> RunSetting:
    """Make the fork's job, and the setting that continues it from the fork's checkpoint."""
    from runtime.engine.continuation import fork_job

    assert setting.fork_from is not None
    if storage is None:
        raise UsageError("A fork copies a stored job: run it with storing on")
    if setting.continue_job or setting.continue_latest or setting.resume_from:
        raise UsageError(
            "--fork-from starts a new job: it cannot be combined with --continue, "
            "--continue-job or --resume-from"
        )
    fork_id = setting.job_id or new_id()
    fork_job(storage, setting.fork_from, fork_id)
    return setting.model_copy(
        update={"continue_job": fork_id, "resume_from": setting.fork_from, "job_id": None}
    )


def _replay_model(
    setting: RunSetting,
    storage: Storage | None,
    settings: EffectiveSettings,
    env: dict[str, str],
    fingerprints: Fingerprinter,
    given: LanguageModel | None,
) -> LanguageModel:
    """The model of a replay: ``setting.replay_of``'s recording.

    Then, with ``replay_live``, ``given`` or the provider's model, made only if the replay
    goes live.
    """
    from runtime.engine.replay import ReplayModel
    from runtime.jobs.recording import read_recording, recording_path

    assert setting.replay_of is not None
    if storage is None:
        raise UsageError("A replay reads the recorded job from storage: run it with storing on")
    job_dir = storage.job_dir(setting.replay_of)
    if not (job_dir / "job.json").is_file() and not (job_dir / "runs").is_dir():
        raise CheckpointError(f"Job {setting.replay_of!r} not found in {storage.jobs_dir}")
    calls, cut = read_recording(job_dir)
    if not calls and not cut and not setting.replay_live:
        raise UsageError(
            f"Job {setting.replay_of!r} has no model-call recording ({recording_path(job_dir)}): "
            "it was run before recordings existed or by another tool. Replay it with --live to "
            "run it again with the model."
        )
    live: Callable[[], LanguageModel] | None = None
    if setting.replay_live:
        live = (lambda: given) if given is not None else partial(_provider_model, settings, env)
    return ReplayModel(
        calls,
        job_id=setting.replay_of,
        model_name=given.model_name if given is not None else settings.model,
        fingerprints=fingerprints,
        live=live,
        cut=cut,
    )


def _input_document(setting: RunSetting, answer: InteractiveToolCallInfo | None) -> dict[str, Any]:
    # Perstack's input shape: the answer to an interactive call is kept apart from a query,
    # which is how a replay knows to give it with -i.
    if answer is None:
        return {"input": {"text": setting.query}}
    result = {"toolCallId": answer.tool_call_id, "toolName": answer.tool_name, "text": answer.text}
    return {"input": {"interactiveToolCallResult": result}}


def _run_setting_document(
    setting: RunSetting,
    settings: Any,
    expert: ExpertDefinition,
    job_id: str,
    run_id: str,
    loaded: LoadedConfig,
) -> dict[str, Any]:
    # Deliberately built field by field: run-setting.json must never hold a key or env value.
    # Perstack's fields are all here (its readers validate them): providerConfig with an empty
    # apiKey, and env as an empty map, since both hold secrets in Perstack's own files.
    now = now_ms()
    provider: dict[str, Any] = {"providerName": settings.provider, "apiKey": ""}
    table = loaded.config.provider
    if table is not None and table.setting.base_url:
        provider["baseUrl"] = table.setting.base_url
    return {
        "schemaVersion": "1",
        "model": settings.model,
        "providerName": settings.provider,
        "providerConfig": provider,
        "experts": _team_documents(loaded, expert),
        "perstackApiBaseUrl": loaded.config.perstack_api_base_url or PERSTACK_API_BASE_URL,
        "env": {},
        "jobId": job_id,
        "runId": run_id,
        "expertKey": expert.key,
        "reasoningBudget": settings.reasoning_budget,
        "maxSteps": settings.max_steps,
        "maxRetries": settings.max_retries,
        "timeout": settings.timeout,
        "configPath": str(loaded.path) if loaded.path else loaded.label,
        "startedAt": now,
        "updatedAt": now,
    }


PERSTACK_API_BASE_URL = "https://api.perstack.ai"
"""Perstack's default for ``perstackApiBaseUrl`` (its registry; not used by this runtime)."""


def _team_documents(loaded: LoadedConfig, expert: ExpertDefinition) -> dict[str, Any]:
    """The running expert and every local expert it can delegate to, in Perstack's shape."""
    team: dict[str, Any] = {}
    waiting = [expert]
    while waiting:
        member = waiting.pop()
        if member.key in team:
            continue
        team[member.key] = perstack_expert(member)
        for key in member.delegates:
            try:
                waiting.append(resolve_expert(loaded, key))
            except PerstackError:  # not local (a registry expert) or broken: the run says so
                continue
    return team
