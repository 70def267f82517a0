"""``run()``: wire a RunSetting to the config, the model, storage and the loop. Wiring only."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime.checkpoint import Checkpoint, ExpertRef, Job, Usage
from runtime.config_loader import (
    ExpertDefinition,
    LoadedConfig,
    effective_settings,
    load_config,
    resolve_expert,
)
from runtime.env import load_env
from runtime.errors import CheckpointError, UsageError
from runtime.events import EventListener, InitializeRuntime, now_ms
from runtime.ids import new_id
from runtime.llm import LanguageModel
from runtime.loop import drive
from runtime.loop.context import JobContext, Segment
from runtime.loop.prompt import build_system_prompt
from runtime.setting import RunSetting
from runtime.skills.manager import open_skills
from runtime.storage import Storage, default_storage_root
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
    loaded = config or load_config(setting.config_path, workspace)
    settings = effective_settings(
        loaded.config,
        provider=setting.provider,
        model=setting.model,
        reasoning_budget=setting.reasoning_budget,
        max_steps=setting.max_steps,
        max_retries=setting.max_retries,
        timeout=setting.timeout,
    )
    base_dir = loaded.path.parent if loaded.path else workspace
    env = load_env(setting.env_path or loaded.config.env_path, base_dir)
    expert = resolve_expert(loaded, setting.expert_key)
    if setting.resume_from and not setting.continue_job:
        raise UsageError("--resume-from requires --continue-job <jobId>")
    storage = (
        Storage(setting.storage_path or default_storage_root(workspace)) if setting.store else None
    )
    if model is None:
        model = _provider_model(settings.provider, settings.model, loaded, env)

    previous = _continuation_checkpoint(setting, storage, expert)
    if previous is not None:
        assert storage is not None
        job = storage.load_job(previous.job_id).model_copy(
            update={"status": "running", "finished_at": None, "max_steps": settings.max_steps}
        )
    else:
        job = Job(
            id=setting.job_id or new_id(),
            status="running",
            coordinator_expert_key=expert.key,
            max_steps=settings.max_steps,
            started_at=now_ms(),
            config_sha256=loaded.sha256,
        )
    context = JobContext(
        job=job,
        model=model,
        workspace=workspace,
        max_steps=settings.max_steps,
        max_retries=settings.max_retries,
        timeout_ms=settings.timeout,
        reasoning_budget=settings.reasoning_budget,
        retry_base_delay_ms=setting.retry_base_delay_ms,
        env=env,
        storage=storage,
        listener=event_listener,
        verbose=setting.verbose,
    )
    run_id = new_id()
    if storage is not None:
        storage.store_job(job)
        storage.store_run_setting(
            job.id, run_id, _run_setting_document(setting, settings, expert, job.id, run_id, loaded)
        )
    if previous is None:
        checkpoint = Checkpoint(
            id=new_id(),
            job_id=job.id,
            run_id=run_id,
            status="init",
            step_number=1,
            messages=[],
            expert=ExpertRef(key=expert.key, name=expert.name, version=expert.version),
            usage=Usage(),
        )
    else:
        checkpoint = previous.model_copy(
            update={"id": new_id(), "step_number": previous.step_number + 1, "run_id": run_id}
        )
    return await _run_segment(
        context, loaded, expert, checkpoint, setting.query, run_id=run_id, coordinator=True
    )


def run_sync(
    setting: RunSetting,
    event_listener: EventListener | None = None,
    *,
    model: LanguageModel | None = None,
    config: LoadedConfig | None = None,
) -> Checkpoint:
    """Blocking wrapper around :func:`run` for scripts (starts its own event loop)."""
    return asyncio.run(run(setting, event_listener, model=model, config=config))


async def _run_segment(
    job: JobContext,
    loaded: LoadedConfig,
    expert: ExpertDefinition,
    checkpoint: Checkpoint,
    query: str,
    *,
    run_id: str,
    coordinator: bool,
) -> Checkpoint:
    config = loaded.config
    job.publish(
        InitializeRuntime(
            job_id=job.job.id,
            run_id=run_id,
            runtime_version=__version__,
            expert_name=expert.name,
            experts=sorted(config.experts),
            model=job.model.model_name,
            max_steps=job.max_steps,
            max_retries=job.max_retries,
            timeout=job.timeout_ms,
            query=query,
        ),
        coordinator=coordinator,
    )
    async with AsyncExitStack() as stack:
        tool_index = await open_skills(
            job,
            stack,
            dict(expert.skills),
            run_id=run_id,
            coordinator=coordinator,
            base_command=config.perstack_base_skill_command,
        )
        rules = [(name, skill.rule) for name, skill in expert.skills.items() if skill.rule]
        prompt = build_system_prompt(
            instruction=expert.instruction,
            now_iso=datetime.now(UTC).isoformat(timespec="seconds"),
            cwd=str(job.workspace),
            skill_rules=rules,
        )
        segment = Segment(
            job=job,
            expert=ExpertRef(key=expert.key, name=expert.name, version=expert.version),
            run_id=run_id,
            skills=[skill for skill, _ in tool_index.values()],
            system_prompt=prompt,
            tool_index=tool_index,
            coordinator=coordinator,
        )
        return await drive(segment, checkpoint, query)


def _provider_model(
    provider: str, model_name: str, loaded: LoadedConfig, env: dict[str, str]
) -> LanguageModel:
    # Imported here: the provider table is cheap, but litellm (behind LiteLLMModel) is not, and
    # nothing that makes no model call should pay for it.
    from runtime.llm.litellm_model import LiteLLMModel
    from runtime.llm.providers import resolve_provider

    provider_config = loaded.config.provider
    setting = (
        provider_config.setting
        if provider_config is not None and provider_config.provider_name == provider
        else None
    )
    return LiteLLMModel(resolve_provider(provider, model_name, setting, env))


def _continuation_checkpoint(
    setting: RunSetting, storage: Storage | None, expert: ExpertDefinition
) -> Checkpoint | None:
    if not (setting.continue_job or setting.continue_latest):
        return None
    if storage is None:
        raise UsageError("Continuing a job needs storage; it is turned off for this run")
    job_id = setting.continue_job
    if job_id is None:
        job_ids = storage.job_ids()
        if not job_ids:
            raise CheckpointError(f"No jobs found in {storage.jobs_dir} to continue")
        job_id = job_ids[0]
    if setting.resume_from:
        checkpoint = storage.load_checkpoint(job_id, setting.resume_from)
    else:
        coordinator = [c for c in storage.checkpoints(job_id) if c.delegated_by is None]
        if not coordinator:
            raise CheckpointError(f"No checkpoints found for job {job_id!r}")
        checkpoint = coordinator[-1]
    if checkpoint.expert.key != expert.key:
        raise UsageError(
            f"Checkpoint expert key {checkpoint.expert.key!r} does not match "
            f"input expert key {expert.key!r}"
        )
    return checkpoint


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
