"""``perstack eval FILE``: run an eval set and print a table (or ``--json``).

``perstack batch EXPERT --queries FILE`` runs one job per query the same way (an eval set of
cases without checks, written under the storage root's ``batches/``), locally or ``--ray``.

Exit codes: 0 every case passed, 1 a case failed, 2 the eval set, the config or an option is
wrong (nothing ran), 130/143 interrupted. Results are stored (see :mod:`runtime.evals.results`)
so that ``--compare last`` shows what regressed and what improved.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from runtime._argtypes import int_at_least
from runtime._terminal import use_color, visible
from runtime.cli import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    command_main,
    run_interruptibly,
)
from runtime.errors import UsageError
from runtime.evals.results import CaseResult, Comparison, EvalRun


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``perstack eval``."""
    parser = argparse.ArgumentParser(
        prog="perstack eval",
        description="Run an eval set (a TOML file of cases and checks) and score the team.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the eval set, e.g. evals.toml")
    parser.add_argument(
        "--concurrency", type=int_at_least(1), default=4, metavar="N", help="cases at once (4)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--compare",
        metavar="PREVIOUS",
        help="compare with an earlier run: 'last', a run id, or a results .json file",
    )
    parser.add_argument(
        "--replay",
        action="store_true",
        help="answer model calls from the last run's recordings where they still match",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run each case as a task on a Ray cluster (no address: start a local one; needs "
        "the scale extra)",
    )
    parser.add_argument("--config", metavar="PATH", help="perstack.toml (default: the eval's)")
    parser.add_argument(
        "--keep-workspaces", action="store_true", help="keep each case's scratch folder"
    )
    return parser


def _usage(_error: BaseException) -> int:
    # Everything eval refuses is the eval set's, the config's or an option's: nothing ran.
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``perstack eval``."""
    return command_main(build_parser(), argv, _eval, error_code=_usage)


def _eval(args: argparse.Namespace) -> int:
    from runtime.engine.runner import load_config_for, run
    from runtime.evals.format import load_eval_set
    from runtime.evals.results import compare, find_eval_run, store_eval_run
    from runtime.evals.runner import EvalOptions, run_eval_set
    from runtime.jobs.store import default_storage_root

    eval_set = load_eval_set(args.file)
    config_path = args.config or eval_set.config_path()
    first_expert = eval_set.expert_of(eval_set.cases[0])
    loaded = load_config_for(
        first_expert, str(config_path) if config_path else None, eval_set.path.parent
    )
    project = loaded.path.parent if loaded.path else eval_set.path.parent
    storage_root = default_storage_root(project, loaded.config.storage_url)
    previous = (
        find_eval_run(storage_root, eval_set.name, args.compare, before=None)
        if args.compare
        else None
    )
    replay = _last_run(storage_root, eval_set.name) if args.replay else None
    progress = ProgressLine(sys.stderr, len(eval_set.cases))
    options = EvalOptions(
        concurrency=args.concurrency,
        storage_root=storage_root,
        replay=replay,
        keep_workspaces=args.keep_workspaces,
    )
    if args.ray is not None:
        from runtime.fanout import run_on_ray

        if args.replay:
            raise UsageError("--replay runs here; drop it with --ray (or --ray with no replay)")
        result = run_on_ray(
            eval_set,
            config_path=Path(config_path) if config_path else None,
            storage_root=storage_root,
            address=args.ray or None,
            progress=progress.update,
            storage_url=loaded.config.storage_url,
        )
    else:
        result = run_interruptibly(run_eval_set(eval_set, loaded, options, run, progress.update))
    progress.finish()
    stored = store_eval_run(storage_root, result)
    comparison = compare(previous, result) if previous is not None else None
    if args.json:
        document = result.to_dict()
        if comparison is not None and previous is not None:
            document["comparison"] = {"previous": previous.id, **comparison.to_dict()}
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        print(render_table(result, color=use_color(sys.stdout)))
        if comparison is not None and previous is not None:
            print(render_comparison(previous, comparison))
    print(f"perstack eval: results stored in {stored}", file=sys.stderr)
    return EXIT_OK if result.failed == 0 else EXIT_ERROR


class ProgressLine:
    """Progress on stderr: a bar redrawn in place on a terminal, else one line per case."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.total = total
        self.passed = 0
        self.failed = 0
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        if self.tty:
            self._draw(0)

    def update(self, case: CaseResult, done: int, total: int) -> None:
        """One case finished."""
        self.passed += case.passed
        self.failed += not case.passed
        if self.tty:
            self._draw(done)
        else:
            verdict = "PASS" if case.passed else "FAIL"
            seconds = case.duration_ms / 1000
            print(
                f"[{done}/{total}] {verdict} {visible(case.name)} ({seconds:.1f} s)",
                file=self.stream,
                flush=True,
            )

    def _draw(self, done: int) -> None:
        width = 24
        filled = round(width * done / self.total) if self.total else width
        elapsed = time.monotonic() - self.started
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} cases · "
            f"{self.passed} passed · {self.failed} failed · {elapsed:.0f} s"
        )
        self.stream.flush()

    def finish(self) -> None:
        """End the bar's line."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _cost(case: CaseResult) -> str:
    cost = case.usage.cost_usd
    return f"${cost:.4f}" if cost is not None else "n/a"


def render_table(run: EvalRun, *, color: bool = False) -> str:
    """The results as a table: one row per case, then why each failing check failed."""

    def paint(text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if color else text

    headers = ["case", "result", "checks", "steps", "tokens", "cost", "time"]
    rows = []
    for case in run.cases:
        marks = "".join("✓" if check.passed else "✗" for check in case.checks) or "-"
        rows.append(
            [
                visible(case.name),
                "PASS" if case.passed else "FAIL",
                marks,
                str(case.steps),
                f"{case.usage.total_tokens:,}",
                _cost(case),
                f"{case.duration_ms / 1000:.1f} s",
            ]
        )
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    right = {3, 4, 5, 6}

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ).rstrip()

    out = [line(headers)]
    for row in rows:
        text = line(row)
        verdict = row[1]
        out.append(text.replace(verdict, paint(verdict, "32" if verdict == "PASS" else "31"), 1))
    failures = []
    for case in run.cases:
        if case.error and not case.passed:
            failures.append(f"  {visible(case.name)}: run {case.status}: {visible(case.error)}")
        for check in case.checks:
            if not check.passed:
                failures.append(
                    f"  {visible(case.name)}: ✗ {visible(check.label)}: {visible(check.detail)}"
                )
    tokens = sum(case.usage.total_tokens for case in run.cases)
    out.append("")
    out.append(
        f"{run.passed}/{len(run.cases)} cases passed · {tokens:,} tokens · "
        f"{run.duration_ms / 1000:.1f} s · run {run.id}"
    )
    if failures:
        out += ["", "Failures:", *failures]
    return "\n".join(out)


def render_comparison(previous: EvalRun, comparison: Comparison) -> str:
    """What changed since ``previous``, in a few lines."""
    out = ["", f"Compared with run {previous.id}:"]
    if comparison.regressions:
        out.append(
            f"  regressions ({len(comparison.regressions)}): {', '.join(comparison.regressions)}"
        )
    if comparison.improvements:
        out.append(
            f"  improvements ({len(comparison.improvements)}): {', '.join(comparison.improvements)}"
        )
    if comparison.added:
        out.append(f"  new cases: {', '.join(comparison.added)}")
    if comparison.removed:
        out.append(f"  cases gone: {', '.join(comparison.removed)}")
    for case, changes in comparison.check_changes.items():
        out.append(f"  {case}: " + "; ".join(changes))
    if len(out) == 2:
        out.append("  no case changed its result")
    return "\n".join(visible(line) if i > 1 else line for i, line in enumerate(out))


def _last_run(storage_root: Path, name: str) -> EvalRun | None:
    from runtime.evals.results import stored_eval_runs

    runs = stored_eval_runs(storage_root, name)
    if not runs:
        print(
            f"perstack eval: no earlier run of {name!r} to replay from: every case calls the model",
            file=sys.stderr,
        )
        return None
    return runs[-1]


def build_batch_parser() -> argparse.ArgumentParser:
    """The parser of ``perstack batch``."""
    parser = argparse.ArgumentParser(
        prog="perstack batch",
        description="Run an expert on every query of a file (one job per query), locally or on "
        "a Ray cluster; print a table of the jobs.",
    )
    parser.add_argument("expert", metavar="EXPERT", help="the expert to run")
    parser.add_argument(
        "--queries",
        required=True,
        metavar="FILE",
        help="one query per line (blank lines and lines starting with # are skipped); - reads "
        "standard input",
    )
    parser.add_argument(
        "--concurrency", type=int_at_least(1), default=4, metavar="N", help="jobs at once (4)"
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run each query as a task on a Ray cluster (no address: start a local one)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--config", metavar="PATH", help="perstack.toml (default: search upward)")
    return parser


def batch_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``perstack batch``."""
    return command_main(build_batch_parser(), argv, _batch, error_code=_usage)


