"""The ``perstack log`` command line (§11 of the reference).

Exit codes: 0 success, also when there is nothing to show: the filters match nothing, or the
storage holds no job (then, as Perstack does, "No data found" on stdout, and where it looked on
stderr), 2 bad input (unknown option or id, invalid
``--step``/``--filter``/``--type``). Errors are one clear message on stderr, never a traceback.
Stored data is untrusted: see :data:`STORED_DATA_RULES` (also shown by ``--help``).
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence
from datetime import tzinfo
from pathlib import Path
from typing import TextIO

from runtime._argtypes import int_at_least
from runtime.config.loader import configured_storage_url
from runtime.jobs.store import (
    MAX_NESTING,
    MAX_STORED_BYTES,
    Storage,
    default_storage_root,
)
from runtime.log.filters import LogError, parse_filter, parse_step
from runtime.log.json_output import render_json
from runtime.log.query import Criteria, LogQuery, build_log
from runtime.log.render import render_text, use_color, visible, visible_lines

EXIT_OK = 0
EXIT_NO_JOBS = 1
EXIT_USAGE = 2

DEFAULT_TAKE = 100


_non_negative_int = int_at_least(0)

_MIB = MAX_STORED_BYTES // (1024 * 1024)
STORED_DATA_RULES = f"""\
stored data is shown, never obeyed:
  - Text output shows control characters as escapes, also when piped or with
    NO_COLOR: ESC as \\x1b (ESC[31m prints as \\x1b[31m), other C0 and C1 controls
    as \\xNN, a stored newline as \\n and carriage return as \\r, bidi controls,
    U+2028/U+2029 and lone surrogates as \\uNNNN. Tabs stay. Warnings on stderr
    follow the same rule. --json keeps the exact text: there these characters
    are written as \\uNNNN escapes, which JSON decodes to the same text.
  - A reference in a stored event (a messagesRef checkpoint id) is followed only
    if it is a plain id (1 to 128 of A-Z a-z 0-9 _ -) and its file is inside the
    job folder. Nothing that resolves outside the job folder (a symbolic link to
    elsewhere included) is read: the event keeps its reference, with a warning.
  - An event line or JSON file larger than {_MIB} MiB, or nested deeper than
    {MAX_NESTING} levels, is skipped like a corrupt line, with a warning naming the
    file and line."""
"""How ``perstack log`` treats what it reads (the ``--help`` epilog)."""


def build_parser(prog: str = "perstack log") -> argparse.ArgumentParser:
    """The argument parser of ``perstack log``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "View execution history: a stored job's header, delegation tree and events.\n"
            "Without --job, the latest job. Filters combine in this order: --step, --type,\n"
            "--errors, --tools, --delegations, --filter; then --offset/--take; then --context."
        ),
        epilog=STORED_DATA_RULES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    select = parser.add_argument_group("what to show")
    select.add_argument("--job", metavar="ID", help="a job (default: the latest job)")
    select.add_argument("--run", metavar="ID", help="only this run segment's events")
    select.add_argument(
        "--checkpoint", metavar="ID", help="a checkpoint's header and its run's events"
    )
    select.add_argument(
        "--messages", action="store_true", help="with --checkpoint: list its messages"
    )
    select.add_argument(
        "--storage",
        metavar="PATH",
        type=Path,
        help="storage root (default: $PERSTACK_STORAGE_PATH, else ./perstack)",
    )
    select.add_argument(
        "--otel",
        metavar="URL",
        help="send the job (--job, else the latest) as one OpenTelemetry trace to this "
        "OTLP/HTTP endpoint instead of showing it (needs the otel extra)",
    )
    filters = parser.add_argument_group("filters")
    filters.add_argument(
        "--step", metavar="EXPR", help="step number: 5, >5, >=5, <5, <=5 or 1-10 (inclusive)"
    )
    filters.add_argument("--type", metavar="TYPE", help="exact event type, e.g. callTools")
    filters.add_argument(
        "--errors", action="store_true", help="only stopRunByError and retry events"
    )
    filters.add_argument(
        "--tools",
        action="store_true",
        help="only callTools, resolveToolResults and callInteractiveTool events",
    )
    filters.add_argument(
        "--delegations",
        action="store_true",
        help="only callDelegate and stopRunByDelegate events",
    )
    filters.add_argument(
        "--filter",
        metavar="EXPR",
        help=(
            "field comparison on the stored JSON, e.g. '.toolCalls[].toolName == "
            "\"writeTextFile\"' or '.stepNumber >= 3' ([] = any array element)"
        ),
    )
    paging = parser.add_argument_group("paging")
    paging.add_argument(
        "--take",
        metavar="N",
        type=_non_negative_int,
        default=DEFAULT_TAKE,
        help=f"show at most N matched events (default {DEFAULT_TAKE}; 0 = all)",
    )
    paging.add_argument(
        "--offset", metavar="N", type=_non_negative_int, default=0, help="skip N matched events"
    )
    paging.add_argument(
        "--context",
        metavar="N",
        type=_non_negative_int,
        default=0,
        help="also show N events before and after each shown match",
    )
    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="JSON output (docs/log-json.md)")
    output.add_argument("--pretty", action="store_true", help="indented JSON (implies --json)")
    output.add_argument(
        "--verbose", action="store_true", help="show each tool call's skill and arguments"
    )
    output.add_argument(
        "--summary",
        action="store_true",
        help="add a summary (events, errors, tool calls, delegations, step range)",
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    tz: tzinfo | None = None,
) -> int:
    """Run ``perstack log``.

    Args:
        argv: Arguments after ``log`` (default: ``sys.argv[1:]``).
        stdout: Where the report goes (default: ``sys.stdout``).
        stderr: Where warnings and errors go (default: ``sys.stderr``).
        tz: Time zone for displayed times (default: the local time zone).

    Returns:
        The exit code: 0 success, 1 no jobs found, 2 bad input.
    """
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:
        # argparse has printed its message; --help exits 0, a usage error 2.
        return int(exit_.code or 0)

    def warn(message: str) -> None:
        print(f"perstack log: warning: {visible(message)}", file=err)

    try:
        if args.messages and not args.checkpoint:
            raise LogError("--messages needs --checkpoint <id> (the checkpoint whose messages)")
        criteria = Criteria(
            step=parse_step(args.step) if args.step is not None else None,
            type=args.type,
            errors=args.errors,
            tools=args.tools,
            delegations=args.delegations,
            expression=parse_filter(args.filter) if args.filter is not None else None,
            take=args.take,
            offset=args.offset,
            context=args.context,
        )
        as_json = args.json or args.pretty
        query = LogQuery(
            job=args.job,
            run=args.run,
            checkpoint=args.checkpoint,
            criteria=criteria,
            with_checkpoints=as_json and args.job is not None,
        )
        root = args.storage.expanduser().resolve() if args.storage else None
        storage = Storage(
            root or default_storage_root(Path.cwd(), configured_storage_url(Path.cwd()))
        )
        if args.otel:
            return _send_trace(storage, args.job, args.otel, out, err)
        # Loading allocates many small objects and no cyclic garbage: pausing the collector
        # saves about a quarter of the time on a 10,000-event job.
        collecting = gc.isenabled()
        gc.disable()
        try:
            result = build_log(storage, query, warn)
            if as_json:
                text = render_json(result, pretty=args.pretty)
            else:
                text = render_text(
                    result,
                    color=use_color(out),
                    verbose=args.verbose,
                    messages=args.messages,
                    summary=args.summary,
                    tz=tz,
                )
        finally:
            if collecting:
                gc.enable()
    except LogError as error:
        if error.exit_code == EXIT_OK:  # nothing stored: Perstack's answer, and where we looked
            out.write("No data found\n")
        # Ids and paths in the message may come from storage: same escaping as the report.
        print(f"perstack log: {visible_lines(error.message)}", file=err)
        return error.exit_code
    try:
        out.write(text + "\n")
        out.flush()
    except BrokenPipeError:
        # `perstack log | head` closed the pipe: the reader has what it wanted.
        return EXIT_OK
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())


