"""Jobs, checkpoints, run settings and events on disk (§18.2 of the reference).

Layout under the storage root (``$PERSTACK_STORAGE_PATH`` or ``<workspace>/perstack``)::

    jobs/{jobId}/job.json
    jobs/{jobId}/checkpoints/{checkpointId}.json
    jobs/{jobId}/runs/{runId}/run-setting.json
    jobs/{jobId}/runs/{runId}/events.jsonl

Documents are written atomically (temp file + rename), so a killed process never leaves half a
checkpoint. ``events.jsonl`` is append-only; a torn last line from a crash is skipped by readers.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from runtime.checkpoint import Checkpoint, Job, check_schema_version
from runtime.errors import CheckpointError

STORAGE_ENV = "PERSTACK_STORAGE_PATH"

_Doc = TypeVar("_Doc", Job, Checkpoint)


def default_storage_root(workspace: Path) -> Path:
    """``$PERSTACK_STORAGE_PATH`` when set, else ``<workspace>/perstack``."""
    override = os.environ.get(STORAGE_ENV)
    return Path(override).expanduser().resolve() if override else workspace / "perstack"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class EventLine:
    """One raw line of an events.jsonl file, with where it came from."""

    path: Path
    line_number: int
    text: str


class Storage:
    """Filesystem storage rooted at ``root`` (the directory holding ``jobs/``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.jobs_dir = root / "jobs"

    # paths -----------------------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        """Directory of one job."""
        return self.jobs_dir / job_id

    def run_dir(self, job_id: str, run_id: str) -> Path:
        """Directory of one run segment."""
        return self.job_dir(job_id) / "runs" / run_id

    # writes ----------------------------------------------------------------------------------

    def store_job(self, job: Job) -> None:
        """Write job.json (pretty, 2-space indent, like Perstack)."""
        text = json.dumps(job.to_dict(), indent=2, ensure_ascii=False)
        atomic_write_text(self.job_dir(job.id) / "job.json", text + "\n")

    def store_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Write one checkpoint (compact JSON)."""
        path = self.job_dir(checkpoint.job_id) / "checkpoints" / f"{checkpoint.id}.json"
        atomic_write_text(path, checkpoint.to_json())

    def store_run_setting(self, job_id: str, run_id: str, setting: dict[str, Any]) -> None:
        """Write run-setting.json. The caller must have removed every secret."""
        text = json.dumps(setting, indent=2, ensure_ascii=False, default=str)
        atomic_write_text(self.run_dir(job_id, run_id) / "run-setting.json", text + "\n")

    def append_event(self, job_id: str, run_id: str, line: str) -> None:
        """Append one JSON event line to the run's events.jsonl."""
        path = self.run_dir(job_id, run_id) / "events.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        # One write call per line with O_APPEND keeps concurrent runs' lines whole.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))
        finally:
            os.close(fd)

    # reads -----------------------------------------------------------------------------------

    def job_ids(self) -> list[str]:
        """Every job id, newest first (by job.json startedAt, else directory mtime)."""
        if not self.jobs_dir.is_dir():
            return []
        entries: list[tuple[float, str]] = []
        for job_dir in self.jobs_dir.iterdir():
            if not job_dir.is_dir():
                continue
            started = job_dir.stat().st_mtime * 1000
            try:
                started = float(json.loads((job_dir / "job.json").read_text())["startedAt"])
            except (OSError, ValueError, KeyError, TypeError):
                pass
            entries.append((started, job_dir.name))
        return [job_id for _, job_id in sorted(entries, reverse=True)]

    def load_job(self, job_id: str) -> Job:
        """Read job.json.

        Raises:
            CheckpointError: the job does not exist or its file is unreadable.
        """
        path = self.job_dir(job_id) / "job.json"
        if not path.is_file():
            raise CheckpointError(f"Job {job_id!r} not found in {self.jobs_dir}")
        return _load_versioned(path, Job, "job")

    def checkpoints(self, job_id: str) -> list[Checkpoint]:
        """Every readable checkpoint of a job, ordered by step number then write time."""
        folder = self.job_dir(job_id) / "checkpoints"
        if not folder.is_dir():
            return []
        found: list[tuple[int, float, Checkpoint]] = []
        for path in folder.glob("*.json"):
            try:
                checkpoint = _load_versioned(path, Checkpoint, "checkpoint")
            except CheckpointError:
                continue
            found.append((checkpoint.step_number, path.stat().st_mtime, checkpoint))
        return [checkpoint for _, _, checkpoint in sorted(found, key=lambda item: item[:2])]

    def load_checkpoint(self, job_id: str, checkpoint_id: str) -> Checkpoint:
        """Read one checkpoint.

        Raises:
            CheckpointError: it does not exist in that job.
        """
        path = self.job_dir(job_id) / "checkpoints" / f"{checkpoint_id}.json"
        if not path.is_file():
            raise CheckpointError(f"Checkpoint {checkpoint_id!r} not found in job {job_id!r}")
        return _load_versioned(path, Checkpoint, "checkpoint")

    def run_ids(self, job_id: str) -> list[str]:
        """Run ids of a job, oldest first."""
        folder = self.job_dir(job_id) / "runs"
        if not folder.is_dir():
            return []
        runs = [path for path in folder.iterdir() if path.is_dir()]
        return [path.name for path in sorted(runs, key=lambda path: path.stat().st_mtime)]

    def load_run_setting(self, job_id: str, run_id: str) -> dict[str, Any]:
        """Read run-setting.json as a dict (empty when missing)."""
        path = self.run_dir(job_id, run_id) / "run-setting.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def event_lines(self, job_id: str, run_id: str | None = None) -> Iterator[EventLine]:
        """Raw event lines of one run, or of every run of the job in run order."""
        run_ids = [run_id] if run_id else self.run_ids(job_id)
        for rid in run_ids:
            path = self.run_dir(job_id, rid) / "events.jsonl"
            if not path.is_file():
                continue
            with path.open(encoding="utf-8", errors="replace") as handle:
                for number, text in enumerate(handle, start=1):
                    if text.strip():
                        yield EventLine(path, number, text.rstrip("\n"))


def _load_versioned(path: Path, model: type[_Doc], what: str) -> _Doc:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"Cannot read {what} file {path}: {error}") from error
    if isinstance(data, dict):
        check_schema_version(str(data.get("schemaVersion", "1")), what=f"{what} file {path}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise CheckpointError(f"{what.capitalize()} file {path} is invalid: {error}") from error
