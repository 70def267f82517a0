"""``perstack start``: run an expert with a live view.

Without a terminal, or with ``--no-tui``, the live view is plain text (one line per step,
indented by delegation depth) and interactive questions are asked on stdin.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.cli import (
    EXIT_USAGE,
    add_run_options,
    exit_code_for_error,
    exit_code_for_status,
    print_error,
    report_interrupt,
    run_interruptibly,
    setting_from_args,
    sigterm_interrupts,
)
from studio.plain import PlainView

if TYPE_CHECKING:
    from studio.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``perstack start``."""
    parser = argparse.ArgumentParser(
        prog="perstack start",
        description="Run an expert with a live view of the team's steps.",
    )
    parser.add_argument("expert_key", nargs="?", metavar="EXPERT", help="the expert to run")
    parser.add_argument("query", nargs="?", metavar="QUERY", help="the query")
    parser.add_argument("--no-tui", action="store_true", help="plain-text live view")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run the bundled demo team on a scripted model (no API key needed)",
    )
    web = parser.add_argument_group("in a browser")
    web.add_argument(
        "--web", action="store_true", help="serve the studio to a web browser (textual-serve)"
    )
    web.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on with --web (default 127.0.0.1: this machine only; "
        "0.0.0.0 in a container)",
    )
    web.add_argument(
        "--port", type=int, default=8000, help="port to listen on with --web (default 8000)"
    )
    add_run_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``perstack start``."""
    args = build_parser().parse_args(argv)
    if args.web:
        return _serve(list(sys.argv[1:] if argv is None else argv), args.host, args.port)
    from studio.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"perstack: Settings error: {error.message}", file=sys.stderr)
        return EXIT_USAGE
    _run_defaults(args, settings)
    if _use_tui(args):
        if args.demo or args.expert_key:
            return _run_tui(args, settings)
        from studio.tui import run_tui

        _quiet_runtime_warnings()
        return run_tui(config=args.config, cwd=Path.cwd(), settings=settings)
    return _start(args)


def _run_defaults(args: argparse.Namespace, settings: Settings) -> None:
    """The settings' provider and model, where neither the options nor perstack.toml name one."""
    if args.demo or (settings.provider is None and settings.model is None):
        return
    from runtime import PerstackError, load_config

    try:
        config = load_config(args.config, Path.cwd()).config
    except PerstackError:  # no file (the studio may create one) or a broken one (reported later)
        config = None
    if args.provider is None and (config is None or config.provider is None):
        args.provider = settings.provider
    if args.model is None and (config is None or config.model is None):
        args.model = settings.model


def _quiet_runtime_warnings() -> None:
    # Textual draws on stderr: the runtime's warnings must not reach it while the app runs.
    import logging

    logging.getLogger("runtime").addHandler(logging.NullHandler())


def _run_tui(args: argparse.Namespace, settings: Settings) -> int:
    from studio.run_app import make_run_app

    if not args.demo and (refused := _refuse_early(args)) is not None:
        return refused
    _quiet_runtime_warnings()

    options = {
        "reasoning_budget": args.reasoning_budget,
        "max_steps": args.max_steps,
        "max_retries": args.max_retries,
        "timeout": args.timeout,
        "env_path": args.env_path,
        "fork_from": args.fork_from,
    }
    app = make_run_app(
        workspace=None if args.demo else Path.cwd(),
        expert_key=args.expert_key,
        query=args.query,
        config_path=args.config,
        provider=args.provider,
        model=args.model,
        demo=args.demo,
        job_id=args.job_id,
        extra={k: v for k, v in options.items() if v is not None}
        | {"sandbox": args.sandbox, "verbose": args.verbose},
        theme=settings.theme,
    )
    from studio.keys import Keymap  # textual: only for the full-screen view

    app.keymap = Keymap(settings.keymap)
    app.keymap.apply(app)
    return app.run() or 0


def _refuse_early(args: argparse.Namespace) -> int | None:
    """Report a mistyped expert or a broken file before the full-screen view opens.

    The run view would open a job view first and show the error seconds later; on the
    terminal, with its exit code, it is where a typo is expected to be answered.
    """
    from runtime import PerstackError, load_config_for, resolve_expert

    try:
        loaded = load_config_for(args.expert_key, args.config, Path.cwd())
        resolve_expert(loaded, args.expert_key)
    except PerstackError as error:
        print_error(error)
        return exit_code_for_error(error)
    return None


