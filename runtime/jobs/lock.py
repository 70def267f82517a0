"""One writer per job, and whether a job is live.

A process that runs a job holds an exclusive ``flock`` on ``jobs/{jobId}/job.lock`` for as long as
it runs it: from the job's creation (or the start of a continuation) until :func:`runtime.run`
returns. A second run or continuation of the same job, from this process or another, is refused
with :class:`~runtime.errors.JobLockedError` naming the holder.

The operating system drops the lock when its holder dies, however it dies (SIGKILL, a crash, a
power cut), so there is no stale-lock heuristic: when the lock can be taken, the previous holder
is gone. A holder that ends normally empties the file before unlocking; a file that still names a
process when its lock is taken was left by one that died, and the new holder says so.

The lock file holds one JSON object, for messages only (the lock itself is the ``flock``)::

    {"schemaVersion": "1", "pid": 4242, "startedAt": 1718000000000, "host": "build-7"}

``startedAt`` is when the holder took the lock (ms since the epoch). The file is never deleted:
removing it would let two processes lock two different files of the same name.

:func:`job_is_live` is the one answer to "is this job being run right now?", used by ``perstack
log`` and the studio's history: a job.json that says ``running`` with no live holder belongs to a
process that is gone, and :func:`job_status` shows it as :data:`JOB_INTERRUPTED`.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runtime.errors import JobLockedError

LOCK_FILE = "job.lock"
"""Name of the lock file in a job's folder."""

JOB_INTERRUPTED = "interrupted"
"""Job status of a job whose process stopped before it ended: Ctrl+C, SIGTERM, a cancel in the
studio, or a process that died. Not one of Perstack's job statuses (it has none for this); the job
continues with ``--continue`` like any other."""

INTERRUPTED_ERROR = "Interrupted"
"""``error.name`` of the ``stopRunByError`` event that ends each run of an interrupted job."""

_ACQUIRE_ATTEMPTS = 50
_ACQUIRE_PAUSE_S = 0.005
"""A reader that checks liveness holds a shared lock for a moment; a writer that finds only such
readers in its way tries again, for up to a quarter of a second."""


@dataclass(frozen=True)
class LockHolder:
    """The process a lock file names (any field may be unknown)."""

    pid: int | None
    started_at: int | None
    """When it took the lock, ms since the epoch."""
    host: str | None

    def describe(self) -> str:
        """``PID 4242 (started 2025-06-10 14:03:05)``, for messages."""
        who = f"PID {self.pid}" if self.pid is not None else "an unknown process"
        details = []
        if self.started_at is not None:
            started = datetime.fromtimestamp(self.started_at / 1000, tz=UTC).astimezone()
            details.append(f"started {started:%Y-%m-%d %H:%M:%S}")
        if self.host and self.host != socket.gethostname():
            details.append(f"on host {self.host}")
        return f"{who} ({', '.join(details)})" if details else who


class JobLock:
    """A held job lock. :meth:`release` (or leaving the ``with`` block) gives it up."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        """Empty the lock file (a clean end) and unlock it. Safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass  # the lock still goes; the next holder only warns about a takeover
        finally:
            os.close(fd)  # closing the only descriptor releases the flock

    def __enter__(self) -> JobLock:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def acquire_job_lock(job_dir: Path, *, warn: Callable[[str], None]) -> JobLock:
    """Take the lock of the job in ``job_dir`` (created if needed) for this process.

    Args:
        job_dir: The job's folder.
        warn: Told when the lock is taken over from a process that died holding it.

    Raises:
        JobLockedError: a live process holds the job.
        OSError: the lock file cannot be created, locked or written (``filename`` is set).
    """
    path = job_dir / LOCK_FILE
    job_dir.mkdir(parents=True, exist_ok=True)
    # Not inherited by skills or exec'd commands (PEP 446): a child outliving this process must
    # not keep the job locked.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _take(fd):
            holder = _read_holder(fd)
            stop = f"stop it (kill {holder.pid})" if holder.pid else "stop it"
            raise JobLockedError(
                f"Job {job_dir.name} is already running in {holder.describe()}. "
                f"One process runs a job at a time: wait for it to end, or {stop}, "
                "then continue the job.",
                holder_pid=holder.pid,
            )
        left = _read_holder(fd)
        if left.pid is not None:
            warn(
                f"taking over the lock of job {job_dir.name} left by {left.describe()}, "
                "which is no longer running"
            )
        record = {
            "schemaVersion": "1",
            "pid": os.getpid(),
            "startedAt": int(time.time() * 1000),
            "host": socket.gethostname(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
    except BaseException as error:
        os.close(fd)
        if isinstance(error, OSError) and error.filename is None:
            error.filename = str(path)
        raise
    return JobLock(path, fd)


def _take(fd: int) -> bool:
    """Take the exclusive lock on ``fd``; ``False`` when a writer holds it."""
    for _ in range(_ACQUIRE_ATTEMPTS):
        if _try_flock(fd, fcntl.LOCK_EX):
            return True
        # Held. A shared lock is granted only when the holders are readers checking liveness
        # (they let go at once: try again); refused, a writer holds the job.
        if not _try_flock(fd, fcntl.LOCK_SH):
            return False
        fcntl.flock(fd, fcntl.LOCK_UN)
        time.sleep(_ACQUIRE_PAUSE_S)
    return False


def _try_flock(fd: int, operation: int) -> bool:
    """``flock`` without waiting; ``False`` when another lock stands in the way."""
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    return True


def live_holder(job_dir: Path) -> LockHolder | None:
    """The process running the job in ``job_dir`` right now, or ``None`` when none is.

    A job without a lock file was never run by this runtime (Perstack's, or older) and has no
    holder. Never raises.
    """
    try:
        fd = os.open(job_dir / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        if not _try_flock(fd, fcntl.LOCK_SH):
            return _read_holder(fd)  # a writer holds it
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except OSError:  # locks not supported here: no holder can be known
        return None
    finally:
        os.close(fd)


def job_is_live(job_dir: Path) -> bool:
    """Whether a process is running the job in ``job_dir`` (holds its lock) right now."""
    return live_holder(job_dir) is not None


def job_status(job_dir: Path, stored: str) -> str:
    """The status to show for a job whose job.json says ``stored``.

    ``running`` with no live process is :data:`JOB_INTERRUPTED`: the process that ran it is gone.
    Every other status is shown as stored.
    """
    if stored == "running" and not job_is_live(job_dir):
        return JOB_INTERRUPTED
    return stored


def _read_holder(fd: int) -> LockHolder:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"null")
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict):
        return LockHolder(None, None, None)
    pid, started, host = data.get("pid"), data.get("startedAt"), data.get("host")
    return LockHolder(
        pid if isinstance(pid, int) else None,
        started if isinstance(started, int) else None,
        host if isinstance(host, str) else None,
    )
