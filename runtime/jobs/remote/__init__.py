"""Jobs on an S3-compatible object store: ``PERSTACK_STORAGE_URL=s3://bucket/prefix``.

The store is the source of truth; a folder on this machine is its cache. Every reader and writer
of :mod:`runtime.jobs` keeps working on files, so nothing above :class:`~runtime.jobs.store.Storage`
knows where the jobs live:

- **Writes** land in the cache folder exactly as in local storage (atomic documents, appended
  lines), and are mirrored to the bucket in the order they were made, by one background thread
  (:mod:`runtime.jobs.remote.mirror`). A document (job.json, a checkpoint, run-setting.json) is
  one PUT of the whole file: S3 writes an object whole or not at all, so no reader ever sees half
  a checkpoint. Appended files (``events.jsonl``, ``recording.jsonl``) go up as *chunk objects*
  ``<file>.chunks/<from>-<to>``: the lines appended within a second form one chunk, so every
  byte is uploaded once (never the whole file again per line), and when the writer ends it
  merges its chunks into one object, so a reader fetches about one object per file per run.
- **Reads** first pull what changed in the bucket into the cache: the job list (each job's
  job.json, fetched only when its ETag changed) before listing jobs, and a job's objects before
  anything reads that job's folder. Documents are fetched when their ETag differs from the copy's,
  chunks only past what the copy holds; files the bucket no longer has are removed. A job that a
  process on this machine is writing is not pulled: its folder is newer than the bucket.
- **One writer per job** across processes and machines: the local ``flock`` (one writer per cache
  folder) plus a lock object in the bucket created with a conditional put (``If-None-Match: *``)
  and kept by heartbeats (:mod:`runtime.jobs.remote.lease`).
- **Crash safety**: the bucket always holds a prefix of the writes, in order, with documents never
  behind the event lines that refer to them. A writer killed mid-run loses at most its last
  second of event lines and the documents still queued; a continuation, from any machine, starts
  from the last checkpoint in the bucket.

Why a cache rather than readers that speak to the store: many readers (``perstack log``, the
studio's history, ``--continue``, replay, export, diff, evals) read job files, and the local
layout is the one format they share. Mirroring leaves them unchanged, keeps a run as fast as
a local one (it never waits for the network) and makes a second read of an unchanged job one
LIST; the price is that pull before reading, and a copy of the jobs read on each machine.

The client is obstore (the optional ``scale`` extra): a 16 MB wheel without dependencies that
imports in about 4 ms, has S3's conditional puts (create-only and ``If-Match``), and speaks to any
S3-compatible server. boto3 would do the same calls but takes about 120 ms to import and 34 MB
with botocore; s3fs adds aiobotocore and fsspec on top of that. Nothing of it is imported unless
``PERSTACK_STORAGE_URL`` is set.

Variables: ``PERSTACK_STORAGE_URL`` (``s3://bucket`` or ``s3://bucket/prefix``),
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (``AWS_SESSION_TOKEN``), ``AWS_REGION``, and for
an S3-compatible server (MinIO, R2, moto...) ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``).
The cache lives in ``perstack/cache/`` of the workspace (``$PERSTACK_STORAGE_PATH/cache/`` when
that is set); it can be deleted at any time.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.errors import ConfigError, StorageError

if TYPE_CHECKING:
    from runtime.jobs.remote.mirror import Mirror

STORAGE_URL_ENV = "PERSTACK_STORAGE_URL"
"""Where jobs are stored, when not in a local folder: ``s3://bucket/prefix``."""

ENDPOINT_ENVS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT")
"""The endpoint of an S3-compatible server, first set wins (AWS's own names)."""

INSTALL_HINT = "pip install 'perstack-studio[scale]'"

_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}")
_PREFIX_PART = re.compile(r"[A-Za-z0-9_.=+@-]{1,255}")
_ENDPOINT = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")


