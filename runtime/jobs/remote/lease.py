"""One writer per job across machines: a lock object made by a conditional put, kept by heartbeats.

The holder of job ``J`` is whoever created ``jobs/J/job.lock`` in the bucket. Creating it is a
PUT with ``If-None-Match: *``, which the store grants to exactly one of any number of racing
writers. The object says who holds it::

    {"schemaVersion": "1", "pid": 4242, "host": "build-7", "startedAt": <ms>,
     "heartbeatAt": <ms>, "token": "<random>"}

While the job runs, a thread rewrites it every :data:`HEARTBEAT_S` seconds with ``If-Match`` on
the ETag it last wrote, so a holder that was taken over finds out at its next beat (and stops
writing the job: see :class:`Lease.lost`). On a clean end the holder deletes the object.

A holder that died leaves the object behind. It is *stale*, and the next writer takes it over
(with a warning, as the local lock does), when its last heartbeat is older than
:data:`STALE_AFTER_S` by the store's clock (``Last-Modified``), or at once when it names this
host and a process id that is not running. The takeover is itself a conditional put (``If-Match``
on the stale object's ETag), so of two writers taking over the same stale lock one wins.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from runtime.errors import JobLockedError, StorageError
from runtime.jobs.lock import LockHolder
from runtime.jobs.remote.client import Exists, ObjectStore

HEARTBEAT_S = 10.0
"""Seconds between two heartbeats of a held lock."""

STALE_AFTER_S = 60.0
"""A lock whose last heartbeat is older than this (six missed beats) belongs to a writer that
is gone. Machines' clocks must agree with the store's to well within it."""


def lock_key(job_id: str) -> str:
    """The key of a job's lock object."""
    return f"jobs/{job_id}/job.lock"


@dataclass(frozen=True)
class RemoteHolder:
    """What a lock object says about its holder, and when the store last saw it written."""

    pid: int | None
    host: str | None
    started_at: int | None
    token: str | None
    written: datetime
    """The object's Last-Modified: its last heartbeat, by the store's clock."""

    @classmethod
    def parse(cls, data: bytes, written: datetime) -> RemoteHolder:
        """Read a lock object (any field may be missing or damaged)."""
        try:
            record = json.loads(data)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            record = {}
        pid, host = record.get("pid"), record.get("host")
        started, token = record.get("startedAt"), record.get("token")
        return cls(
            pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            host if isinstance(host, str) else None,
            started if isinstance(started, int) and not isinstance(started, bool) else None,
            token if isinstance(token, str) else None,
            written,
        )

    def heartbeat_age(self) -> float:
        """Seconds since its last heartbeat (by this machine's clock against the store's)."""
        return max(0.0, time.time() - self.written.timestamp())

    def is_stale(self) -> bool:
        """Whether its holder is gone: no heartbeat for long, or a dead process on this host."""
        if self.heartbeat_age() > STALE_AFTER_S:
            return True
        return self.host == socket.gethostname() and self.pid is not None and not _running(self.pid)

    def describe(self) -> str:
        """``PID 4242 (started ..., on host h)``, as the local lock describes its holder."""
        return LockHolder(self.pid, self.started_at, self.host).describe()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return True
    return True


def read_holder(store: ObjectStore, job_id: str) -> RemoteHolder | None:
    """The lock object's holder, or ``None`` when the job has no lock object."""
    found = store.get(lock_key(job_id))
    return None if found is None else RemoteHolder.parse(found.data, found.modified)


def live_remote_holder(store: ObjectStore, job_id: str) -> RemoteHolder | None:
    """The live holder of the job's lock object, or ``None`` (none, or a stale one)."""
    holder = read_holder(store, job_id)
    return None if holder is None or holder.is_stale() else holder


class Lease:
    """A held lock object, kept fresh by a heartbeat thread until :meth:`release`."""

    def __init__(self, store: ObjectStore, job_id: str, record: dict[str, object], etag: str):
        self.store = store
        self.job_id = job_id
        self._record = record
        self._etag = etag
        self.lost: str | None = None
        """Why the lock was lost (taken over after missed heartbeats), once it was."""
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"perstack-lease:{job_id}", daemon=True
        )
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self._record["heartbeatAt"] = int(time.time() * 1000)
            data = json.dumps(self._record).encode()
            try:
                self._etag = self.store.put(lock_key(self.job_id), data, if_etag=self._etag)
            except Exists:
                try:
                    holder = read_holder(self.store, self.job_id)
                except StorageError:
                    holder = None
                who = holder.describe() if holder is not None else "another process"
                self.lost = (
                    f"the lock of job {self.job_id} was taken over (now held by {who}) after "
                    f"this process missed its heartbeats for {STALE_AFTER_S:.0f} s"
                )
                return
            except StorageError:
                continue  # the store is unreachable for now: the next beat tries again

    def release(self) -> None:
        """Stop the heartbeats and delete the lock object if this process still holds it."""
        self._stop.set()
        self._thread.join(timeout=5)
        if self.lost is not None:
            return
        holder = read_holder(self.store, self.job_id)
        if holder is not None and holder.token == self._record["token"]:
            self.store.delete([lock_key(self.job_id)])


def acquire_lease(store: ObjectStore, job_id: str, *, warn: Callable[[str], None]) -> Lease:
    """Take the job's lock object for this process.

    Raises:
        JobLockedError: a live process (here or on another machine) holds the job.
        StorageError: the store cannot be reached.
    """
    now = int(time.time() * 1000)
    record: dict[str, object] = {
        "schemaVersion": "1",
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "startedAt": now,
        "heartbeatAt": now,
        "token": secrets.token_hex(8),
    }
    data = json.dumps(record).encode()
    key = lock_key(job_id)
    for _ in range(3):
        try:
            return Lease(store, job_id, record, store.put(key, data, create=True))
        except Exists:
            pass
        found = store.get(key)
        if found is None:
            continue  # released between the two calls: try to create it again
        holder = RemoteHolder.parse(found.data, found.modified)
        if not holder.is_stale():
            raise _locked(job_id, holder)
        try:
            etag = store.put(key, data, if_etag=found.etag)
        except Exists:
            continue  # another writer took it over first: see who holds it now
        warn(
            f"taking over the lock of job {job_id} left by {holder.describe()}, which is no "
            f"longer running (last heartbeat {holder.heartbeat_age():.0f} s ago)"
        )
        return Lease(store, job_id, record, etag)
    last = read_holder(store, job_id)
    if last is None:
        raise StorageError(f"Cannot take the lock of job {job_id} in {store.address.describe()}")
    raise _locked(job_id, last)


def _locked(job_id: str, holder: RemoteHolder) -> JobLockedError:
    stop = f"stop it (kill {holder.pid})" if holder.pid else "stop it"
    return JobLockedError(
        f"Job {job_id} is already running in {holder.describe()}, which holds its lock in the "
        f"object store (last heartbeat {holder.heartbeat_age():.0f} s ago). One process runs a "
        f"job at a time: wait for it to end, or {stop}, then continue the job.",
        holder_pid=holder.pid,
    )
