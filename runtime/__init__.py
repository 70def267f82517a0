"""Perstack-compatible expert runtime: the headless engine behind ``perstack run`` and the studio.

Embed it::

    from runtime import RunSetting, run

    checkpoint = await run(RunSetting(expert_key="my-expert", query="..."), event_listener=print)

Importing this package never imports litellm (loaded on the first model call), textual or the
studio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime._lazy import lazy_exports

if TYPE_CHECKING:
    from runtime._terminal import take_no_color
    from runtime.config.loader import LoadedConfig, load_config, parse_config
    from runtime.config.problems import ConfigWarning
    from runtime.config.resolve import ExpertDefinition, resolve_expert
    from runtime.config.schema import PerstackConfig
    from runtime.engine.runner import load_config_for, prewarm_model, run, run_sync
    from runtime.errors import (
        CheckpointError,
        ConfigError,
        JobLockedError,
        MissingApiKeyError,
        ModelError,
        PerstackError,
        SkillError,
        StorageError,
        UsageError,
    )
    from runtime.jobs.events import read_job_events
    from runtime.jobs.lock import INTERRUPTED_ERROR, JOB_INTERRUPTED, job_is_live, job_status
    from runtime.llm import GenerationRequest, LanguageModel
    from runtime.llm.providers import (
        PROVIDER_DEFAULT_MODELS,
        ProviderKeyStatus,
        provider_key_names,
        provider_key_status,
    )
    from runtime.schema.checkpoint import (
        Checkpoint,
        CheckpointStatus,
        Job,
        JobStatus,
        Step,
        ToolCall,
        ToolResult,
        Usage,
    )
    from runtime.schema.events import (
        EVENT_ADAPTER,
        TERMINAL_EVENT_TYPES,
        EventListener,
        PerstackEvent,
        RunEventBase,
        RuntimeEventBase,
        StreamingEventBase,
        event_from_json,
        event_to_json,
    )
    from runtime.schema.results import tool_result_failed
    from runtime.schema.setting import RunSetting
    from runtime.version import __version__

# Public names load on first use: `perstack --version` must not pay for pydantic models, and
# `import runtime` stays cheap for applications that only need part of it.
_EXPORTS: dict[str, str] = {
    "Checkpoint": "runtime.schema.checkpoint",
    "CheckpointError": "runtime.errors",
    "CheckpointStatus": "runtime.schema.checkpoint",
    "ConfigError": "runtime.errors",
    "ConfigWarning": "runtime.config.problems",
    "EVENT_ADAPTER": "runtime.schema.events",
    "EventListener": "runtime.schema.events",
    "ExpertDefinition": "runtime.config.resolve",
    "INTERRUPTED_ERROR": "runtime.jobs.lock",
    "JOB_INTERRUPTED": "runtime.jobs.lock",
    "Job": "runtime.schema.checkpoint",
    "JobLockedError": "runtime.errors",
    "JobStatus": "runtime.schema.checkpoint",
    "GenerationRequest": "runtime.llm",
    "LanguageModel": "runtime.llm",
    "LoadedConfig": "runtime.config.loader",
    "MissingApiKeyError": "runtime.errors",
    "ModelError": "runtime.errors",
    "PerstackConfig": "runtime.config.schema",
    "PerstackError": "runtime.errors",
    "PerstackEvent": "runtime.schema.events",
    "PROVIDER_DEFAULT_MODELS": "runtime.llm.providers",
    "ProviderKeyStatus": "runtime.llm.providers",
    "RunEventBase": "runtime.schema.events",
    "RunSetting": "runtime.schema.setting",
    "RuntimeEventBase": "runtime.schema.events",
    "SkillError": "runtime.errors",
    "StorageError": "runtime.errors",
    "Step": "runtime.schema.checkpoint",
    "StreamingEventBase": "runtime.schema.events",
    "TERMINAL_EVENT_TYPES": "runtime.schema.events",
    "ToolCall": "runtime.schema.checkpoint",
    "ToolResult": "runtime.schema.checkpoint",
    "Usage": "runtime.schema.checkpoint",
    "UsageError": "runtime.errors",
    "__version__": "runtime.version",
    "event_from_json": "runtime.schema.events",
    "event_to_json": "runtime.schema.events",
    "job_is_live": "runtime.jobs.lock",
    "job_status": "runtime.jobs.lock",
    "load_config": "runtime.config.loader",
    "parse_config": "runtime.config.loader",
    "read_job_events": "runtime.jobs.events",
    "resolve_expert": "runtime.config.resolve",
    "load_config_for": "runtime.engine.runner",
    "prewarm_model": "runtime.engine.runner",
    "provider_key_names": "runtime.llm.providers",
    "provider_key_status": "runtime.llm.providers",
    "run": "runtime.engine.runner",
    "run_sync": "runtime.engine.runner",
    "take_no_color": "runtime._terminal",
    "tool_result_failed": "runtime.schema.results",
}


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = [
    "EVENT_ADAPTER",
    "TERMINAL_EVENT_TYPES",
    "Checkpoint",
    "CheckpointError",
    "CheckpointStatus",
    "ConfigError",
    "ConfigWarning",
    "EventListener",
    "ExpertDefinition",
    "INTERRUPTED_ERROR",
    "JOB_INTERRUPTED",
    "Job",
    "JobLockedError",
    "JobStatus",
    "GenerationRequest",
    "LanguageModel",
    "LoadedConfig",
    "MissingApiKeyError",
    "ModelError",
    "PerstackConfig",
    "PerstackError",
    "PerstackEvent",
    "PROVIDER_DEFAULT_MODELS",
    "ProviderKeyStatus",
    "RunEventBase",
    "RunSetting",
    "RuntimeEventBase",
    "SkillError",
    "StorageError",
    "Step",
    "StreamingEventBase",
    "ToolCall",
    "ToolResult",
    "Usage",
    "UsageError",
    "__version__",
    "event_from_json",
    "event_to_json",
    "job_is_live",
    "job_status",
    "load_config",
    "load_config_for",
    "prewarm_model",
    "provider_key_names",
    "provider_key_status",
    "parse_config",
    "read_job_events",
    "resolve_expert",
    "run",
    "run_sync",
    "take_no_color",
    "tool_result_failed",
]