@dataclass(frozen=True)
class StoreAddress:
    """A bucket, a key prefix in it (no slashes at the ends) and the endpoint, when not AWS's."""

    bucket: str
    prefix: str
    endpoint: str | None = None

    def url(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def describe(self) -> str:
        """The URL, and the endpoint when one is set: for messages."""
        return f"{self.url()} at {self.endpoint}" if self.endpoint else self.url()


def parse_storage_url(url: str, environ: Mapping[str, str]) -> StoreAddress:
    """Read ``PERSTACK_STORAGE_URL`` and the endpoint variables.

    Raises:
        ConfigError: the URL or the endpoint is malformed (the message shows the expected form).
    """
    text = url.strip()
    scheme, _, rest = text.partition("://")
    form = "s3://BUCKET or s3://BUCKET/PREFIX"
    if scheme.lower() != "s3" or not rest:
        raise ConfigError(
            f"{STORAGE_URL_ENV}={text!r} is not an object store URL: use {form} "
            "(unset it to store jobs in the local folder)",
            title="Storage error",
        )
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    parts = prefix.split("/") if prefix else []
    if not _BUCKET.fullmatch(bucket) or any(
        not _PREFIX_PART.fullmatch(part) or part in (".", "..") for part in parts
    ):
        raise ConfigError(
            f"{STORAGE_URL_ENV}={text!r}: the bucket or prefix has characters an object store "
            f"does not accept here; use {form} with letters, digits and . _ - in names",
            title="Storage error",
        )
    endpoint = None
    for name in ENDPOINT_ENVS:
        value = environ.get(name, "").strip()
        if value:
            if not _ENDPOINT.fullmatch(value):
                raise ConfigError(
                    f"{name}={value!r} is not an endpoint URL: use http(s)://HOST[:PORT]",
                    title="Storage error",
                )
            endpoint = value.rstrip("/")
            break
    return StoreAddress(bucket, prefix, endpoint)


def cache_folder(base: Path, address: StoreAddress) -> Path:
    """The cache of one store under ``base``: ``cache/s3-<bucket>-<hash of URL and endpoint>``."""
    digest = hashlib.sha256(f"{address.url()}\n{address.endpoint or ''}".encode()).hexdigest()
    return base / "cache" / f"s3-{address.bucket}-{digest[:10]}"


def cache_root_of(url: str, base: Path) -> Path | None:
    """The cache folder of the store ``url`` names under ``base``; None for a malformed URL."""
    try:
        return cache_folder(base, parse_storage_url(url, os.environ))
    except ConfigError:
        return None


_OPEN: dict[tuple[StoreAddress, Path], Mirror] = {}


def open_remote(url: str, base: Path) -> Mirror:
    """The mirror of the store ``url`` names, cached under ``base`` (one per process and store).

    The first call checks that the store answers, so a wrong endpoint, bucket or credential is
    reported before anything runs.

    Raises:
        ConfigError: the URL is malformed, the ``scale`` extra is not installed, or the store
            does not answer (the message says which, and the fix).
    """
    address = parse_storage_url(url, os.environ)
    root = cache_folder(base, address)
    mirror = _OPEN.get((address, root))
    if mirror is not None:
        return mirror
    try:
        from runtime.jobs.remote.mirror import Mirror
    except ImportError as error:
        if (error.name or "").partition(".")[0] != "obstore":
            raise
        raise ConfigError(
            f"{STORAGE_URL_ENV} is set ({address.url()}), but the object store client is not "
            f"installed: {INSTALL_HINT} (or unset {STORAGE_URL_ENV} to store jobs locally)",
            title="Storage error",
        ) from None
    mirror = Mirror(address, root)
    try:
        mirror.probe()
    except StorageError as error:
        raise ConfigError(error.message, title="Storage error") from None
    _OPEN[(address, root)] = mirror
    return mirror


__all__ = [
    "ENDPOINT_ENVS",
    "INSTALL_HINT",
    "STORAGE_URL_ENV",
    "StoreAddress",
    "cache_folder",
    "cache_root_of",
    "open_remote",
    "parse_storage_url",
]
