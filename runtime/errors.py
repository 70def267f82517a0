"""Typed errors, split by who must act on them.

Errors the model can fix never surface here: they become error tool results. Errors that end a run
become a terminal event plus a checkpoint. What remains are the errors a user or caller must fix,
all subclasses of :class:`PerstackError` with a short ``title`` for display.
"""

from __future__ import annotations


class PerstackError(Exception):
    """Base of every error the runtime raises to its caller.

    Attributes:
        title: A short headline for a UI (toast title, panel title).
        message: The full message; names the file, key or command involved and the fix.
    """

    title = "Perstack error"

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title


class ConfigError(PerstackError):
    """perstack.toml (or a setting derived from it) is invalid or missing."""

    title = "Configuration error"


class UsageError(PerstackError):
    """The caller asked for something inconsistent (bad option combination, unknown expert)."""

    title = "Usage error"


class MissingApiKeyError(ConfigError):
    """The chosen provider needs an environment variable that is not set."""

    title = "Missing API key"


class SkillError(PerstackError):
    """A skill could not be started or reached."""

    title = "Skill error"


class CheckpointError(PerstackError):
    """A stored job or checkpoint is missing, unreadable or of an unknown schema version."""

    title = "Checkpoint error"


class StorageError(PerstackError):
    """The job's files cannot be written (permissions, a full disk, a read-only mount)."""

    title = "Storage error"


class JobLockedError(PerstackError):
    """Another live process is running the job (it holds the job's lock).

    Attributes:
        holder_pid: The process id the lock file names, when known.
    """

    title = "Job is running"

    def __init__(self, message: str, *, holder_pid: int | None = None) -> None:
        super().__init__(message)
        self.holder_pid = holder_pid


class ModelError(PerstackError):
    """A model call failed.

    Attributes:
        name: Error class name as the provider reported it (e.g. ``AuthenticationError``).
        status_code: HTTP status when there was one.
        retryable: Whether trying the same request again may succeed.
    """

    title = "Model error"

    def __init__(
        self,
        message: str,
        *,
        name: str = "ModelError",
        status_code: int | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.name = name
        self.status_code = status_code
        self.retryable = retryable
