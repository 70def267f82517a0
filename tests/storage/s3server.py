"""A real S3 server for the storage tests: moto's standalone server on 127.0.0.1.

moto's server speaks S3's HTTP API (signatures, conditional puts, listings): the runtime talks to
it with the same client and the same code as to AWS, nothing of ours is replaced.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import obstore
from obstore.store import S3Store

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-key",
    "AWS_SECRET_ACCESS_KEY": "test-secret",
    "AWS_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class S3Server:
    """moto_server in a subprocess, on a free port, until :meth:`close`."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: see {log}") from None
                time.sleep(0.05)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def new_bucket(self) -> str:
        """A bucket of its own for one test."""
        name = f"jobs-{uuid.uuid4().hex[:12]}"
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=10):
            pass
        return name

    def env(self, bucket: str, prefix: str = "team") -> dict[str, str]:
        """The variables a user sets to store jobs in ``s3://bucket/prefix`` on this server."""
        url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        return {"PERSTACK_STORAGE_URL": url, "AWS_ENDPOINT_URL": self.endpoint, **CREDENTIALS}

    def client(self, bucket: str, prefix: str = "team") -> S3Store:
        """A client of the bucket, to look at what the runtime stored."""
        return S3Store(
            bucket,
            prefix=prefix or None,
            endpoint=self.endpoint,
            access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region=CREDENTIALS["AWS_REGION"],
            client_options={"allow_http": True},
        )

    def keys(self, bucket: str, prefix: str = "team") -> list[str]:
        store = self.client(bucket, prefix)
        return sorted(meta["path"] for batch in obstore.list(store) for meta in batch)

    def read(self, bucket: str, key: str, prefix: str = "team") -> bytes:
        return bytes(obstore.get(self.client(bucket, prefix), key).bytes())

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()