def _use_tui(args: argparse.Namespace) -> bool:
    # The full-screen studio needs a terminal on both ends (or a browser, through
    # textual-serve's driver); anything else gets plain text.
    if args.no_tui:
        return False
    served = os.environ.get("TEXTUAL_DRIVER", "").endswith(":WebDriver")
    return served or (sys.stdout.isatty() and sys.stdin.isatty())


def _serve(argv: list[str], host: str, port: int) -> int:
    """``--web``: serve the same studio over HTTP; each browser tab runs its own session."""
    import shlex

    from textual_serve.server import Server

    studio_args: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--host", "--port"):
            skip = True
        elif arg != "--web" and not arg.startswith(("--host=", "--port=")):
            studio_args.append(arg)
    command = shlex.join([sys.executable, "-m", "studio", "start", *studio_args])
    # The page names its own address in every link: a server listening on all interfaces (in a
    # container, published with -p) is reached as localhost.
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}"
    Server(command, host=host, port=port, title="Perstack Studio", public_url=url).serve()
    return 0


def _start(args: argparse.Namespace) -> int:
    """The plain-text start: the runs of one job, answering interactive tools on stdin.

    Ctrl+C (or SIGTERM) is handled as in ``perstack run``: the runtime ends the job as
    ``interrupted``, one line goes to stderr and the exit code is 130 (143).
    """
    from runtime import PerstackError, load_config_for, run

    model = None
    workspace = Path.cwd()
    demo_dir: str | None = None
    if args.demo:
        from studio.demo import DEMO_CONFIG, DEMO_EXPERT, DEMO_QUERY, demo_model

        demo_dir = tempfile.mkdtemp(prefix="perstack-demo-")
        workspace = Path(demo_dir)
        shutil.copy(DEMO_CONFIG, workspace / "perstack.toml")
        args.expert_key = args.expert_key or DEMO_EXPERT
        args.query = args.query or DEMO_QUERY
        model = demo_model()
        print(f"Demo: the bundled team on a scripted model (no API key). Workspace: {workspace}")
    if not args.expert_key or not args.query:
        print(
            "perstack: Usage error: perstack start needs EXPERT and QUERY here "
            "(no terminal UI is available); try: perstack start --demo",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from runtime.cli import log_warnings_to_stderr

    log_warnings_to_stderr()
    view = PlainView()
    query: str = args.query
    answering = bool(args.interactive)
    continue_job = args.continue_job
    try:
        with sigterm_interrupts():
            loaded = load_config_for(args.expert_key, None if args.demo else args.config, workspace)
            for warning in loaded.warnings:
                print(f"perstack: warning: {warning}", file=sys.stderr)
            while True:
                setting = setting_from_args(
                    args,
                    query=query,
                    workspace=workspace,
                    continue_job=continue_job,
                    interactive_answer=answering,
                )
                checkpoint = run_interruptibly(run(setting, view, model=model, config=loaded))
                if checkpoint.status != "stoppedByInteractiveTool":
                    break
                answer = _ask(checkpoint)
                if answer is None:
                    print(
                        f"No answer given. Answer later with: perstack run {args.expert_key} "
                        f'"<answer>" --continue-job {checkpoint.job_id} -i'
                    )
                    break
                query, answering, continue_job = answer, True, checkpoint.job_id
                args.resume_from = args.fork_from = None  # the job they made goes on
    except KeyboardInterrupt as interrupt:
        return report_interrupt(interrupt)
    except PerstackError as error:
        print_error(error)
        return exit_code_for_error(error)
    if demo_dir:
        print(f"\nThe demo's files are in {demo_dir}")
    return exit_code_for_status(checkpoint.status)


def _ask(checkpoint: object) -> str | None:
    pending = getattr(checkpoint, "pending_tool_calls", None) or []
    if not pending:
        return None
    call = pending[0]
    print(f"\n? {call.tool_name} asks: {call.args}")
    try:
        line = input("> ")
    except EOFError:
        return None
    return line.strip() or None