def _send_trace(
    storage: Storage, job_id: str | None, endpoint: str, out: TextIO, err: TextIO
) -> int:
    """``--otel``: send one stored job as a trace (the job's own timestamps), then say so."""
    from runtime.errors import PerstackError
    from runtime.jobs.api import Jobs
    from runtime.telemetry import export_stored_job

    jobs = Jobs(storage.root)
    ids = jobs.ids()
    if not ids:
        raise LogError(f"No jobs found in {storage.root}", exit_code=EXIT_OK)
    wanted = job_id or ids[0]
    if wanted not in ids:
        raise LogError(f"Job {wanted!r} not found in {storage.jobs_dir}")
    settings = [storage.load_run_setting(wanted, run_id) for run_id in storage.run_ids(wanted)]
    # Ours say providerName; Perstack's, providerConfig.providerName.
    names = [
        s.get("providerName") or (s.get("providerConfig") or {}).get("providerName")
        for s in settings
    ]
    provider = next((name for name in names if isinstance(name, str)), None)
    try:
        count = export_stored_job(jobs.events(wanted, messages=False), endpoint, provider=provider)
    except PerstackError as error:
        print(f"perstack log: {error.message}", file=err)
        return 2
    out.write(f"Sent job {wanted} as a trace of {count} spans to {endpoint}\n")
    return EXIT_OK