def _batch(args: argparse.Namespace) -> int:
    args.file = _batch_file(args)
    args.compare, args.replay, args.keep_workspaces = None, False, False
    return _eval(args)


def _batch_file(args: argparse.Namespace) -> Path:
    """The batch as an eval set of cases without checks, written where jobs are stored."""
    from runtime.engine.runner import load_config_for
    from runtime.evals.format import eval_set_toml
    from runtime.files import atomic_write
    from runtime.jobs.store import default_storage_root
    from runtime.schema.ids import new_id

    try:
        text = sys.stdin.read() if args.queries == "-" else Path(args.queries).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"Cannot read the queries file {args.queries}: {error}") from None
    queries = [q.strip() for q in text.splitlines() if q.strip() and not q.lstrip().startswith("#")]
    if not queries:
        raise UsageError(f"{args.queries} has no query (one per line)")
    loaded = load_config_for(args.expert, args.config, Path.cwd())
    project = loaded.path.parent if loaded.path else Path.cwd()
    if loaded.path and not args.config:
        args.config = str(loaded.path)
    batch_id = new_id()
    cases = [
        {"name": f"{index:0{len(str(len(queries)))}d} {query[:60]}", "query": query}
        for index, query in enumerate(queries, start=1)
    ]
    document = {"eval": {"name": f"batch-{args.expert}", "expert": args.expert}, "cases": cases}
    path = default_storage_root(project, loaded.config.storage_url) / "batches" / f"{batch_id}.toml"
    atomic_write(path, eval_set_toml(document, label=path.name), make_parents=True)
    return path
