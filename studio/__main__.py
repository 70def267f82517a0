"""The ``perstack`` command line.

Sub-commands import what they need on demand, so ``perstack --version`` and ``--help`` stay fast
and never load litellm or textual.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from runtime.version import __version__

_COMMANDS = {
    "start": "run an expert with a live view (--demo: a sample team, no API key)",
    "run": "run an expert headless (JSONL events on stdout)",
    "log": "inspect stored jobs, runs, checkpoints and events",
    "install": "record every expert's tool definitions in perstack.lock",
    "export": "write a stored job in Perstack's layout (--format perstack)",
    "diff": "compare two stored jobs step by step (what diverged first)",
    "replay": "run a stored job again, its model calls answered by its recording",
    "eval": "run an eval set (cases and checks) and score the team",
    "batch": "run an expert on every query of a file, locally or on a Ray cluster",
    "base": "serve the base skill as an MCP stdio server",
    "completion": "print the shell completion script: perstack completion bash|zsh|fish",
}

_SHELLS = ("bash", "zsh", "fish", "tcsh", "powershell")


def _command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command's own parser (imported only to complete a command line)."""
    from runtime import cli, evaluate, export, install, replay
    from runtime.diff import build_parser as diff_parser
    from runtime.log import build_parser as log_parser
    from studio.start import build_parser as start_parser

    completion = argparse.ArgumentParser(prog="perstack completion", add_help=False)
    completion.add_argument("shell", choices=_SHELLS)
    return {
        "start": start_parser(),
        "run": cli.build_parser(),
        "log": log_parser(),
        "install": install.build_parser(),
        "export": export.build_parser(),
        "diff": diff_parser(),
        "replay": replay.build_parser(),
        "eval": evaluate.build_parser(),
        "batch": evaluate.build_batch_parser(),
        "base": cli.base_parser(),
        "completion": completion,
    }


def _complete() -> None:
    """Answer the shell's completion request (argcomplete's protocol) and exit."""
    import argcomplete

    parser = _parser(with_commands=_command_parsers())
    argcomplete.autocomplete(parser)


def _completion_script(args: Sequence[str]) -> int:
    from argcomplete.shell_integration import shellcode

    if len(args) != 1 or args[0] not in _SHELLS:
        print(
            f"usage: perstack completion {{{','.join(_SHELLS)}}}\n\n"
            "Add to your shell's startup file, e.g. for bash:\n"
            '  eval "$(perstack completion bash)"',
            file=sys.stderr,
        )
        return 2
    print(shellcode(["perstack"], shell=args[0]))
    return 0


def _parser(
    with_commands: dict[str, argparse.ArgumentParser] | None = None,
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perstack",
        description="Author, run and debug Perstack expert teams.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"perstack {__version__}")
    parser.add_argument(
        "--no-color",
        action="store_true",
        help="no colour in any output, as NO_COLOR=1 does (accepted after the command too)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in _COMMANDS.items():
        if with_commands is None:
            commands.add_parser(name, help=summary, add_help=False)
        else:
            commands.add_parser(name, help=summary, parents=[with_commands[name]], add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``perstack``."""
    import os

    if "_ARGCOMPLETE" in os.environ:
        _complete()  # exits
    from runtime import take_no_color  # not runtime.cli: --version must not load asyncio

    args = take_no_color(list(sys.argv[1:] if argv is None else argv))
    parser = _parser()
    if not args:
        # A command is required: help on stderr and a usage error, so a script that forgot
        # its command fails instead of passing.
        parser.print_help(sys.stderr)
        return 2
    command, rest = args[0], args[1:]
    if command == "start":
        from studio.start import main as start_main

        return start_main(rest)
    if command == "run":
        from runtime.cli import exit_now, lean_start
        from runtime.cli import main as run_main

        if argv is None:  # a process of its own: see lean_start
            lean_start()
        code = run_main(rest)
        if argv is None:  # a process of its own, not a caller's function call
            exit_now(code)
        return code
    if command == "log":
        from runtime.log import main as log_main

        return _reporting(log_main, rest)
    if command == "install":
        from runtime.install import main as install_main

        return install_main(rest)
    if command == "export":
        from runtime.export import main as export_main

        return _reporting(export_main, rest)
    if command == "diff":
        from runtime.diff import main as diff_main

        return _reporting(diff_main, rest)
    if command == "replay":
        from runtime.replay import main as replay_main

        return replay_main(rest)
    if command == "eval":
        from runtime.evaluate import main as eval_main

        return eval_main(rest)
    if command == "completion":
        return _completion_script(rest)
    if command == "batch":
        from runtime.evaluate import batch_main

        return batch_main(rest)
    if command == "base":
        from runtime.cli import serve_base

        return serve_base(rest)
    parser.parse_args(args)
    return 0


def _reporting(command: Callable[[list[str]], int], rest: list[str]) -> int:
    """Run a reading command, reporting an error it leaves to its caller.

    Such as a store named by PERSTACK_STORAGE_URL that cannot be used: one line on stderr and
    exit 2, no traceback.
    """
    from runtime import PerstackError

    try:
        return command(rest)
    except PerstackError as error:
        print(f"perstack: {error.title}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
