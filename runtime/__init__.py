"""Perstack-compatible expert runtime: the headless engine behind ``perstack run`` and the studio.

Embed it::

    from runtime import RunSetting, run

    checkpoint = await run(RunSetting(expert_key="my-expert", query="..."), event_listener=print)

Importing this package never imports litellm (loaded on the first model call), textual or the
studio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.checkpoint import (
        Checkpoint,
        CheckpointStatus,
        Job,
        JobStatus,
        Step,
        ToolCall,
        ToolResult,
        Usage,
    )
    from runtime.config import PerstackConfig
    from runtime.config_loader import (
        ConfigWarning,
        ExpertDefinition,
        LoadedConfig,
        load_config,
        parse_config,
        resolve_expert,
    )
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
    from runtime.events import (
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
    from runtime.joblock import INTERRUPTED_ERROR, JOB_INTERRUPTED, job_is_live, job_status
    from runtime.llm import GenerationRequest, LanguageModel
    from runtime.runner import load_config_for, prewarm_model, run, run_sync
    from runtime.setting import RunSetting
    from runtime.storage import read_job_events
    from runtime.version import __version__

# Public names load on first use: `perstack --version` must not pay for pydantic models, and
# `import runtime` stays cheap for applications that only need part of it.
_EXPORTS: dict[str, str] = {
    "Checkpoint": "runtime.checkpoint",
    "CheckpointError": "runtime.errors",
    "CheckpointStatus": "runtime.checkpoint",
    "ConfigError": "runtime.errors",
    "ConfigWarning": "runtime.config_loader",
    "EVENT_ADAPTER": "runtime.events",
    "EventListener": "runtime.events",
    "ExpertDefinition": "runtime.config_loader",
    "INTERRUPTED_ERROR": "runtime.joblock",
    "JOB_INTERRUPTED": "runtime.joblock",
    "Job": "runtime.checkpoint",
    "JobLockedError": "runtime.errors",
    "JobStatus": "runtime.checkpoint",
    "GenerationRequest": "runtime.llm",
    "LanguageModel": "runtime.llm",
    "LoadedConfig": "runtime.config_loader",
    "MissingApiKeyError": "runtime.errors",
    "ModelError": "runtime.errors",
    "PerstackConfig": "runtime.config",
    "PerstackError": "runtime.errors",
    "PerstackEvent": "runtime.events",
    "RunEventBase": "runtime.events",
    "RunSetting": "runtime.setting",
    "RuntimeEventBase": "runtime.events",
    "SkillError": "runtime.errors",
    "StorageError": "runtime.errors",
    "Step": "runtime.checkpoint",
    "StreamingEventBase": "runtime.events",
    "TERMINAL_EVENT_TYPES": "runtime.events",
    "ToolCall": "runtime.checkpoint",
    "ToolResult": "runtime.checkpoint",
    "Usage": "runtime.checkpoint",
    "UsageError": "runtime.errors",
    "__version__": "runtime.version",
    "event_from_json": "runtime.events",
    "event_to_json": "runtime.events",
    "job_is_live": "runtime.joblock",
    "job_status": "runtime.joblock",
    "load_config": "runtime.config_loader",
    "parse_config": "runtime.config_loader",
    "read_job_events": "runtime.storage",
    "resolve_expert": "runtime.config_loader",
    "load_config_for": "runtime.runner",
    "prewarm_model": "runtime.runner",
    "run": "runtime.runner",
    "run_sync": "runtime.runner",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
    "parse_config",
    "read_job_events",
    "resolve_expert",
    "run",
    "run_sync",
]
