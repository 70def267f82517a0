"""The headless ``run`` command: one compact JSON event per line on stdout, diagnostics on stderr.

Shared by ``perstack run`` and ``perstack-runtime run``. Exit codes (§18.3 of the reference):
0 completed or paused for an interactive answer, 1 stopped by error, 3 stopped by max steps,
2 usage or configuration error before the run started (including a job that another process is
running), 130 interrupted (SIGINT, Ctrl+C), 143 terminated (SIGTERM). An interrupted job is stored
with status ``interrupted`` and continues with --continue.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar

from runtime._argtypes import int_at_least

# Public here for the studio, which shares the commands' colour and counting rules.
from runtime._terminal import counted as counted
from runtime._terminal import use_color as use_color

if TYPE_CHECKING:
    from runtime.schema.setting import RunSetting

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_MAX_STEPS = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

_T = TypeVar("_T")


class Interrupted(KeyboardInterrupt):
    """The run was stopped by SIGINT (Ctrl+C) or SIGTERM (``docker stop``, a CI timeout).

    By the time this is raised the runtime has ended the job's open runs with their stop events,
    stored their checkpoints and marked the job ``interrupted``: it continues with --continue.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """130 for SIGINT, 143 for SIGTERM (128 + the signal number, as shells report them)."""
        return EXIT_TERMINATED if self.signum == signal.SIGTERM else EXIT_INTERRUPTED

    def message(self) -> str:
        """The one line printed on stderr."""
        word = "terminated" if self.signum == signal.SIGTERM else "interrupted"
        return f"perstack: {word}; the last checkpoint is saved (continue with --continue)"


_STOP_REASONS: dict[int, str] = {
    signal.SIGINT: "interrupted by SIGINT (Ctrl+C)",
    signal.SIGTERM: "terminated by SIGTERM",
}
"""How each signal is named in the ``Interrupted`` stop event of the runs it ends."""


