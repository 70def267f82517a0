"""Jobs, checkpoints, run settings and events on disk (§18.2 of the reference).

Layout under the storage root (``$PERSTACK_STORAGE_PATH`` or ``<workspace>/perstack``)::

    jobs/{jobId}/job.json
    jobs/{jobId}/job.lock            (held by the process running the job: runtime.jobs.lock)
    jobs/{jobId}/checkpoints/{checkpointId}.json
    jobs/{jobId}/runs/{runId}/run-setting.json
    jobs/{jobId}/runs/{runId}/events.jsonl
    jobs/{jobId}/recording.jsonl     (every model call: runtime.jobs.recording)

Documents are written atomically (temp file + rename), so a killed process never leaves half a
checkpoint. ``events.jsonl`` is append-only; a torn last line from a crash is skipped by readers.

With ``$PERSTACK_STORAGE_URL`` (``s3://bucket/prefix``) the jobs live in an object store and the
root is a cache folder of it: every write is mirrored to the store and every read pulls from it
first (:mod:`runtime.jobs.remote`, imported only then). :class:`Storage` is the one place that
knows: its ``remote`` is set for such a root.

Stored events do not repeat the conversation. On the wire every state event carries whole
checkpoints (and ``startGeneration`` the whole prompt), so storing them as they are would grow a
run's events file with the square of its steps (2.1 GB for one run of 1,400 steps). A message list
that a checkpoint file already holds is stored once, in that file; the event line keeps a reference
in its place (see :class:`EventCompactor`), and :func:`runtime.jobs.events.read_job_events` puts the
messages back. Lines written before this, with the messages inline, read the same way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from runtime.errors import CheckpointError, StorageError
from runtime.files import atomic_write
from runtime.jobs.lock import JOB_INTERRUPTED, JobLock, acquire_job_lock, job_is_live, job_status
from runtime.schema.checkpoint import Checkpoint, Job, check_schema_version
from runtime.schema.messages import Message

if TYPE_CHECKING:
    from runtime.jobs.remote.mirror import Mirror

    # Not at run time: ``perstack log`` reads storage without building the event models.
    from runtime.schema.events import PerstackEvent

STORAGE_ENV = "PERSTACK_STORAGE_PATH"
STORAGE_URL_ENV = "PERSTACK_STORAGE_URL"
"""An object store to keep jobs in instead (``s3://bucket/prefix``): :mod:`runtime.jobs.remote`."""

_REMOTES: dict[Path, Mirror] = {}
"""Storage roots that are the cache of an object store, and its mirror (set up by
:func:`default_storage_root`)."""

_Doc = TypeVar("_Doc", Job, Checkpoint)

MESSAGES_REF = "messagesRef"
"""Key that stands in a stored event for a message list held by a checkpoint file:
``{"checkpointId": ..., "count": ..., "lastMessageId": ...}``."""

CHECKPOINT_FIELDS = (
    ("initial_checkpoint", "initialCheckpoint"),
    ("checkpoint", "checkpoint"),
    ("next_checkpoint", "nextCheckpoint"),
)

MAX_STORED_BYTES = 64 * 1024 * 1024
"""Largest event line or JSON document (job.json, a checkpoint, run-setting.json) that readers
decode: 64 MiB. A bigger one is treated as unreadable and is not read into memory. The runtime's
own lines stay far below it: a conversation is held once, by a checkpoint file."""

MAX_NESTING = 512
"""Deepest JSON nesting that readers decode. The runtime cannot write more than about 258 levels
(pydantic's serialisation limit). Deeper data is treated as unreadable, so decoding never raises
RecursionError and anything decoded can be encoded again."""

_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_TIMESTAMP = re.compile(rb'"timestamp"\s*:\s*(\d+)')
PERSTACK_EVENT_FILE = re.compile(r"event-(\d{1,16})-(-?\d{1,9})-([A-Za-z]{1,64})\.json")
"""How Perstack stores each event of a run: ``event-<epochMs>-<step>-<type>.json``."""
_HEAD_BYTES = 4096


def is_plain_id(value: object) -> bool:
    r"""Whether ``value`` may name a run folder or a checkpoint file: 1-128 of A-Z a-z 0-9 _ -.

    The runtime's ids (:func:`runtime.schema.ids.new_id`) and Perstack's (cuid2) always are. An id
    read from stored data that is not (``..``, ``/``, ``\``, NUL, ...) never becomes a path.
    """
    return isinstance(value, str) and _PLAIN_ID.fullmatch(value) is not None


_GIVEN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")


def is_given_id(value: str) -> bool:
    """Whether an id a user typed (a job, run or checkpoint) may name a folder or file.

    Jobs may be named with ``--job-id``, so dots are allowed, but nothing that could step
    outside the storage tree: no separators, no leading dot.
    """
    return _GIVEN_ID.fullmatch(value) is not None


def is_inside(folder: Path, path: Path) -> bool:
    """Whether ``path``, with every symbolic link resolved, is ``folder`` or inside it."""
    try:
        parts = path.relative_to(folder).parts
    except ValueError:
        parts = ("..",)
    if ".." not in parts:
        # The usual case, in a few lstat calls: no link below ``folder`` on the way to ``path``.
        current = folder
        for part in parts:
            current = current / part
            if current.is_symlink():
                break
        else:
            return True
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # RuntimeError: a symbolic link loop (Python 3.11)
        return False


def decode_json(raw: bytes | str) -> Any:
    """``json.loads`` for stored data, refusing nesting deeper than :data:`MAX_NESTING`.

    Raises:
        ValueError: not JSON, not UTF-8, or nested too deeply (never RecursionError).
    """
    too_deep = f"nested more than {MAX_NESTING} levels deep"
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ValueError(too_deep) from None
    if isinstance(raw, bytes):
        openers = raw.count(b"[") + raw.count(b"{")
    else:
        openers = raw.count("[") + raw.count("{")
    # Fewer brackets than the limit cannot nest deeper than it: most lines skip the walk.
    if openers > MAX_NESTING and isinstance(data, dict | list) and _deeper_than(data, MAX_NESTING):
        raise ValueError(too_deep)
    return data


def _deeper_than(data: Any, limit: int) -> bool:
    """Whether decoded JSON nests deeper than ``limit`` (a walk over its containers only)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        for child in value.values() if isinstance(value, dict) else value:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def read_json_file(path: Path) -> Any:
    """Decode one stored JSON document, at most :data:`MAX_STORED_BYTES` long.

    Raises:
        OSError: the file cannot be read.
        ValueError: it is too big, not JSON or nested too deeply (:func:`error_line` says where).
    """
    size = path.stat().st_size
    if size > MAX_STORED_BYTES:
        raise ValueError(f"the file is {size:,} bytes, over the limit of {MAX_STORED_BYTES:,}")
    return decode_json(path.read_bytes())


def error_line(error: BaseException) -> int:
    """The 1-based line a decoding error points at (1 when it does not say)."""
    return error.lineno if isinstance(error, json.JSONDecodeError) else 1


def _never_started(job_dir: Path) -> bool:
    """A job folder that holds only its lock: the process died before writing anything else.

    Such a folder is not a job to list or continue (``--continue`` would pick it as the newest
    and fail on the missing job.json).
    """
    try:
        return {entry.name for entry in job_dir.iterdir()} <= {"job.lock"}
    except OSError:
        return False


def default_storage_root(workspace: Path, configured_url: str | None = None) -> Path:
    """``$PERSTACK_STORAGE_PATH`` when set, else ``<workspace>/perstack``.

    With ``$PERSTACK_STORAGE_URL`` set (or else ``configured_url``, perstack.toml's
    ``storageUrl``), the cache folder of that object store under it: a :class:`Storage` of that
    root reads and writes the store.

    Raises:
        ConfigError: the URL is malformed, its client is not installed, or the store does not
            answer.
    """
    override = os.environ.get(STORAGE_ENV)
    base = Path(override).expanduser().resolve() if override else workspace / "perstack"
    url = os.environ.get(STORAGE_URL_ENV, "").strip() or (configured_url or "").strip()
    return _remote_root(url, base) if url else base


def _remote_for(root: Path) -> Mirror | None:
    """The object store whose cache folder ``root`` is, or None.

    One this process set up, or, with ``$PERSTACK_STORAGE_URL`` set, the one that URL names when
    ``root`` is its cache folder (a root handed to another process: a Ray worker, a subprocess).
    """
    mirror = _REMOTES.get(root)
    url = os.environ.get(STORAGE_URL_ENV, "").strip()
    if mirror is None and url and root.parent.name == "cache":
        from runtime.jobs.remote import cache_root_of

        if cache_root_of(url, root.parent.parent) == root:
            return _REMOTES.get(_remote_root(url, root.parent.parent))
    return mirror


def _remote_root(url: str, base: Path) -> Path:
    """The cache folder of the store ``url`` names, under ``base``, set up for :class:`Storage`."""
    from runtime.jobs.remote import open_remote

    mirror = open_remote(url, base)
    _REMOTES[mirror.root] = mirror
    return mirror.root


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
        self.remote = _remote_for(root)
        """The object store whose cache ``root`` is, or None for a local folder."""

    # paths -----------------------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        """Directory of one job (on an object store, brought up to date with it first)."""
        if self.remote is not None:
            self.remote.refresh_job(job_id)
        return self.jobs_dir / job_id

    def run_dir(self, job_id: str, run_id: str) -> Path:
        """Directory of one run segment."""
        return self.job_dir(job_id) / "runs" / run_id

    # the job lock ------------------------------------------------------------------------------

    def lock_job(self, job_id: str, *, warn: Callable[[str], None]) -> JobLock:
        """Take the job's lock for this process (see :mod:`runtime.jobs.lock`).

        Raises:
            JobLockedError: another live process runs the job.
            StorageError: the lock file cannot be written.
        """
        try:
            if self.remote is not None:
                return self.remote.lock_job(job_id, warn=warn)
            return acquire_job_lock(self.jobs_dir / job_id, warn=warn)
        except OSError as error:
            path = Path(error.filename) if error.filename else self.jobs_dir / job_id
            raise self._write_error(path, error) from error

    def job_status(self, job_id: str, stored: str) -> str:
        """The status to show for a job whose job.json says ``stored``.

        ``running`` with no live process is ``interrupted``: :func:`runtime.jobs.lock.job_status`.
        """
        if self.remote is not None:
            live = stored != "running" or self.remote.holder_live(job_id)
            return stored if live else JOB_INTERRUPTED
        return job_status(self.job_dir(job_id), stored)

    def is_live(self, job_id: str) -> bool:
        """Whether a process (on any machine, for an object store) is running the job now.

        On an object store this also brings the job's copy up to date after looking, so that
        what is read next holds every line stored before the answer (:meth:`Jobs.follow`).
        """
        if self.remote is not None:
            return self.remote.is_live(job_id)
        return job_is_live(self.job_dir(job_id))

    # writes ----------------------------------------------------------------------------------

    # Every write raises StorageError (naming the path and the fix) instead of an OSError.

    def store_job(self, job: Job) -> None:
        """Write job.json (pretty, 2-space indent, like Perstack)."""
        text = json.dumps(job.to_dict(), indent=2, ensure_ascii=False)
        self._write(self.jobs_dir / job.id / "job.json", text + "\n")

    def store_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Write one checkpoint (compact JSON)."""
        path = self.jobs_dir / checkpoint.job_id / "checkpoints" / f"{checkpoint.id}.json"
        self._write(path, checkpoint.to_json())

    def store_run_setting(self, job_id: str, run_id: str, setting: dict[str, Any]) -> None:
        """Write run-setting.json. The caller must have removed every secret."""
        text = json.dumps(setting, indent=2, ensure_ascii=False, default=str)
        self._write(self.jobs_dir / job_id / "runs" / run_id / "run-setting.json", text + "\n")

    def append_event(self, job_id: str, run_id: str, line: str) -> None:
        """Append one JSON event line to the run's events.jsonl."""
        self._append(self.jobs_dir / job_id / "runs" / run_id / "events.jsonl", line)

    def append_recording(self, job_id: str, line: str) -> None:
        """Append one line to the job's model-call recording."""
        from runtime.jobs.recording import recording_path  # after the first answer, not at start

        self._append(recording_path(self.jobs_dir / job_id), line)

    def recording_size(self, job_id: str) -> int:
        """The size of the job's recording so far (0 when it has none)."""
        from runtime.jobs.recording import recording_path

        try:
            return recording_path(self.jobs_dir / job_id).stat().st_size
        except OSError:
            return 0

    def remove_job(self, job_id: str) -> None:
        """Delete a stored job (a dead attempt's, say): its folder, and its objects in a store.

        Raises:
            JobLockedError: on an object store, a live process holds the job.
            StorageError: the store cannot be reached.
        """
        if not is_given_id(job_id):
            return
        if self.remote is not None:
            self.remote.remove_job(job_id)
        else:
            shutil.rmtree(self.jobs_dir / job_id, ignore_errors=True)

    def _append(self, path: Path, line: str) -> None:
        data = (line + "\n").encode("utf-8")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # One write call per line with O_APPEND keeps concurrent runs' lines whole.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as error:
            raise self._write_error(path, error) from error
        if self.remote is not None:
            self.remote.appended(path, data)

    def _write(self, path: Path, text: str) -> None:
        data = text.encode("utf-8")
        try:
            atomic_write(path, data, make_parents=True)
        except OSError as error:
            raise self._write_error(path, error) from error
        if self.remote is not None:
            self.remote.wrote(path, data)

    def _write_error(self, path: Path, error: OSError) -> StorageError:
        reason = error.strerror or str(error)
        uid = os.getuid() if hasattr(os, "getuid") else None
        user = f" (uid {uid})" if uid is not None else ""
        return StorageError(
            f"Cannot write {path}: {reason}. Jobs are stored under {self.root}; make it "
            f"writable for this user{user}, or set {STORAGE_ENV} to a directory that is."
        )

    # reads -----------------------------------------------------------------------------------

    def job_ids(self) -> list[str]:
        """Every job id, newest first (by job.json's startedAt, else by its first event)."""
        if self.remote is not None:
            self.remote.refresh_index()
        if not self.jobs_dir.is_dir():
            return []
        entries: list[tuple[float, str]] = []
        for job_dir in self.jobs_dir.iterdir():
            if not job_dir.is_dir() or _never_started(job_dir):
                continue
            started: float | None = None
            job_json = job_dir / "job.json"
            try:
                if is_inside(job_dir, job_json):
                    started = float(read_json_file(job_json)["startedAt"])
            except (OSError, ValueError, KeyError, TypeError):
                pass
            if started is None:
                started = self.first_event_time(job_dir.name)
            entries.append((started, job_dir.name))
        return [job_id for _, job_id in sorted(entries, reverse=True)]

    def first_event_time(self, job_id: str) -> int:
        """When the job's first stored event happened (ms), for jobs without a job.json.

        Only the start of each run's events file is read. A job without a readable event falls
        back to its folder's modification time: the last resort, as a copy changes it.
        """
        job_dir = self.job_dir(job_id)
        times = []
        for path in (job_dir / "runs").glob("*/events.jsonl"):
            if not is_inside(job_dir, path):
                continue
            try:
                with path.open("rb") as handle:
                    head = handle.read(_HEAD_BYTES)
            except OSError:
                continue
            found = _TIMESTAMP.search(head)
            if found:
                times.append(int(found.group(1)))
        for run_id in self.run_ids(job_id):
            files = self.event_files(job_id, run_id)
            if files:
                times.append(event_file_time(files[0]))
        return min(times) if times else int(job_dir.stat().st_mtime * 1000)

    def event_files(self, job_id: str, run_id: str) -> list[Path]:
        """A run's events stored Perstack's way, one file each, in time order.

        Files that are links to outside the job folder are left out.
        """
        return event_files(self.job_dir(job_id), self.run_dir(job_id, run_id))

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
            data = read_json_file(path)
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


def event_files(job_dir: Path, run_dir: Path) -> list[Path]:
    """The Perstack-style event files of one run folder, in time order (links out left out)."""
    try:
        found = [
            path
            for path in run_dir.iterdir()
            if PERSTACK_EVENT_FILE.fullmatch(path.name) and is_inside(job_dir, path)
        ]
    except OSError:
        return []
    return sorted(found, key=lambda path: (event_file_time(path), path.name))


def event_file_time(path: Path) -> int:
    """The timestamp (ms) in the name of one of Perstack's event files."""
    found = PERSTACK_EVENT_FILE.fullmatch(path.name)
    return int(found.group(1)) if found else 0


def _load_versioned(path: Path, model: type[_Doc], what: str) -> _Doc:
    try:
        data = read_json_file(path)
    except OSError as error:
        raise CheckpointError(f"Cannot read {what} file {path}: {error}") from error
    except ValueError as error:
        where = f"{path}:{error_line(error)}"
        raise CheckpointError(f"Cannot read {what} file {where}: {error}") from error
    if isinstance(data, dict):
        check_schema_version(str(data.get("schemaVersion", "1")), what=f"{what} file {path}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise CheckpointError(f"{what.capitalize()} file {path} is invalid: {error}") from error


# Compact events ------------------------------------------------------------------------------


class EventCompactor:
    """Turns events into stored lines that refer to checkpoint files instead of repeating messages.

    Remember each checkpoint as it is written (:meth:`remember`); :meth:`to_json` then replaces
    any message list of an event that is, object for object, the list of a remembered checkpoint
    by a :data:`MESSAGES_REF` to that checkpoint. A list that matches nothing stays inline, so
    the stored line is never lossy. Only the latest checkpoint of each run segment is remembered:
    that is the one later events of the run (and the segment that resumes it) repeat.
    """

    def __init__(self) -> None:
        self._by_key: dict[tuple[int, str], Checkpoint] = {}
        self._key_of_run: dict[str, tuple[int, str]] = {}

    def remember(self, checkpoint: Checkpoint) -> None:
        """Note that ``checkpoint`` is stored in its own file."""
        if not checkpoint.messages:
            return
        key = (len(checkpoint.messages), checkpoint.messages[-1].id)
        previous = self._key_of_run.get(checkpoint.run_id)
        if previous is not None and previous != key:
            self._by_key.pop(previous, None)
        self._by_key[key] = checkpoint
        self._key_of_run[checkpoint.run_id] = key

    def _ref(self, messages: Sequence[Message]) -> dict[str, Any] | None:
        if not messages:
            return None
        stored = self._by_key.get((len(messages), messages[-1].id))
        if stored is None:
            return None
        # Ids alone could collide with a hand-made message; the loop shares message objects.
        if stored.messages is not messages and any(
            a is not b for a, b in zip(stored.messages, messages, strict=True)
        ):
            return None
        return {"checkpointId": stored.id, "count": len(messages), "lastMessageId": messages[-1].id}

    def to_json(self, event: PerstackEvent) -> str:
        """The stored line for ``event`` (its wire JSON when nothing can be referenced)."""
        refs: dict[str, dict[str, Any]] = {}
        exclude: dict[str, Any] = {}
        for attr, alias in CHECKPOINT_FIELDS:
            checkpoint = getattr(event, attr, None)
            if isinstance(checkpoint, Checkpoint) and (ref := self._ref(checkpoint.messages)):
                refs[alias] = ref
                exclude[attr] = {"messages"}
        prompt = getattr(event, "messages", None) if event.type == "startGeneration" else None
        prompt_ref = self._ref(prompt) if prompt else None
        if prompt_ref is not None:
            exclude["messages"] = True
        if not exclude:
            return event.to_json()
        data = event.model_dump(mode="json", by_alias=True, exclude_none=True, exclude=exclude)
        for alias, ref in refs.items():
            data[alias][MESSAGES_REF] = ref
        if prompt_ref is not None:
            data[MESSAGES_REF] = prompt_ref
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
