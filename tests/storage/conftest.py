"""The S3 server the storage tests share (one per session), and a bucket of its own per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.storage.s3server import S3Server


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.close()


@pytest.fixture
def bucket(s3: S3Server) -> str:
    return s3.new_bucket()


@pytest.fixture
def s3_env(s3: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process stores jobs in the test's bucket (and a subprocess given the dict does)."""
    env = s3.env(bucket)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PERSTACK_STORAGE_PATH", raising=False)
    return env
