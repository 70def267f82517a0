"""``perstack export``: write a stored job in Perstack's own layout, for Perstack's tools.

Our storage keeps one ``events.jsonl`` per run whose lines refer to checkpoint files for the
conversation (linear in the job's length). Perstack's keeps one JSON file per event, each with
its whole conversation inline::

    <DIR>/jobs/<jobId>/job.json
    <DIR>/jobs/<jobId>/checkpoints/<checkpointId>.json
    <DIR>/jobs/<jobId>/runs/<runId>/run-setting.json
    <DIR>/jobs/<jobId>/runs/<runId>/event-<epochMs>-<stepNumber>-<type>.json

Only events with a step number are written (Perstack stores those only). Two events of one run
with the same millisecond, step and type would share a file name; Perstack overwrites the first
silently, this command keeps the first and names every event it could not write.

Exit codes: 0 written (collisions are reported on stderr), 2 bad input (unknown job, a
destination that already holds the job, an unknown ``--format``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from runtime.errors import CheckpointError, StorageError
from runtime.files import atomic_write
from runtime.jobs.api import Jobs
from runtime.jobs.store import read_json_file

EXIT_OK = 0
EXIT_USAGE = 2


@dataclass
class ExportReport:
    """What :func:`export_perstack` wrote.

    Attributes:
        job_dir: The job's folder in the destination.
        checkpoints: Checkpoint files written.
        events: Event files written.
        collided: ``(event id, type, file name)`` of each event left out because an earlier
            event of its run had taken its file name.
    """

    job_dir: Path
    checkpoints: int = 0
    events: int = 0
    collided: list[tuple[str, str, str]] = field(default_factory=list)


def export_perstack(jobs: Jobs, job_id: str, destination: Path) -> ExportReport:
    """Write one job under ``destination`` (a storage root) in Perstack's layout.

    Args:
        jobs: Where the job is stored.
        job_id: The job.
        destination: The storage root to write into (its ``jobs/<jobId>`` must not exist yet).

    Returns:
        What was written, and which events collided.

    Raises:
        StorageError: The job does not exist, cannot be read, or the destination already holds
            it or cannot be written.
    """
    jobs.get(job_id)  # unknown job: StorageError naming where it looked
    target = destination / "jobs" / job_id
    if target.exists():
        raise StorageError(f"{target} already exists; export into an empty folder")
    report = ExportReport(job_dir=target)
    source = jobs.job_dir(job_id)
    try:
        job_json = source / "job.json"
        if job_json.is_file():
            document = jobs.storage.load_job(job_id).to_dict()
            _write(target / "job.json", json.dumps(document, ensure_ascii=False, indent=2))
        for summary in jobs.checkpoints(job_id):
            checkpoint = jobs.checkpoint(job_id, summary.id)
            _write(target / "checkpoints" / f"{checkpoint.id}.json", checkpoint.to_json())
            report.checkpoints += 1
        for run_id in jobs.storage.run_ids(job_id):
            setting = jobs.storage.run_dir(job_id, run_id) / "run-setting.json"
            if setting.is_file():
                data = read_json_file(setting)
                _write(target / "runs" / run_id / "run-setting.json", _compact(data))
        taken: set[Path] = set()
        for event in jobs.events(job_id, messages=True):
            step = getattr(event, "step_number", None)
            if step is None:
                continue
            name = f"event-{event.timestamp}-{step}-{event.type}.json"
            path = target / "runs" / event.run_id / name
            if path in taken:
                report.collided.append((event.id, event.type, name))
                continue
            taken.add(path)
            _write(path, event.to_json())
            report.events += 1
    except (OSError, ValueError, CheckpointError) as error:
        message = getattr(error, "message", None) or str(error)
        raise StorageError(f"Cannot export job {job_id} to {target}: {message}") from error
    return report


def _compact(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _write(path: Path, text: str) -> None:
    atomic_write(path, text, durable=False, make_parents=True)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``perstack export``."""
    parser = argparse.ArgumentParser(
        prog="perstack export",
        description=(
            "Write a stored job in another tool's layout. --format perstack: Perstack's own\n"
            "(one JSON file per event, the conversation inline), so Perstack's `perstack log`\n"
            "reads it. The job stays where it is."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("job", metavar="JOB", help="the job id (see `perstack log`)")
    parser.add_argument(
        "destination",
        metavar="DIR",
        type=Path,
        help="a storage root to write into (the job goes to DIR/jobs/JOB)",
    )
    parser.add_argument(
        "--format", choices=["perstack"], default="perstack", help="the layout (default: perstack)"
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    workspace: Path | None = None,
) -> int:
    """Entry point of ``perstack export``."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return EXIT_OK if exit_.code == 0 else EXIT_USAGE
    jobs = Jobs.for_workspace(workspace or Path.cwd())
    try:
        report = export_perstack(jobs, args.job, args.destination.absolute())
    except StorageError as error:
        print(f"perstack export: {error.message}", file=err)
        return EXIT_USAGE
    for event_id, event_type, name in report.collided:
        print(
            f"perstack export: event {event_id} ({event_type}) not written: an earlier event of "
            f"its run has the same file name {name} (Perstack's layout holds one of them)",
            file=err,
        )
    print(
        f"Exported job {args.job}: {report.checkpoints} checkpoints, {report.events} events "
        f"to {report.job_dir}",
        file=out,
    )
    return EXIT_OK
