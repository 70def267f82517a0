"""The ``perstack diff`` command line.

Exit codes: 0 the comparison was made (whether the jobs differ is in the output), 1 they differ
and ``--exit-code`` asked for that, 2 bad input (an unknown job id, an unknown option). Errors
are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from runtime._terminal import use_color, visible
from runtime.diff.build import diff_jobs, origin_of
from runtime.diff.render import render_json, render_text
from runtime.errors import StorageError
from runtime.jobs.api import Jobs

EXIT_OK = 0
EXIT_DIFFERENT = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``perstack diff``."""
    parser = argparse.ArgumentParser(
        prog="perstack diff",
        description=(
            "Compare two stored jobs: their delegation trees aligned by expert and call order,\n"
            "and per step the tool calls, arguments, results, text, tokens, cost and time.\n"
            "The first line after the jobs says what diverged first. '-' is job A, '+' job B.\n"
            "With one job (a replay or a fork), it is compared with the job it came from."
        ),
        epilog=(
            "exit codes: 0 compared (also when the jobs differ), 1 they differ and --exit-code\n"
            "was given, 2 bad input (an unknown job id). Time never makes two jobs differ."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("job_a", metavar="JOB_A", help="a job id (see `perstack log`)")
    parser.add_argument(
        "job_b",
        metavar="JOB_B",
        nargs="?",
        help="the job to compare it with (default: JOB_A is compared with its origin)",
    )
    parser.add_argument("--json", action="store_true", help="the comparison as one JSON document")
    parser.add_argument("--pretty", action="store_true", help="with --json: indented")
    parser.add_argument(
        "--all", action="store_true", help="list every step, also runs of equal steps"
    )
    parser.add_argument(
        "--exit-code",
        action="store_true",
        help="exit 1 when the jobs differ (as git diff --exit-code)",
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    workspace: Path | None = None,
) -> int:
    """Entry point of ``perstack diff``."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return EXIT_OK if exit_.code == 0 else EXIT_USAGE
    jobs = Jobs.for_workspace(workspace or Path.cwd())
    try:
        job_a, job_b = args.job_a, args.job_b
        if job_b is None:
            job_a, job_b = origin_of(jobs, args.job_a), args.job_a
            if job_a is None:
                raise StorageError(
                    f"Job {args.job_a!r} is neither a replay nor a fork: "
                    "name the job to compare it with (perstack diff JOB_A JOB_B)"
                )
        result = diff_jobs(jobs, job_a, job_b)
    except StorageError as error:
        print(f"perstack diff: {visible(error.message)}", file=err)
        return EXIT_USAGE
    if args.json or args.pretty:
        text = render_json(result, pretty=args.pretty)
    else:
        text = render_text(result, color=use_color(out), all_steps=args.all)
    try:
        out.write(text + "\n")
        out.flush()
    except BrokenPipeError:
        # `perstack diff A B | head` closed the pipe: the reader has what it wanted.
        return EXIT_OK
    if args.exit_code and not result.same:
        return EXIT_DIFFERENT
    return EXIT_OK
