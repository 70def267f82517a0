"""Runs an expert in a Textual worker and reports by message; never touches a widget.

One controller belongs to one run screen and one job at a time. The first run starts a job;
later runs continue it (a follow-up query, the answer to an interactive tool, or a resume from
a chosen checkpoint). Cancelling cancels the worker: the runtime stores the last checkpoint
before the cancellation propagates, so the job can be continued afterwards.

The model client (imports, TLS context; litellm's multi-second import for the providers it
serves) is loaded in a thread while the user is still typing (:meth:`RunController.prewarm`),
and a run waits for that off the event loop before it starts: loading it inside the run would
freeze the app for as long.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.run_messages import (
    RunCancelled,
    RunEventReceived,
    RunFailed,
    RunFinished,
    RunStarted,
)

if TYPE_CHECKING:
    from textual.dom import DOMNode
    from textual.worker import Worker

    from runtime import Checkpoint, LanguageModel, LoadedConfig, PerstackEvent, ToolCall
    from runtime.cli import Tracing

PREWARM_WORKER = "model-prewarm"
"""Name and group of the worker that loads the model client ahead of the first run."""


@dataclass
class RunOptions:
    """What every run of the controller shares (``perstack start``'s options)."""

    workspace: Path
    expert_key: str
    config_path: str | None = None
    provider: str | None = None
    model: str | None = None
    language_model: LanguageModel | None = None
    """A model to use instead of the provider's (the demo's scripted model, tests)."""
    job_id: str | None = None
    """Id for the first job (snapshots fix it)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """More ``RunSetting`` fields (max_steps, timeout, ...)."""


class RunController:
    """Starts, continues and cancels the runs of one job for ``target`` (a screen).

    Args:
        target: Receives :class:`RunEventReceived` per event, then exactly one of
            :class:`RunFinished`, :class:`RunFailed` or :class:`RunCancelled`.
        options: The expert, workspace and model settings.
    """

    def __init__(self, target: DOMNode, options: RunOptions) -> None:
        self.target = target
        self.options = options
        self.job_id: str | None = None
        """The job later runs continue (set by the first event of a run)."""
        self.checkpoint: Checkpoint | None = None
        """The last run's final checkpoint."""
        self.config: LoadedConfig | None = None
        """perstack.toml as the last run loaded it."""
        self.worker: Worker[Checkpoint | None] | None = None
        self._warm_lock = threading.Lock()
        self._warmed: set[str] = set()
        """Configs (by :func:`_client_key`) whose model client is loaded; used under the lock."""
        self._warm_started: set[str] = set()
        """Configs (by :func:`_client_key`) a warm-up was started for (event loop only)."""

    @property
    def running(self) -> bool:
        """A run is in flight."""
        return self.worker is not None and not self.worker.is_finished

    @property
    def waiting(self) -> bool:
        """The last run stopped for the answer to an interactive tool."""
        return self.checkpoint is not None and self.checkpoint.status == "stoppedByInteractiveTool"

    def provider_name(self, config: LoadedConfig | None) -> str | None:
        """The provider the runs call when it is named: ``--provider``, else perstack.toml's."""
        if self.options.provider:
            return self.options.provider
        provider = config.config.provider if config is not None else None
        return provider.provider_name if provider is not None else None

    # the model client --------------------------------------------------------------------------

    def prewarm(self, config: LoadedConfig) -> Worker[None] | None:
        """Load the model client runs of ``config`` will use, in a thread worker.

        Once per client: a perstack.toml saved with other experts but the same model settings
        needs no new one. Returns the worker, or ``None`` when there is nothing to do: that
        client is loaded or loading, or the runs use an injected model (the demo's, tests').
        """
        key = _client_key(config)
        if self.options.language_model is not None or key in self._warm_started:
            return None
        self._warm_started.add(key)
        return self.target.run_worker(
            partial(self._load_model_client, config),
            name=PREWARM_WORKER,
            group=PREWARM_WORKER,
            thread=True,
            exit_on_error=False,
            description=f"load the model client for {self.options.expert_key}",
        )

    def _load_model_client(self, config: LoadedConfig) -> None:
        # Blocking, in a thread. The lock makes a run that starts during the warm-up wait for it
        # instead of loading the same client a second time.
        from runtime import prewarm_model

        key = _client_key(config)
        with self._warm_lock:
            if key in self._warmed:
                return
            self._warmed.add(key)
            options = self.options
            try:
                prewarm_model(
                    config,
                    workspace=options.workspace,
                    provider=options.provider,
                    model=options.model,
                    env_path=options.extra.get("env_path"),
                )
            except Exception:  # a warm-up never takes the app down; the run reports problems
                pass

    # starting runs -----------------------------------------------------------------------------

    def start(self, query: str) -> Worker[Checkpoint | None]:
        """Run ``query``: a new job the first time, then a follow-up that continues the job."""
        return self._start(query, continue_job=self.job_id)

    def answer(self, text: str) -> Worker[Checkpoint | None]:
        """Resume the waiting job with the answer to its interactive tool."""
        return self._start(text, continue_job=self.job_id, interactive_answer=True)

    def resume(self, job_id: str, checkpoint_id: str, query: str) -> Worker[Checkpoint | None]:
        """Continue ``job_id`` from one of its checkpoints with a new query."""
        self.job_id = job_id
        return self._start(query, continue_job=job_id, resume_from=checkpoint_id)

    def fork(
        self, checkpoint_id: str, query: str, edited: tuple[Path, str] | None = None
    ) -> Worker[Checkpoint | None]:
        """Fork a new job from a stored checkpoint.

        ``edited``: perstack.toml's path and the text the fork runs with (an expert edited for
        the fork only); None runs the file on disk.
        """
        self.job_id = None
        return self._start(query, fork_from=checkpoint_id, edited_config=edited)

    def cancel(self) -> bool:
        """Cancel the run in flight; ``False`` when there is none."""
        if not self.running:
            return False
        assert self.worker is not None
        self.worker.cancel()
        return True

    def _extra(self, continuation: dict[str, Any]) -> dict[str, Any]:
        # A fork asked for on the command line makes the first job; later runs continue it.
        extra = dict(self.options.extra)
        if continuation.get("continue_job") or "fork_from" in continuation:
            extra.pop("fork_from", None)
        return extra

    def _start(self, query: str, **continuation: Any) -> Worker[Checkpoint | None]:
        self.target.post_message(RunStarted(query, continuation.get("continue_job")))
        self.worker = self.target.run_worker(
            self._run(query, continuation),
            name="expert-run",
            group="run",
            exclusive=True,
            exit_on_error=False,
            description=f"run {self.options.expert_key}",
        )
        return self.worker

    async def _run(self, query: str, continuation: dict[str, Any]) -> Checkpoint | None:
        from runtime import RunSetting, load_config_for, parse_config, run

        options = self.options
        edited = continuation.pop("edited_config", None)
        try:
            if edited is not None:
                self.config = parse_config(edited[1], path=edited[0])
            else:
                self.config = load_config_for(
                    options.expert_key, options.config_path, options.workspace
                )
            if options.language_model is None:
                # Off the event loop: the screen keeps drawing while a client loads (or while
                # the warm-up started when the screen opened finishes).
                self._warm_started.add(_client_key(self.config))
                await asyncio.to_thread(self._load_model_client, self.config)
            setting = RunSetting(
                expert_key=options.expert_key,
                query=query,
                workspace=options.workspace,
                config_path=options.config_path,
                provider=options.provider,
                model=options.model,
                job_id=None if continuation.get("continue_job") else options.job_id,
                **self._extra(continuation),
                **continuation,
            )
            tracing = self._start_tracing()
            listener = self._listen
            if tracing is not None:
                recorder = tracing.recorder

                def listener(event: PerstackEvent) -> None:
                    self._listen(event)
                    recorder(event)

            try:
                checkpoint = await run(
                    setting, listener, model=options.language_model, config=self.config
                )
            finally:
                if tracing is not None:
                    # Sending what is left waits on the exporter: not on the event loop.
                    await asyncio.to_thread(tracing.finish)
        except asyncio.CancelledError:
            self.target.post_message(RunCancelled(self.job_id))
            raise
        except Exception as error:  # every failure is shown in the app, never a crash
            self.target.post_message(RunFailed(error))
            return None
        self.job_id = checkpoint.job_id
        self.checkpoint = checkpoint
        self.target.post_message(RunFinished(checkpoint))
        return checkpoint

    def _start_tracing(self) -> Tracing | None:
        """Tracing of the run when ``$OTEL_EXPORTER_OTLP_ENDPOINT`` is set, as for perstack run.

        What perstack run would warn about on stderr (no OpenTelemetry SDK) is a notification
        here: stderr is the screen.
        """
        if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            return None
        from runtime.cli import config_provider, start_tracing

        said = io.StringIO()
        with contextlib.redirect_stderr(said):
            tracing = start_tracing(None, self.options.provider or config_provider(self.config))
        if said.getvalue().strip():
            warning = said.getvalue().strip().removeprefix("perstack: warning: ")
            self.target.app.notify(warning, title="Tracing", severity="warning")
        return tracing

    def _listen(self, event: PerstackEvent) -> None:
        self.job_id = self.job_id or event.job_id
        self.target.post_message(RunEventReceived(event))

    # interactive tools -------------------------------------------------------------------------

    def pending_call(self) -> ToolCall | None:
        """The interactive tool call the job waits on."""
        if not self.waiting:
            return None
        assert self.checkpoint is not None
        pending = self.checkpoint.pending_tool_calls or []
        return pending[0] if pending else None

    def input_schema(self, call: ToolCall) -> dict[str, Any]:
        """The JSON schema of an interactive tool, from perstack.toml (``{}`` when unknown)."""
        if self.config is None:
            return {}
        for expert in self.config.config.experts.values():
            skill = (expert.skills or {}).get(call.skill_name)
            tools = getattr(skill, "tools", None)
            if isinstance(tools, dict) and call.tool_name in tools:
                try:
                    schema = json.loads(tools[call.tool_name].input_json_schema)
                except ValueError:
                    return {}
                return schema if isinstance(schema, dict) else {}
        return {}


def _client_key(config: LoadedConfig) -> str:
    """What in perstack.toml decides the model client (the run options are the controller's)."""
    toml = config.config
    return repr((toml.provider, toml.model, toml.env_path, config.base_dir))
