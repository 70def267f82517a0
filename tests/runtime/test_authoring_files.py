"""The config file helpers: atomic saves that keep mode and symlinks, backups, the minimal
starter config and unified diffs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runtime.config.authoring import (
    MINIMAL_CONFIG,
    ConfigDocument,
    ConfigEditError,
    backup_config,
    minimal_config,
    save_config,
    unified_diff,
)
from runtime.config.diagnostics import diagnose
from runtime.errors import ConfigError
from tests.runtime.authoring_helpers import COMMENTED, assert_valid, edited


def test_save_config_is_atomic_and_keeps_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "perstack.toml"
    path.write_text("old\n")
    path.chmod(0o640)
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(source: str, target: Path) -> None:
        replaced.append((str(source), str(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    save_config(path, "new\r\n")
    assert path.read_bytes() == b"new\r\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    [(source, target)] = replaced
    assert Path(source).parent == tmp_path  # the temp file is in the same directory
    assert target == str(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["perstack.toml"]


def test_save_config_skips_unchanged_content(tmp_path: Path) -> None:
    path = tmp_path / "perstack.toml"
    path.write_text(COMMENTED)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    save_config(path, ConfigDocument.parse(COMMENTED).dumps())
    assert path.stat().st_mtime_ns == 1_000_000_000


def test_save_config_new_file_and_symlink(tmp_path: Path) -> None:
    path = tmp_path / "perstack.toml"
    save_config(path, "a\n")
    assert path.read_text() == "a\n"
    link = tmp_path / "link.toml"
    link.symlink_to(path)
    save_config(link, "b\n")
    assert link.is_symlink()
    assert path.read_text() == "b\n"


def test_save_config_failure_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot write"):
        save_config(tmp_path / "missing" / "perstack.toml", "x")


def test_backup_config_picks_a_free_name(tmp_path: Path) -> None:
    path = tmp_path / "perstack.toml"
    path.write_text("one\n")
    first = backup_config(path)
    path.write_text("two\n")
    second = backup_config(path)
    assert (first.name, second.name) == ("perstack.toml.bak", "perstack.toml.bak.1")
    assert (first.read_text(), second.read_text()) == ("one\n", "two\n")
    with pytest.raises(ConfigError):
        backup_config(tmp_path / "nothing.toml")


def test_minimal_config_is_valid_and_editable() -> None:
    assert diagnose(MINIMAL_CONFIG) == []
    assert ConfigDocument.parse(MINIMAL_CONFIG).expert_keys() == ["my-expert"]
    scoped = minimal_config("@team/helper")
    assert diagnose(scoped) == []
    assert ConfigDocument.parse(scoped).expert_keys() == ["@team/helper"]
    new = edited(MINIMAL_CONFIG, lambda d: d.set_top_level("model", "gpt-4.1"))
    assert_valid(new)
    with pytest.raises(ConfigEditError):
        minimal_config("Not Valid")


def test_unified_diff() -> None:
    assert unified_diff("a\n", "a\n") == ""
    diff = unified_diff("a\nb\n", "a\nc", label="perstack.toml")
    assert diff.splitlines() == [
        "--- a/perstack.toml",
        "+++ b/perstack.toml",
        "@@ -1,2 +1,2 @@",
        " a",
        "-b",
        "+c",
        "\\ No newline at end of file",
    ]
