"""Perstack-compatible expert runtime: the headless engine behind ``perstack run`` and the studio.

Embed it::

    from runtime import RunSetting, run

    checkpoint = await run(RunSetting(expert_key="my-expert", query="..."), event_listener=print)

Importing this package never imports litellm (loaded on the first model call), textual or the
studio.
"""

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
    MissingApiKeyError,
    ModelError,
    PerstackError,
    SkillError,
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
from runtime.llm import LanguageModel
from runtime.runner import run, run_sync
from runtime.setting import RunSetting
from runtime.version import __version__

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
    "Job",
    "JobStatus",
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
    "Step",
    "StreamingEventBase",
    "ToolCall",
    "ToolResult",
    "Usage",
    "UsageError",
    "__version__",
    "event_from_json",
    "event_to_json",
    "load_config",
    "parse_config",
    "resolve_expert",
    "run",
    "run_sync",
]
