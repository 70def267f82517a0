"""``perstack replay [JOB_ID]``: run a stored job again, its model calls answered by its recording.

The job's runs are replayed in their order: its query, then each follow-up query and each
interactive answer it was continued with, all with the current perstack.toml. A model call whose
request matches the recording (:mod:`runtime.jobs.recording`) costs no request; at the first
that does not, the replay stops and says where and why (:mod:`runtime.engine.replay`), or with
``--live`` goes on with the model from there. The replay is a new job whose job.json names its
origin (``origin: {kind: replay, jobId}``); its events are printed as ``perstack run`` prints
them, one JSON object per line, and it exits as ``perstack run`` does.

A run that resumed from an earlier checkpoint of the job (``--resume-from``) is replayed as a
continuation of the replay's latest: the replay follows the job's last branch of runs in order,
which is what a recording of that branch answers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime._terminal import counted
from runtime.cli import (
    command_main,
    exit_code_for_status,
    log_warnings_to_stderr,
    run_interruptibly,
)
from runtime.errors import CheckpointError, UsageError


@dataclass(frozen=True)
class RecordedRun:
    """One coordinator run of a stored job, as a replay gives it again."""

    run_id: str
    expert_key: str
    text: str
    """The query, or the interactive answer."""
    interactive: bool
    started_at: int


def recorded_runs(storage_root: Path, job_id: str) -> list[RecordedRun]:
    """The coordinator runs of a job, oldest first, with the input each started with.

    Raises:
        CheckpointError: the job does not exist, or none of its runs says what it was asked.
    """
    from runtime.jobs.store import Storage

    storage = Storage(storage_root)
    if not storage.job_dir(job_id).is_dir():
        raise CheckpointError(f"Job {job_id!r} not found in {storage.jobs_dir}")
    runs: list[RecordedRun] = []
    for run_id in storage.run_ids(job_id):
        setting = storage.load_run_setting(job_id, run_id)
        given = setting.get("input")
        key = setting.get("expertKey")
        if not isinstance(given, dict) or not isinstance(key, str):
            continue  # a delegate's run (no run setting of its own), or an unreadable one
        answer = given.get("interactiveToolCallResult")
        text = answer.get("text") if isinstance(answer, dict) else given.get("text")
        runs.append(
            RecordedRun(
                run_id=run_id,
                expert_key=key,
                text=str(text or ""),
                interactive=isinstance(answer, dict),
                started_at=int(setting.get("startedAt") or 0),
            )
        )
    if not runs:
        raise CheckpointError(
            f"Job {job_id!r} has no run setting that says what it was asked "
            f"({storage.job_dir(job_id) / 'runs'}/*/run-setting.json): nothing to replay"
        )
    return sorted(runs, key=lambda run: run.started_at)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``perstack replay``."""
    parser = argparse.ArgumentParser(
        prog="perstack replay",
        description="Run a stored job again with the current perstack.toml, answering its model "
        "calls from the job's recording: no model request while nothing changed.",
    )
    parser.add_argument("job", nargs="?", metavar="JOB_ID", help="the job (default: the latest)")
    parser.add_argument(
        "--live",
        action="store_true",
        help="at the first call the recording does not answer, go on with the model",
    )
    parser.add_argument("--config", metavar="PATH", help="perstack.toml (default: search upward)")
    parser.add_argument("--provider", help="the provider of --live calls (default: perstack.toml)")
    parser.add_argument("--model", help="the model (default: perstack.toml)")
    parser.add_argument("--env-path", action="append", metavar="PATH", help="env file to load")
    parser.add_argument("--job-id", metavar="ID", help="id for the replay's job")
    return parser


def main(argv: Sequence[str] | None = None, *, workspace: Path | None = None) -> int:
    """Entry point of ``perstack replay``."""
    log_warnings_to_stderr()
    return command_main(build_parser(), argv, lambda args: _replay(args, workspace or Path.cwd()))


def _replay(args: argparse.Namespace, cwd: Path) -> int:
    from runtime.engine.runner import load_config_for
    from runtime.jobs.api import Jobs
    from runtime.schema.ids import new_id
    from runtime.schema.setting import RunSetting

    jobs = Jobs.for_workspace(cwd)
    job_id = args.job or _latest(jobs)
    runs = recorded_runs(jobs.storage.root, job_id)  # an unknown job is refused here
    origin = jobs.record(job_id).origin
    if origin is not None and origin.kind == "fork":
        raise UsageError(
            f"Job {job_id} is a fork of job {origin.job_id} (from checkpoint "
            f"{origin.checkpoint_id}): it does not start from a query, so it cannot be replayed "
            f"from one. Replay {origin.job_id}, or fork it again with perstack run --fork-from."
        )
    loaded = load_config_for(runs[0].expert_key, args.config, cwd)
    replay_id = args.job_id or new_id()
    checkpoint: Any = None
    for index, recorded in enumerate(runs):
        setting = RunSetting(
            expert_key=recorded.expert_key,
            query=recorded.text,
            workspace=cwd,
            config_path=args.config,
            provider=args.provider,
            model=args.model,
            env_path=args.env_path,
            job_id=replay_id if index == 0 else None,
            continue_job=replay_id if index else None,
            interactive_answer=recorded.interactive,
            replay_of=job_id,
            replay_live=args.live,
        )
        checkpoint = run_interruptibly(_run(setting, loaded))
        if checkpoint.status == "stoppedByError":
            break
    assert checkpoint is not None
    _report(job_id, replay_id, checkpoint, len(runs))
    return exit_code_for_status(checkpoint.status)


async def _run(setting: Any, loaded: Any) -> Any:
    from runtime import run

    def emit(event: Any) -> None:
        sys.stdout.write(event.to_json() + "\n")
        sys.stdout.flush()

    return await run(setting, emit, config=loaded)


def _latest(jobs: Any) -> str:
    ids = jobs.ids()  # newest first, without reading every job's events
    if not ids:
        raise UsageError(f"No stored jobs in {jobs.storage.jobs_dir}: nothing to replay")
    return str(ids[0])


def _report(job_id: str, replay_id: str, checkpoint: Any, runs: int) -> None:
    from runtime.engine.replay import REPLAY_DIVERGED

    error = checkpoint.error
    if checkpoint.status == "stoppedByError" and error is not None:
        if error.name == REPLAY_DIVERGED:
            print(f"perstack: {error.message}", file=sys.stderr)
            print(
                f"perstack: the replay stopped there (job {replay_id}); go on with the model "
                f"from that call: perstack replay {job_id} --live",
                file=sys.stderr,
            )
            return
        print(f"perstack: run stopped by error: {error.name}: {error.message}", file=sys.stderr)
        return
    print(
        f"perstack: replayed job {job_id} ({counted(runs, 'run')}) as job "
        f"{replay_id}: {checkpoint.status}",
        file=sys.stderr,
    )


__all__ = ["RecordedRun", "main", "recorded_runs"]
