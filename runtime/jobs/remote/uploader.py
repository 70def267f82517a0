"""The thread that uploads a cache folder's writes to the store, in order (:class:`Uploader`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from runtime.errors import StorageError

APPEND_DELAY_S = 1.0
"""Appended lines wait this long at most before they go up, as one chunk per file."""

APPEND_BATCH_BYTES = 1 << 20
"""...or until this many bytes are waiting."""

MAX_PENDING_BYTES = 256 << 20
"""Writers wait when this much is queued for upload (a store slower than the run)."""


class Uploader:
    """One thread that puts the queued writes in order: documents at once, lines in batches.

    Documents go up in the order they were written (a document written again before its turn
    goes up once, at the later place). Appended lines wait up to :data:`APPEND_DELAY_S` (or
    :data:`APPEND_BATCH_BYTES`) and then go up as one chunk per file, after every document
    queued before them: a line never reaches the store before the checkpoint it refers to.

    A job whose upload failed (after the client's retries) takes no more writes until its
    release: each one raises why, and so does the flush at its release (which forgets it), so
    its run stops instead of going on with a store that misses part of it, and the store keeps
    a prefix of its writes. Other jobs go on.
    """

    def __init__(
        self,
        upload: Callable[
            [list[tuple[str, str, bytes]], dict[tuple[str, str], bytes]], dict[str, StorageError]
        ],
    ) -> None:
        self._upload = upload
        self._cond = threading.Condition()
        self._docs: list[tuple[str, str, bytes]] = []
        self._lines: dict[tuple[str, str], bytearray] = {}
        self._lines_since: float | None = None
        self._line_bytes = 0
        self._pending = 0
        self._busy = False
        self._flushing = 0
        self._errors: dict[str, StorageError] = {}
        self._thread: threading.Thread | None = None

    def put(self, job_id: str, rel: str, data: bytes) -> None:
        """Queue a document (a whole object) of ``job_id``."""
        with self._cond:
            self._admit(job_id, len(data))
            self._docs.append((job_id, rel, data))
            self._cond.notify_all()

    def append(self, job_id: str, rel: str, data: bytes) -> None:
        """Queue lines appended to a file of ``job_id`` (they go up as the next chunk)."""
        with self._cond:
            self._admit(job_id, len(data))
            self._lines.setdefault((job_id, rel), bytearray()).extend(data)
            self._line_bytes += len(data)
            if self._lines_since is None:
                self._lines_since = time.monotonic()
            self._cond.notify_all()

    def flush(self) -> None:
        """Wait until nothing is queued or being put."""
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._docs or self._lines or self._busy:
                    self._cond.wait()
            finally:
                self._flushing -= 1

    def raise_error(self, job_id: str) -> None:
        """Raise (and forget) why an upload of the job failed, if one did."""
        with self._cond:
            error = self._errors.pop(job_id, None)
        if error is not None:
            raise error

    def _admit(self, job_id: str, size: int) -> None:
        """Refuse a job whose upload failed, wait for room, count the bytes (``_cond`` held)."""
        error = self._errors.get(job_id)
        if error is not None:
            raise error
        while self._pending > MAX_PENDING_BYTES:
            self._cond.wait()
        self._pending += size
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="perstack-upload", daemon=True)
            self._thread.start()

    def _lines_due(self) -> float:
        """Seconds until the waiting lines must go up (0: now)."""
        if self._flushing or self._line_bytes >= APPEND_BATCH_BYTES or self._lines_since is None:
            return 0.0
        return max(0.0, self._lines_since + APPEND_DELAY_S - time.monotonic())

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._docs and not (self._lines and self._lines_due() == 0):
                    self._cond.wait(self._lines_due() if self._lines else None)
                docs = [item for item in self._docs if item[0] not in self._errors]
                size = sum(len(item[2]) for item in self._docs)
                self._docs = []
                lines: dict[tuple[str, str], bytes] = {}
                if self._lines and self._lines_due() == 0:
                    size += self._line_bytes
                    lines = {
                        key: bytes(value)
                        for key, value in self._lines.items()
                        if key[0] not in self._errors
                    }
                    self._lines, self._lines_since, self._line_bytes = {}, None, 0
                self._busy = True
            try:
                failed = self._upload(docs, lines)
            except Exception as error:  # a bug here must not leave writers waiting forever
                failure = StorageError(f"Cannot upload to the object store: {error!r}")
                failed = {job_id: failure for job_id, _, _ in docs} | {
                    job_id: failure for job_id, _ in lines
                }
            with self._cond:
                self._busy = False
                self._pending -= size
                for job_id, reason in failed.items():
                    self._errors.setdefault(job_id, reason)
                self._cond.notify_all()
