"""The cache folder of one bucket: pulls before reads, ordered write-behind uploads, the job lock.

Keys mirror the folder layout under the store's prefix (``jobs/{jobId}/checkpoints/{id}.json``),
except that an appended file is a series of chunk objects ``<file>.chunks/<from>-<to>``: chunks
``from`` to ``to - 1`` of the file, in ten-digit numbers so that keys sort in file order. A writer
puts about one chunk a second while lines come (``<n>-<n+1>``, created with ``If-None-Match: *``,
so a second writer cannot overwrite one) and merges its own chunks into one object when it
releases the job.
A reader covers the file from chunk 0 with the longest objects it finds.

What the cache holds of each job is recorded in ``.sync/{jobId}.json`` beside ``jobs/``: the
ETag of each document and, for each appended file, how many chunks and bytes the copy holds.
A pull downloads what differs from that, so pulling an unchanged job costs one LIST.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from runtime.errors import JobLockedError, StorageError
from runtime.files import atomic_write
from runtime.jobs.lock import JobLock, acquire_job_lock, job_is_live
from runtime.jobs.remote import StoreAddress
from runtime.jobs.remote.chunks import Chunk, Manifest, chunk_key, cover, safe_relative
from runtime.jobs.remote.client import Exists, Fetched, ObjectInfo, ObjectStore
from runtime.jobs.remote.lease import Lease, acquire_lease, live_remote_holder
from runtime.jobs.remote.uploader import Uploader

REFRESH_S = 1.0
"""A job (or the job list) pulled less than this long ago is not pulled again."""

MANIFEST_SAVE_S = 2.0
"""How often the writer records what it uploaded (and at every flush)."""

WORKERS = 16
"""Parallel downloads in a pull."""

SYNC_FOLDER = ".sync"
LOCK_FILE = "job.lock"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
_CHUNK = re.compile(r"(?P<file>.+)\.chunks/(?P<start>\d{10})-(?P<end>\d{10})")
_TIMESTAMP = re.compile(rb'"timestamp"\s*:\s*(\d+)')
_In = TypeVar("_In")
_Out = TypeVar("_Out")


class _Retry(Exception):
    """An object listed a moment ago is gone (a writer merged its chunks): list again."""


class Mirror:
    """The cache of one store under ``root`` (the folder that holds ``jobs/``)."""

    def __init__(self, address: StoreAddress, root: Path) -> None:
        self.address = address
        self.root = root
        self.jobs_dir = root / "jobs"
        self.store = ObjectStore(address)
        self._state = threading.Lock()
        self._job_locks: dict[str, threading.Lock] = {}
        self._index_lock = threading.Lock()
        self._pulled: dict[str, float] = {}
        self._index_pulled: float | None = None
        self._owned: dict[str, Lease] = {}
        self._manifests: dict[str, Manifest] = {}
        """Of jobs this process wrote since they were last saved, and of the jobs it holds."""
        self._dirty: set[str] = set()
        self._session: dict[tuple[str, str], list[int]] = {}
        """(job, file) → [first chunk, byte offset] of what this process appended to it."""
        self._saved_at = 0.0
        self._pool: ThreadPoolExecutor | None = None
        self._uploader = Uploader(self._upload)

    def describe(self) -> str:
        """Where the jobs are, for messages."""
        return self.address.describe()

    def probe(self) -> None:
        """One LIST: raises StorageError when the store does not answer as it should."""
        self.store.folders("jobs/")

    # writes ------------------------------------------------------------------------------------

    def wrote(self, path: Path, data: bytes) -> None:
        """A document was written in the cache: queue it for upload."""
        found = self._split(path)
        if found is not None:
            self._check_held(found[0])
            self._uploader.put(found[0], found[1], data)

    def appended(self, path: Path, data: bytes) -> None:
        """Lines were appended to a file in the cache: queue them for upload."""
        found = self._split(path)
        if found is not None:
            self._check_held(found[0])
            self._uploader.append(found[0], found[1], data)

    def flush(self, job_id: str | None = None) -> None:
        """Wait until every write so far is in the store (or failed to get there).

        Raises:
            StorageError: with ``job_id``, an upload of that job failed (the store refused it or
                could not be reached); said once.
        """
        self._uploader.flush()
        self._save_manifests(force=True)
        if job_id is not None:
            self._uploader.raise_error(job_id)

    def _split(self, path: Path) -> tuple[str, str] | None:
        try:
            parts = path.relative_to(self.jobs_dir).parts
        except ValueError:
            return None
        if len(parts) < 2 or not _ID.fullmatch(parts[0]):
            return None
        return parts[0], "/".join(parts[1:])

    def _check_held(self, job_id: str) -> None:
        lease = self._owned.get(job_id)
        if lease is not None and lease.lost is not None:
            raise StorageError(f"Cannot store job {job_id} in {self.describe()}: {lease.lost}")

    def _upload(
        self, docs: list[tuple[str, str, bytes]], appends: dict[tuple[str, str], bytes]
    ) -> dict[str, StorageError]:
        """Put a batch: documents in order (the last write of each), then one chunk per file.

        Returns the jobs whose uploads failed, and why: the rest of such a job's batch is not
        put (the store keeps a prefix of its writes), other jobs' is.
        """
        failed: dict[str, StorageError] = {}
        latest: dict[tuple[str, str], bytes] = {}
        for job_id, rel, data in docs:
            latest.pop((job_id, rel), None)
            latest[(job_id, rel)] = data
        for (job_id, rel), data in latest.items():
            if job_id not in failed:
                try:
                    self._check_held(job_id)
                    etag = self.store.put(f"jobs/{job_id}/{rel}", data)
                except StorageError as error:
                    failed[job_id] = error
                    continue
                with self._state:
                    self._manifest_in_memory(job_id).docs[rel] = etag
        for (job_id, rel), data in appends.items():
            if job_id not in failed:
                try:
                    self._put_chunk(job_id, rel, data)
                except StorageError as error:
                    failed[job_id] = error
        self._save_manifests(force=False)
        return failed

    def _put_chunk(self, job_id: str, rel: str, data: bytes) -> None:
        self._check_held(job_id)
        with self._state:
            manifest = self._manifest_in_memory(job_id)
            count, size = manifest.appends.get(rel, (0, 0))
        try:
            self.store.put(chunk_key(f"jobs/{job_id}/{rel}", count, count + 1), data, create=True)
        except Exists:
            raise StorageError(
                f"Cannot append to {rel} of job {job_id} in {self.describe()}: another process "
                "wrote the same chunk, so this one no longer holds the job"
            ) from None
        with self._state:
            manifest.appends[rel] = (count + 1, size + len(data))
            self._session.setdefault((job_id, rel), [count, size])

    def _manifest_in_memory(self, job_id: str) -> Manifest:
        """The job's manifest, kept in memory until saved (call with ``_state`` held)."""
        manifest = self._manifests.get(job_id)
        if manifest is None:
            manifest = self._manifests[job_id] = Manifest.load(self._manifest_path(job_id))
        self._dirty.add(job_id)
        return manifest

    def _save_manifests(self, *, force: bool) -> None:
        with self._state:
            if not force and time.monotonic() - self._saved_at < MANIFEST_SAVE_S:
                return
            self._saved_at = time.monotonic()
            dirty, self._dirty = self._dirty, set()
            for job_id in dirty:
                manifest = self._manifests[job_id]
                manifest.save(self._manifest_path(job_id))
                if job_id not in self._owned:
                    del self._manifests[job_id]

    def _manifest_path(self, job_id: str) -> Path:
        return self.root / SYNC_FOLDER / f"{job_id}.json"

    # the job lock ------------------------------------------------------------------------------

    def lock_job(self, job_id: str, *, warn: Callable[[str], None]) -> JobLock:
        """Take the job for this process: the cache folder's lock, then the store's.

        Then the job is pulled (under both locks, so it is the newest there is), and this process
        alone writes it until :meth:`JobLock.release`.

        Raises:
            JobLockedError: another live process, here or elsewhere, holds the job.
            StorageError: the store cannot be reached.
            OSError: the cache folder cannot be written.
        """
        # Both locks name the same dead holder after a crash here: the store's says so.
        local = acquire_job_lock(self.jobs_dir / job_id, warn=lambda _: None)
        try:
            lease = acquire_lease(self.store, job_id, warn=warn)
        except BaseException:
            local.release()
            raise
        try:
            with self._job_lock(job_id):
                self._pull(job_id)
                with self._state:
                    self._owned[job_id] = lease
                    self._manifests.setdefault(job_id, Manifest.load(self._manifest_path(job_id)))
                    self._pulled.pop(job_id, None)
        except BaseException:
            lease.release()
            local.release()
            raise
        return RemoteJobLock(self, job_id, local, lease, warn)

    def release(self, job_id: str) -> None:
        """Upload what is queued, merge this process's chunks of the job, record it all."""
        try:
            self.flush(job_id)
            self._merge_chunks(job_id)
        finally:
            with self._state:
                self._owned.pop(job_id, None)
                if job_id in self._manifests:
                    self._dirty.add(job_id)
            self._save_manifests(force=True)

    def _merge_chunks(self, job_id: str) -> None:
        """Replace the chunks this process put of each file of the job by one object."""
        with self._state:
            mine = {
                rel: (start, offset)
                for (owner, rel), (start, offset) in self._session.items()
                if owner == job_id
            }
            for rel in mine:
                del self._session[(job_id, rel)]
            manifest = self._manifests.get(job_id)
        if manifest is None:
            return
        for rel, (start, offset) in mine.items():
            end, size = manifest.appends.get(rel, (start, offset))
            if end - start < 2:
                continue
            try:
                with open(self.jobs_dir / job_id / rel, "rb") as handle:
                    handle.seek(offset)
                    data = handle.read(size - offset)
            except OSError:
                continue
            if len(data) != size - offset:
                continue
            file_key = f"jobs/{job_id}/{rel}"
            try:
                self.store.put(chunk_key(file_key, start, end), data, create=True)
            except Exists:
                continue
            self.store.delete([chunk_key(file_key, n, n + 1) for n in range(start, end)])

    def remove_job(self, job_id: str) -> None:
        """Delete a job's objects from the store and its copy from the cache.

        Raises:
            JobLockedError: a live process holds the job.
            StorageError: the store cannot be reached.
        """
        if not _ID.fullmatch(job_id):
            return
        holder = None if job_id in self._owned else live_remote_holder(self.store, job_id)
        if job_id in self._owned or holder is not None:
            who = holder.describe() if holder is not None else "this process"
            raise JobLockedError(
                f"Job {job_id} cannot be removed: it is running in {who}",
                holder_pid=holder.pid if holder is not None else os.getpid(),
            )
        with self._job_lock(job_id):
            self.flush()
            with self._sync_lock(job_id):
                keys = [info.key for info in self.store.list_objects(f"jobs/{job_id}/")]
                self.store.delete(keys)
                self._forget(job_id)
                self._pulled.pop(job_id, None)

    def holder_live(self, job_id: str) -> bool:
        """Whether a process (this one, one on this machine, or elsewhere) runs the job now."""
        if not _ID.fullmatch(job_id):
            return False
        if job_id in self._owned or job_is_live(self.jobs_dir / job_id):
            return True
        return live_remote_holder(self.store, job_id) is not None

    def is_live(self, job_id: str) -> bool:
        """:meth:`holder_live`, then the job's copy brought up to date (for a follower)."""
        live = self.holder_live(job_id)
        self.refresh_job(job_id, force=not live)
        return live

    # pulls ---------------------------------------------------------------------------------

    def refresh_job(self, job_id: str, *, force: bool = False) -> None:
        """Bring the cache's copy of one job up to date with the store, unless it is fresh.

        Nothing is pulled for a job this process holds or a process on this machine is
        writing (the copy is newer than the store), nor for an id that is no plain name.
        """
        if not _ID.fullmatch(job_id) or job_id in self._owned:
            return
        with self._job_lock(job_id):
            pulled = self._pulled.get(job_id)
            if not force and pulled is not None and time.monotonic() - pulled < REFRESH_S:
                return
            started = time.monotonic()
            if job_is_live(self.jobs_dir / job_id):
                return
            self._pull(job_id)
            self._pulled[job_id] = started

    def refresh_index(self, *, force: bool = False) -> None:
        """Bring the job list up to date: every job's folder, with its job.json."""
        with self._index_lock:
            pulled = self._index_pulled
            if not force and pulled is not None and time.monotonic() - pulled < REFRESH_S:
                return
            started = time.monotonic()
            self.flush()
            remote = [name for name in self.store.folders("jobs/") if _ID.fullmatch(name)]
            self._map(self._pull_job_json, remote)
            keep = set(remote) | set(self._owned)
            if self.jobs_dir.is_dir():
                for job_dir in self.jobs_dir.iterdir():
                    if job_dir.name in keep or not job_dir.is_dir() or job_dir.is_symlink():
                        continue
                    with self._job_lock(job_dir.name):
                        if not job_is_live(job_dir):
                            self._forget(job_dir.name)
            self._index_pulled = started

    def _pull_job_json(self, job_id: str) -> None:
        if job_id in self._owned:
            return
        with self._job_lock(job_id):
            job_dir = self.jobs_dir / job_id
            if job_is_live(job_dir):
                return
            with self._sync_lock(job_id):
                manifest = self._manifest_for_pull(job_id)
                path = job_dir / "job.json"
                known = manifest.docs.get("job.json") if path.is_file() else None
                try:
                    fetched = self.store.get(f"jobs/{job_id}/job.json", unless_etag=known)
                except Exists:
                    return
                job_dir.mkdir(parents=True, exist_ok=True)
                if fetched is None:
                    # No job.json (Perstack wrote the job, or it never started): readers list
                    # it by its events, so it comes whole.
                    self._pull_job(job_id, manifest)
                else:
                    self._place(path, fetched)
                    manifest.docs["job.json"] = fetched.etag
                manifest.save(self._manifest_path(job_id))

    def _pull(self, job_id: str) -> None:
        """Pull one job (called with its thread lock held): what changed, under the file lock."""
        self.flush()  # this process's own writes first: the store then holds all of them
        with self._sync_lock(job_id):
            manifest = self._manifest_for_pull(job_id)
            self._pull_job(job_id, manifest)
            manifest.save(self._manifest_path(job_id))

    def _manifest_for_pull(self, job_id: str) -> Manifest:
        with self._state:
            in_memory = self._manifests.get(job_id)
        return in_memory if in_memory is not None else Manifest.load(self._manifest_path(job_id))

    def _pull_job(self, job_id: str, manifest: Manifest) -> None:
        """Pull one job into the cache (its thread and file locks held).

        It is listed again when an object vanished meanwhile (a writer merged its chunks).
        """
        for _ in range(3):
            try:
                self._pull_listed(job_id, manifest)
                return
            except _Retry:
                continue
        raise StorageError(
            f"Cannot read job {job_id} from {self.describe()}: its objects keep changing while "
            "they are read; try again"
        )

    def _pull_listed(self, job_id: str, manifest: Manifest) -> None:
        prefix = f"jobs/{job_id}/"
        docs: dict[str, ObjectInfo] = {}
        chunks: dict[str, list[Chunk]] = {}
        for info in self.store.list_objects(prefix):
            rel = info.key[len(prefix) :]
            if rel == LOCK_FILE:
                continue
            found = _CHUNK.fullmatch(rel)
            if found is not None:
                name = found["file"]
                if safe_relative(name):
                    chunks.setdefault(name, []).append(
                        Chunk(int(found["start"]), int(found["end"]), info)
                    )
            elif safe_relative(rel):
                docs[rel] = info
        for name in chunks:
            docs.pop(name, None)  # an appended file is its chunks
        job_dir = self.jobs_dir / job_id
        if not docs and not chunks:
            self._forget(job_id)
            manifest.docs.clear()
            manifest.appends.clear()
            return
        stale = [
            (rel, info)
            for rel, info in docs.items()
            if manifest.docs.get(rel) != info.etag or not (job_dir / rel).is_file()
        ]
        for (rel, _), fetched in zip(
            stale, self._map(self._get, [i for _, i in stale]), strict=True
        ):
            self._place(job_dir / rel, fetched)
            manifest.docs[rel] = fetched.etag
        for name, parts in chunks.items():
            self._pull_appended(job_dir / name, name, parts, manifest)
        keep = set(docs) | set(chunks) | {LOCK_FILE}
        self._remove_others(job_dir, keep)
        manifest.docs = {rel: etag for rel, etag in manifest.docs.items() if rel in docs}
        manifest.appends = {rel: value for rel, value in manifest.appends.items() if rel in chunks}
        self._date_runs(job_dir, docs, chunks)

    def _pull_appended(self, path: Path, name: str, parts: list[Chunk], manifest: Manifest) -> None:
        """Bring one appended file up to date: the new chunks at its end, or all of it anew."""
        path_ = cover(parts)
        count, size = manifest.appends.get(name, (0, 0))
        try:
            local = path.stat().st_size
        except OSError:
            local = -1
        ends = [0] + [chunk.end for chunk in path_]
        if local == size and count in ends:
            new = path_[ends.index(count) :]
            if not new:
                return
            data = [fetched.data for fetched in self._map(self._get, [c.info for c in new])]
            with open(path, "ab") as handle:
                for piece in data:
                    handle.write(piece)
            manifest.appends[name] = (new[-1].end, size + sum(len(piece) for piece in data))
        else:
            data = [fetched.data for fetched in self._map(self._get, [c.info for c in path_])]
            atomic_write(path, b"".join(data), durable=False, make_parents=True)
            manifest.appends[name] = (path_[-1].end if path_ else 0, sum(map(len, data)))
        if path_:
            stamp = path_[-1].info.modified.timestamp()
            os.utime(path, (stamp, stamp))

    def _get(self, info: ObjectInfo) -> Fetched:
        fetched = self.store.get(info.key)
        if fetched is None:
            raise _Retry(info.key)
        return fetched

    def _place(self, path: Path, fetched: Fetched) -> None:
        atomic_write(path, fetched.data, durable=False, make_parents=True)
        stamp = fetched.modified.timestamp()
        os.utime(path, (stamp, stamp))

    def _remove_others(self, job_dir: Path, keep: set[str]) -> None:
        """Remove files the store lacks (a crashed writer's last ones), then empty folders."""
        for folder, names, files in os.walk(job_dir, topdown=False):
            base = Path(folder)
            for name in files:
                path = base / name
                rel = path.relative_to(job_dir).as_posix()
                if rel not in keep:
                    path.unlink(missing_ok=True)
            for name in names:
                sub = base / name
                if sub.is_symlink():
                    sub.unlink(missing_ok=True)
                else:
                    try:
                        sub.rmdir()  # only when empty
                    except OSError:
                        pass

    def _date_runs(
        self, job_dir: Path, docs: dict[str, ObjectInfo], chunks: dict[str, list[Chunk]]
    ) -> None:
        """Give each run folder its run's start time: readers order runs by it.

        The job's folder gets the time of its oldest object: the last resort of a reader that
        dates a job with neither job.json nor events.
        """
        starts: dict[str, float] = {}
        infos = list(docs.items()) + [(n, c.info) for n, parts in chunks.items() for c in parts]
        if infos:
            oldest = min(info.modified.timestamp() for _, info in infos)
            os.utime(job_dir, (oldest, oldest))
        for rel, info in infos:
            parts = rel.split("/")
            if len(parts) >= 3 and parts[0] == "runs":
                stamp = info.modified.timestamp()
                starts[parts[1]] = min(stamp, starts.get(parts[1], stamp))
        for run_id, stamp in starts.items():
            run_dir = job_dir / "runs" / run_id
            first = _first_event_time(run_dir / "events.jsonl")
            when = first / 1000 if first is not None else stamp
            try:
                os.utime(run_dir, (when, when))
            except OSError:
                pass

    def _forget(self, job_id: str) -> None:
        """Remove from the cache a job the store does not have (its lock file stays)."""
        job_dir = self.jobs_dir / job_id
        if job_dir.is_dir() and not job_dir.is_symlink():
            self._remove_others(job_dir, {LOCK_FILE})
            try:
                job_dir.rmdir()  # only when no lock file was left in it
            except OSError:
                pass
        self._manifest_path(job_id).unlink(missing_ok=True)

    def _map(self, function: Callable[[_In], _Out], items: Sequence[_In]) -> list[_Out]:
        """``function`` over ``items``, :data:`WORKERS` at a time; the first error is raised."""
        if len(items) <= 1:
            return [function(item) for item in items]
        with self._state:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="perstack-pull")
            pool = self._pool
        return list(pool.map(function, items))

    @contextmanager
    def _sync_lock(self, job_id: str) -> Iterator[None]:
        """Pullers of one cache folder, in any process, take turns per job."""
        path = self.root / SYNC_FOLDER / f"{job_id}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _job_lock(self, job_id: str) -> threading.Lock:
        with self._state:
            return self._job_locks.setdefault(job_id, threading.Lock())


def _first_event_time(path: Path) -> int | None:
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return None
    found = _TIMESTAMP.search(head)
    return int(found.group(1)) if found else None


class RemoteJobLock(JobLock):
    """A job held in the cache folder and in the store; :meth:`release` gives up both."""

    def __init__(
        self,
        mirror: Mirror,
        job_id: str,
        local: JobLock,
        lease: Lease,
        warn: Callable[[str], None],
    ) -> None:
        self.path = local.path
        self._mirror = mirror
        self._job_id = job_id
        self._local: JobLock | None = local
        self._lease = lease
        self._warn = warn

    def release(self) -> None:
        """Upload the job's last writes, then unlock it in the store and here. Safe twice.

        Raises:
            StorageError: the last writes could not be uploaded (the locks are given up still).
        """
        local, self._local = self._local, None
        if local is None:
            return
        try:
            self._mirror.release(self._job_id)
        finally:
            try:
                self._lease.release()
            except StorageError as error:
                self._warn(
                    f"the lock of job {self._job_id} stays in the store until stale: {error}"
                )
            finally:
                local.release()
