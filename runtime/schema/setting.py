"""What to run: the settings a caller passes to :func:`runtime.run`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class RunSetting(BaseModel):
    """A request to run an expert. Unset fields fall back to perstack.toml, then to defaults.

    Example:
        ``RunSetting(expert_key="my-expert", query="Summarise README.md", provider="openai",
        model="gpt-4.1")``
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    expert_key: str
    """The expert to run (a key of perstack.toml)."""
    query: str = ""
    """The user's query, or the answer to a pending interactive tool call."""
    config_path: str | None = None
    """perstack.toml path or raw.githubusercontent.com URL; None searches upward from workspace."""
    workspace: Path | None = None
    """Directory the experts work in; defaults to the current directory."""
    provider: str | None = None
    """Provider name (Perstack's or any litellm provider); overrides perstack.toml."""
    model: str | None = None
    """Model id; overrides perstack.toml."""
    reasoning_budget: str | int | None = None
    """none/minimal/low/medium/high or a token count."""
    max_steps: int | None = Field(default=None, ge=1)
    """Job-global step limit."""
    max_retries: int | None = Field(default=None, ge=0)
    """Retries of a failed generation before the run stops by error."""
    timeout: int | None = Field(default=None, ge=1)
    """Per-generation timeout in milliseconds."""
    job_id: str | None = None
    """Id for a new job (ignored when continuing one)."""
    env_path: list[str] | None = None
    """Env files to load, relative to perstack.toml's directory; overrides envPath."""
    storage_path: Path | None = None
    """Storage root; defaults to $PERSTACK_STORAGE_PATH, then <workspace>/perstack."""
    store: bool = True
    """Persist the job (False keeps checkpoints in memory only, like perstack-runtime)."""
    continue_job: str | None = None
    """Continue this job from its latest (or ``resume_from``) checkpoint."""
    continue_latest: bool = False
    """Continue the most recent job."""
    resume_from: str | None = None
    """Checkpoint id to resume from; requires ``continue_job``."""
    interactive_answer: bool = False
    """Treat ``query`` as the answer to the pending interactive tool call."""
    fork_from: str | None = None
    """Start a new job from this checkpoint of a stored job (of its coordinator or of any
    delegate), with the current perstack.toml: each expert resumed there gets its current
    instruction. The new job names its origin; the origin is left as it was."""
    replay_of: str | None = None
    """Answer model calls from this job's recording (``perstack replay``): a call that matches
    it costs no request; the first that does not stops the run, or goes on live."""
    replay_live: bool = False
    """With ``replay_of``: from the first call the recording does not answer, call the model."""
    sandbox: bool = False
    """Run exec and stdio skills in an OS sandbox (also ``sandbox = true`` in perstack.toml)."""
    verbose: bool = False
    """Pass skill stderr through to the caller's stderr as well as to events."""
    retry_base_delay_ms: int = Field(default=1000, ge=0)
    """First retry waits this long; each further retry doubles it (capped at 30 s)."""
