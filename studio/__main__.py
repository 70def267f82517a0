"""The ``perstack`` command line.

Sub-commands import what they need on demand, so ``perstack --version`` and ``--help`` stay fast
and never load litellm or textual.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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
    "base": "serve the base skill as an MCP stdio server",
}


def _parser() -> argparse.ArgumentParser:
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
        commands.add_parser(name, help=summary, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``perstack``."""
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

        return log_main(rest)
    if command == "install":
        from runtime.install import main as install_main

        return install_main(rest)
    if command == "export":
        from runtime.export import main as export_main

        return export_main(rest)
    if command == "diff":
        from runtime.diff import main as diff_main

        return diff_main(rest)
    if command == "replay":
        from runtime.replay import main as replay_main

        return replay_main(rest)
    if command == "eval":
        from runtime.evaluate import main as eval_main

        return eval_main(rest)
    if command == "base":
        from runtime.cli import serve_base

        return serve_base(rest)
    parser.parse_args(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