def _raise_terminated(_signum: int, _frame: object) -> None:
    raise Interrupted(signal.SIGTERM)


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Interrupted` as Ctrl+C raises KeyboardInterrupt.

    For the parts of a command outside :func:`run_interruptibly` (loading the config); that one
    handles both signals itself while it runs.
    """
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def report_interrupt(interrupt: KeyboardInterrupt) -> int:
    """Print the one line an interrupted command ends with; return its exit code."""
    stopped = interrupt if isinstance(interrupt, Interrupted) else Interrupted(signal.SIGINT)
    print(stopped.message(), file=sys.stderr)
    return stopped.exit_code


def run_interruptibly(main: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run(main)``, where SIGINT and SIGTERM cancel ``main`` instead of killing it.

    The cancellation carries the signal's name, which the runtime writes into the stop event of
    every run it ends. A second signal cancels again (for cleanup that hangs on a skill).

    Raises:
        Interrupted: a signal stopped ``main`` (also Ctrl+C before the loop started).
    """
    received: list[int] = []

    async def guarded() -> _T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def stop(signum: int) -> None:
            received.append(signum)
            task.cancel(_STOP_REASONS[signum])

        previous = {signum: signal.getsignal(signum) for signum in _STOP_REASONS}
        installed: list[int] = []
        for signum in _STOP_REASONS:
            try:
                loop.add_signal_handler(signum, stop, signum)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                continue
            installed.append(signum)
        try:
            return await main
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
                if previous[signum] is not None:  # None: not set from Python; leave the default
                    signal.signal(signum, previous[signum])

    try:
        return asyncio.run(guarded())
    except asyncio.CancelledError:
        if received:
            raise Interrupted(received[0]) from None
        raise
    except Interrupted:
        raise
    except KeyboardInterrupt:
        raise Interrupted(received[0] if received else signal.SIGINT) from None


_EXIT_BY_STATUS = {
    "completed": EXIT_OK,
    "stoppedByInteractiveTool": EXIT_OK,
    "stoppedByError": EXIT_ERROR,
    "stoppedByExceededMaxSteps": EXIT_MAX_STEPS,
}


_positive_int = int_at_least(1)
_non_negative_int = int_at_least(0)


def _reasoning_budget(text: str) -> str | int:
    if text in ("none", "minimal", "low", "medium", "high"):
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected none, minimal, low, medium, high or a token count, got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError("a token budget cannot be negative")
    return value


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Add the options shared by ``run`` and ``start`` (§2.2 of the reference)."""
    parser.add_argument(
        "--config", metavar="PATH", help="perstack.toml path (default: search upward)"
    )
    parser.add_argument(
        "--provider", help="provider: anthropic, openai, google, ... or any litellm provider"
    )
    parser.add_argument("--model", help="model id (default: perstack.toml, then claude-sonnet-4-5)")
    parser.add_argument(
        "--reasoning-budget",
        type=_reasoning_budget,
        metavar="BUDGET",
        help="none, minimal, low, medium, high or a token count",
    )
    parser.add_argument(
        "--max-steps", type=_positive_int, metavar="N", help="job-wide step limit (default 100)"
    )
    parser.add_argument(
        "--max-retries",
        type=_non_negative_int,
        metavar="N",
        help="retries per generation (default 5)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_int,
        metavar="MS",
        help="per-generation timeout in ms (default 300000)",
    )
    parser.add_argument("--job-id", metavar="ID", help="id for a new job")
    parser.add_argument(
        "--env-path",
        action="append",
        metavar="PATH",
        help="env file to load (repeatable; default: envPath, then .env and .env.local)",
    )
    parser.add_argument("--verbose", action="store_true", help="also show skills' stderr")
    parser.add_argument(
        "--continue",
        dest="continue_latest",
        action="store_true",
        help="continue the most recent job",
    )
    parser.add_argument("--continue-job", metavar="JOB_ID", help="continue this job")
    parser.add_argument(
        "--resume-from",
        metavar="CHECKPOINT_ID",
        help="resume from this checkpoint (needs --continue-job)",
    )
    parser.add_argument(
        "--fork-from",
        metavar="CHECKPOINT_ID",
        help="start a new job from this checkpoint of any stored job (coordinator or delegate), "
        "with the current perstack.toml",
    )
    parser.add_argument(
        "-i",
        "--interactive-tool-call-result",
        dest="interactive",
        action="store_true",
        help="the query is the answer to the pending interactive tool call",
    )
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="run exec and stdio skills in an OS sandbox (bubblewrap): read-only root, "
        "writable workspace, network only to each skill's allowedDomains",
    )
    parser.add_argument(
        "--otel",
        metavar="URL",
        help="send the job's trace to this OTLP/HTTP endpoint (default: $OTEL_EXPORTER_OTLP_"
        "ENDPOINT when set; needs the otel extra)",
    )
    parser.add_argument(
        "--runtime",
        choices=["local", "docker", "cursor", "claude-code", "gemini"],
        help="only 'local' runs here; use the Docker image for container isolation",
    )


def build_parser(prog: str = "perstack run") -> argparse.ArgumentParser:
    """The parser of the ``run`` command."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run an expert headless: one JSON event per line on stdout.",
    )
    parser.add_argument("expert_key", metavar="EXPERT", help="the expert to run")
    parser.add_argument(
        "query", metavar="QUERY", help="the query (or the interactive answer with -i)"
    )
    add_run_options(parser)
    return parser


def exit_code_for_status(status: str) -> int:
    """The exit code of a run that ended with a checkpoint of this status."""
    return _EXIT_BY_STATUS.get(status, EXIT_ERROR)


def exit_code_for_error(error: BaseException) -> int:
    """The exit code for an error raised instead of a run result."""
    from runtime.errors import CheckpointError, ConfigError, JobLockedError, UsageError

    # Raised before the run starts: the user named a bad file, key, expert, job or checkpoint,
    # or a job that another process is running.
    before_start = ConfigError | UsageError | CheckpointError | JobLockedError
    return EXIT_USAGE if isinstance(error, before_start) else EXIT_ERROR


def setting_from_args(args: argparse.Namespace, **overrides: Any) -> RunSetting:
    """The RunSetting for the options of :func:`add_run_options` (``overrides`` win)."""
    from runtime.schema.setting import RunSetting

    fields: dict[str, Any] = {
        "expert_key": args.expert_key,
        "query": args.query,
        "provider": args.provider,
        "model": args.model,
        "reasoning_budget": args.reasoning_budget,
        "max_steps": args.max_steps,
        "max_retries": args.max_retries,
        "timeout": args.timeout,
        "job_id": args.job_id,
        "env_path": args.env_path,
        "continue_latest": args.continue_latest,
        "continue_job": args.continue_job,
        "resume_from": args.resume_from,
        "fork_from": args.fork_from,
        "interactive_answer": args.interactive,
        "verbose": args.verbose,
        "sandbox": args.sandbox,
    }
    return RunSetting(**(fields | overrides))


def print_error(error: BaseException, stream: TextIO | None = None) -> None:
    """Print a user-facing error on stderr, with its title and no traceback."""
    stream = stream or sys.stderr
    title = getattr(error, "title", type(error).__name__)
    print(f"perstack: {title}: {error}", file=stream)


def run_command(args: argparse.Namespace, *, store: bool = True) -> int:
    """Execute a parsed ``run`` command and return the process exit code."""
    from runtime import PerstackError, run
    from runtime.engine.runner import load_config_for

    if args.runtime not in (None, "local"):
        print(
            f"perstack: Usage error: runtime {args.runtime!r} is not available here; "
            "use --runtime local (or the Docker image for isolation)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    out = sys.stdout
    log_warnings_to_stderr()

    settled = False

    def emit(event: object) -> None:
        nonlocal settled
        out.write(event.to_json() + "\n")  # type: ignore[attr-defined]
        out.flush()
        if not settled and getattr(event, "type", "") in _MODEL_ANSWERED:
            settled = True
            settle_startup()

    tracing = None
    try:
        with sigterm_interrupts():
            loaded = load_config_for(args.expert_key, args.config, Path.cwd())
            _prewarm_model(loaded, args)
            for warning in loaded.warnings:
                print(f"perstack: warning: {warning}", file=sys.stderr)
            setting = setting_from_args(args, config_path=args.config, store=store)
            tracing = start_tracing(args.otel, setting.provider or config_provider(loaded))
            listener = emit if tracing is None else _both(emit, tracing.recorder)
            checkpoint = run_interruptibly(run(setting, listener, config=loaded))
    except KeyboardInterrupt as interrupt:
        return report_interrupt(interrupt)
    except PerstackError as error:
        print_error(error)
        return exit_code_for_error(error)
    finally:
        if tracing is not None:
            tracing.finish()
    if checkpoint.status == "stoppedByError" and checkpoint.error is not None:
        print(
            f"perstack: run stopped by error: {checkpoint.error.name}: {checkpoint.error.message}",
            file=sys.stderr,
        )
    return exit_code_for_status(checkpoint.status)


def command_main(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    body: Callable[[argparse.Namespace], int],
    *,
    error_code: Callable[[BaseException], int] = exit_code_for_error,
) -> int:
    """Parse ``argv`` and run ``body`` as a command of the ``perstack`` line.

    ``--help`` exits 0 and a usage mistake 2 (argparse has printed why); SIGINT and SIGTERM end
    it as :func:`run_interruptibly` does; a runtime error is one line on stderr and
    ``error_code(error)``, never a traceback.
    """
    from runtime.errors import PerstackError

    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return EXIT_OK if exit_.code == 0 else EXIT_USAGE
    try:
        with sigterm_interrupts():
            return body(args)
    except KeyboardInterrupt as interrupt:
        return report_interrupt(interrupt)
    except PerstackError as error:
        print_error(error)
        return error_code(error)


@dataclass
class Tracing:
    """A job being traced: the listener that records spans, and the provider that sends them."""

    recorder: Any
    provider: Any

    def finish(self) -> None:
        """End open spans and send what is left (waits for the exporter)."""
        self.recorder.close()
        self.provider.shutdown()


def start_tracing(flag: str | None, model_provider: str | None) -> Tracing | None:
    """Tracing for ``--otel URL`` or ``$OTEL_EXPORTER_OTLP_ENDPOINT``; None when neither is set.

    Raises:
        UsageError: ``--otel`` was given but the OpenTelemetry SDK is not installed. Without
            the flag, a set variable and no SDK only warn: the variable may be meant for
            other programs.
    """
    import os

    if not flag and not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None  # the common case: not one telemetry module is imported
    from runtime.errors import UsageError
    from runtime.telemetry import SpanRecorder, tracer_provider, wanted

    endpoint = wanted(flag)
    assert endpoint is not None
    try:
        traces = tracer_provider(endpoint)
    except UsageError as error:
        if flag:
            raise
        print(f"perstack: warning: not tracing: {error.message}", file=sys.stderr)
        return None
    recorder = SpanRecorder(traces.get_tracer("perstack"), provider=model_provider)
    return Tracing(recorder=recorder, provider=traces)


def _both(first: Callable[[Any], None], second: Callable[[Any], None]) -> Callable[[Any], None]:
    def listener(event: Any) -> None:
        first(event)
        second(event)

    return listener


def config_provider(loaded: Any) -> str | None:
    """The provider perstack.toml names (``[provider] providerName``), or None."""
    provider = getattr(loaded.config, "provider", None)
    return getattr(provider, "provider_name", None)


def log_warnings_to_stderr() -> None:
    """Print the runtime's warnings (stale lockfile entries, tool clashes...) on stderr."""
    import logging

    class CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
        """Writes to ``sys.stderr`` as it is when a warning comes.

        Not as it was when the handler was made: a caller that swaps it (a test capturing it)
        keeps getting the warnings, and a closed one is never written to.
        """

        @property
        def stream(self) -> TextIO:
            return sys.stderr

        @stream.setter
        def stream(self, _value: TextIO) -> None:
            pass

    runtime_logger = logging.getLogger("runtime")
    if not any(getattr(h, "perstack_cli", False) for h in runtime_logger.handlers):
        handler = CurrentStderr()
        handler.setFormatter(logging.Formatter("perstack: warning: %(message)s"))
        handler.perstack_cli = True  # type: ignore[attr-defined]
        runtime_logger.addHandler(handler)
        runtime_logger.setLevel(logging.WARNING)


def _prewarm_model(loaded: Any, args: argparse.Namespace) -> None:
    # litellm's import (seconds, for providers without a native client) overlaps starting the
    # skills (MCP servers spawn) when it runs in a thread from now. A native client loads in
    # milliseconds on the run's way to its first request: loading it in a thread beside that
    # would only compete with it for the interpreter.
    import threading

    from runtime import prewarm_model

    threading.Thread(
        target=prewarm_model,
        args=(loaded,),
        kwargs={
            "workspace": Path.cwd(),
            "provider": args.provider,
            "model": args.model,
            "env_path": args.env_path,
            "native": False,
        },
        name="model-prewarm",
        daemon=True,
    ).start()


_MODEL_ANSWERED = frozenset(
    {
        "startStreamingReasoning",
        "startStreamingRunResult",
        "callTools",
        "completeRun",
        "retry",
        "stopRunByError",
    }
)
"""Events that mean the first model request is done, and with it the process's start-up."""


def defer_collection() -> None:
    """Turn the cyclic garbage collector off while a command-line process starts up.

    Start-up (imports, pydantic models, the config, the model client and its first connection)
    allocates a great deal and frees almost nothing: the collections it triggers (about 30 ms on
    a run's way to its first request) find nothing to free. :func:`settle_startup` turns
    collection back on once the model has answered.
    """
    import gc

    gc.disable()


def lean_start() -> None:
    """What a ``perstack run`` process of its own does first, before any other import.

    Collection waits until start-up is over (:func:`defer_collection`), and HTTP/2 support is
    left out: the native model clients speak HTTP/1.1 (httpx's default), but httpcore imports
    h2 whenever it is installed, about 6 ms of every start (litellm, which needs h2, takes the
    block away before its import). Only for a process that is ours: an embedding application
    keeps its imports.
    """
    defer_collection()
    if "h2" not in sys.modules:
        sys.modules["h2"] = None  # type: ignore[assignment]


def settle_startup() -> None:
    """After start-up: keep what it made out of later collections, and collect again.

    Only where :func:`defer_collection` turned collection off (a process of its own), so a
    caller of :func:`main` in a long-lived process keeps its collector as it was.
    """
    import gc

    if not gc.isenabled():
        # What start-up made lives as long as the process: later collections need not scan it.
        gc.freeze()
        gc.enable()


def exit_now(code: int) -> NoReturn:
    """End a finished command-line process at once, skipping the interpreter's teardown.

    By the time a run returns, its events are printed, its files written and closed (atomic
    writes), its skills and connections closed; what is left is Python freeing every object one
    by one, about 45 ms after ``perstack run`` has nothing more to say (and over a second once
    litellm was imported). Only for a process that is ending: never call it from a library.
    """
    import logging
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said anyway
            pass
    logging.shutdown()
    os._exit(code)


def main(
    argv: Sequence[str] | None = None, *, prog: str = "perstack run", store: bool = True
) -> int:
    """Parse ``argv`` as a ``run`` command and execute it."""
    args = build_parser(prog).parse_args(argv)
    return run_command(args, store=store)


def base_parser() -> argparse.ArgumentParser:
    """The parser of ``perstack base`` (for shell completion)."""
    from runtime.skills.base_server import build_parser as base

    return base("perstack base")


def serve_base(argv: Sequence[str]) -> int:
    """``perstack base``: serve the base skill over MCP stdio."""
    from runtime.skills.base_server import main as base_main

    return base_main(list(argv), prog="perstack base")
