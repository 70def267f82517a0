"""The few object-store calls the mirror makes, over obstore, with errors a user can act on.

Imported only when ``PERSTACK_STORAGE_URL`` is set (obstore is the optional ``scale`` extra).
Every call raises :class:`~runtime.errors.StorageError` (never an obstore exception) except the
two outcomes callers branch on: :class:`Exists` (a conditional put lost) and ``None`` for a
missing object.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import obstore
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    NotFoundError,
    NotModifiedError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)
from obstore.store import S3Store

from runtime.errors import StorageError

if TYPE_CHECKING:
    from runtime.jobs.remote import StoreAddress

CONNECT_TIMEOUT = "5s"
REQUEST_TIMEOUT = "60s"
MAX_RETRIES = 3
"""Transient failures (5xx, dropped connections) are retried with backoff, for at most
:data:`RETRY_TIMEOUT`; an unreachable endpoint fails in about a second."""
RETRY_TIMEOUT = timedelta(seconds=30)


class Exists(Exception):
    """A conditional put found the object there (create) or changed (update)."""


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object: its key under the store's prefix, size, ETag and time."""

    key: str
    size: int
    etag: str
    modified: datetime


@dataclass(frozen=True)
class Fetched:
    """An object's bytes with its ETag and time."""

    data: bytes
    etag: str
    modified: datetime


class ObjectStore:
    """One bucket and prefix, as a store of whole objects keyed by relative paths."""

    def __init__(self, address: StoreAddress) -> None:
        self.address = address
        client: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT, "timeout": REQUEST_TIMEOUT}
        config: dict[str, Any] = {"conditional_put": "etag"}
        if address.endpoint:
            config["endpoint"] = address.endpoint
            client["allow_http"] = address.endpoint.startswith("http://")
        self._store = S3Store(
            address.bucket,
            prefix=address.prefix or None,
            config=config,  # type: ignore[arg-type]
            client_options=client,  # type: ignore[arg-type]
            retry_config={"max_retries": MAX_RETRIES, "retry_timeout": RETRY_TIMEOUT},
        )

    # reads -------------------------------------------------------------------------------------

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (all pages)."""
        found = []
        try:
            for batch in obstore.list(self._store, prefix, chunk_size=1000):
                for meta in batch:
                    found.append(
                        ObjectInfo(
                            meta["path"], meta["size"], meta["e_tag"] or "", meta["last_modified"]
                        )
                    )
        except BaseError as error:
            raise self.error("list", prefix, error) from None
        return found

    def folders(self, prefix: str) -> list[str]:
        """The names of the "folders" right below ``prefix`` (which ends with ``/``)."""
        try:
            listed = obstore.list_with_delimiter(self._store, prefix)
        except BaseError as error:
            raise self.error("list", prefix, error) from None
        return [name[len(prefix) :].strip("/") for name in listed["common_prefixes"]]

    def get(self, key: str, *, unless_etag: str | None = None) -> Fetched | None:
        """An object's bytes; ``None`` when it does not exist.

        Raises:
            Exists: ``unless_etag`` was given and the object still has it (not modified).
        """
        options = {"if_none_match": unless_etag} if unless_etag else None
        try:
            result = obstore.get(self._store, key, options=options)  # type: ignore[arg-type]
            data = bytes(result.bytes())
        except (FileNotFoundError, NotFoundError):
            return None
        except NotModifiedError:
            raise Exists(key) from None
        except BaseError as error:
            raise self.error("read", key, error) from None
        meta = result.meta
        return Fetched(data, meta["e_tag"] or "", meta["last_modified"])

    # writes ------------------------------------------------------------------------------------

    def put(
        self, key: str, data: bytes, *, create: bool = False, if_etag: str | None = None
    ) -> str:
        """Write a whole object (atomic: readers see the old object or this one); its ETag.

        Args:
            key: Where.
            data: The whole content.
            create: Only if no object is there (``If-None-Match: *``).
            if_etag: Only if the object there still has this ETag (``If-Match``).

        Raises:
            Exists: the condition did not hold.
        """
        mode: Any = "create" if create else ({"e_tag": if_etag} if if_etag else "overwrite")
        try:
            result = obstore.put(self._store, key, data, mode=mode, use_multipart=False)
        except (AlreadyExistsError, PreconditionError):
            raise Exists(key) from None
        except (FileNotFoundError, NotFoundError):
            if if_etag:  # an update of an object that is gone
                raise Exists(key) from None
            raise
        except BaseError as error:
            raise self.error("write", key, error) from None
        return str(result["e_tag"] or "")

    def delete(self, keys: Sequence[str]) -> None:
        """Delete objects (missing ones are no error)."""
        if not keys:
            return
        try:
            obstore.delete(self._store, list(keys))
        except (FileNotFoundError, NotFoundError):
            pass
        except BaseError as error:
            raise self.error("delete", keys[0], error) from None

    # errors ------------------------------------------------------------------------------------

    def error(self, action: str, key: str, error: BaseException) -> StorageError:
        """A StorageError that says what failed, where, the likely cause and the fix."""
        where = self.address.describe()
        detail = _first_line(str(error))
        text = str(error)
        if isinstance(error, PermissionDeniedError | UnauthenticatedError) or re.search(
            r"\b(403|401)\b|AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch", text
        ):
            fix = (
                "the credentials were refused: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY "
                "(and AWS_SESSION_TOKEN) and the bucket's permissions"
            )
        elif "NoSuchBucket" in text:
            fix = f"bucket {self.address.bucket!r} does not exist there: create it or fix the URL"
        elif re.search(r"error sending request|[Cc]onnection refused|dns error|timed out", text):
            fix = (
                "the endpoint cannot be reached: check AWS_ENDPOINT_URL (for an S3-compatible "
                "server) or AWS_REGION, and the network"
            )
        else:
            fix = "check PERSTACK_STORAGE_URL, AWS_ENDPOINT_URL and the credentials"
        return StorageError(
            f"Cannot {action} {key!r} in {where}: {fix} ({detail})", title="Storage error"
        )


def _first_line(text: str) -> str:
    """The message of an obstore error without its debug dump, cut to one readable line."""
    head = text.split("\n\nDebug source:", 1)[0].strip().splitlines()
    line = head[0] if head else text
    return line if len(line) <= 300 else line[:297] + "..."
