"""The base skill's file and directory entry tools: moveFile, deleteFile, getFileInfo,
listDirectory, createDirectory and deleteDirectory (§6)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from runtime.skills.base import BaseSkill
from tests.runtime.base_skill_helpers import (  # noqa: F401 - the fixtures skill and ws
    fail,
    fail_message,
    ok,
    run_args,
    skill_fixture,
    text_of,
    ws_fixture,
)


async def test_move_file_creates_destination_parents(skill: BaseSkill, ws: Path) -> None:
    (ws / "a.txt").write_text("A", encoding="utf-8")
    result = await ok(skill, "moveFile", source="a.txt", destination="x/y/b.txt")
    assert result == {"source": str(ws / "a.txt"), "destination": str(ws / "x/y/b.txt")}
    assert (ws / "x/y/b.txt").read_text(encoding="utf-8") == "A"
    assert not (ws / "a.txt").exists()


async def test_move_file_failures(skill: BaseSkill, ws: Path) -> None:
    (ws / "a.txt").write_text("A", encoding="utf-8")
    (ws / "b.txt").write_text("B", encoding="utf-8")
    message = await fail_message(skill, "moveFile", source="a.txt", destination="b.txt")
    assert message == "Destination b.txt already exists."
    message = await fail_message(skill, "moveFile", source="zz.txt", destination="c.txt")
    assert message == "Source file zz.txt does not exist."
    message = await fail_message(skill, "moveFile", source="a.txt", destination="../out.txt")
    assert message.startswith("Access denied - path outside allowed directories")
    message = await fail_message(skill, "moveFile", source="a.txt", destination="perstack/a")
    assert message == "Access denied - perstack directory is not allowed"
    assert (ws / "a.txt").read_text(encoding="utf-8") == "A"


async def test_delete_file(skill: BaseSkill, ws: Path) -> None:
    (ws / "gone.txt").write_text("x", encoding="utf-8")
    assert await ok(skill, "deleteFile", path="gone.txt") == {"path": str(ws / "gone.txt")}
    assert not (ws / "gone.txt").exists()
    assert await fail_message(skill, "deleteFile", path="gone.txt") == (
        "File gone.txt does not exist."
    )
    (ws / "d").mkdir()
    assert "is a directory" in await fail_message(skill, "deleteFile", path="d")


async def test_get_file_info_for_a_file_and_a_directory(skill: BaseSkill, ws: Path) -> None:
    (ws / "docs").mkdir()
    (ws / "docs/readme.md").write_text("x" * 2048, encoding="utf-8")
    info = await ok(skill, "getFileInfo", path="docs/readme.md")
    assert set(info) == {
        "exists",
        "path",
        "absolutePath",
        "name",
        "directory",
        "extension",
        "type",
        "mimeType",
        "size",
        "sizeFormatted",
        "created",
        "modified",
        "accessed",
        "permissions",
    }
    assert info["exists"] is True
    assert info["path"] == "docs/readme.md"
    assert info["absolutePath"] == str(ws / "docs/readme.md")
    assert (info["name"], info["directory"]) == ("readme.md", str(ws / "docs"))
    assert (info["extension"], info["type"], info["mimeType"]) == (".md", "file", "text/markdown")
    assert (info["size"], info["sizeFormatted"]) == (2048, "2.00 KB")
    assert info["modified"].endswith("Z") and "T" in info["modified"]
    assert info["permissions"]["readable"] is True
    folder = await ok(skill, "getFileInfo", path="docs")
    assert (folder["type"], folder["mimeType"]) == ("directory", None)
    unknown = ws / "blob.xyz"
    unknown.write_bytes(b"\0")
    assert (await ok(skill, "getFileInfo", path="blob.xyz"))["mimeType"] == (
        "application/octet-stream"
    )
    message = await fail_message(skill, "getFileInfo", path="none")
    assert message == "File or directory none does not exist."


async def test_list_directory_is_sorted_and_hides_storage(skill: BaseSkill, ws: Path) -> None:
    (ws / "b.txt").write_text("bb", encoding="utf-8")
    (ws / "a.txt").write_text("a", encoding="utf-8")
    (ws / "src").mkdir()
    (ws / "perstack").mkdir()
    (ws / "PERSTACK").mkdir()
    result = await ok(skill, "listDirectory", path=".")
    assert result["path"] == str(ws)
    assert [i["name"] for i in result["items"]] == ["a.txt", "b.txt", "src"]
    first = result["items"][0]
    assert set(first) == {"name", "path", "type", "size", "modified"}
    assert (first["path"], first["type"], first["size"]) == ("a.txt", "file", 1)
    assert result["items"][2]["type"] == "directory"
    assert (await ok(skill, "listDirectory", path="src"))["items"] == []


async def test_list_directory_failures(skill: BaseSkill, ws: Path) -> None:
    assert await fail_message(skill, "listDirectory", path="nope") == (
        "Directory nope does not exist."
    )
    (ws / "f.txt").write_text("", encoding="utf-8")
    assert await fail_message(skill, "listDirectory", path="f.txt") == (
        "Path f.txt is not a directory."
    )


async def test_create_directory(skill: BaseSkill, ws: Path) -> None:
    assert await ok(skill, "createDirectory", path="p/q/r") == {"path": str(ws / "p/q/r")}
    assert (ws / "p/q/r").is_dir()
    assert await fail_message(skill, "createDirectory", path="p/q") == (
        "Directory p/q already exists."
    )


async def test_delete_directory(skill: BaseSkill, ws: Path) -> None:
    (ws / "empty").mkdir()
    assert await ok(skill, "deleteDirectory", path="empty") == {"path": str(ws / "empty")}
    (ws / "full/sub").mkdir(parents=True)
    (ws / "full/sub/f.txt").write_text("x", encoding="utf-8")
    message = await fail_message(skill, "deleteDirectory", path="full")
    assert "is not empty" in message and "recursive: true" in message
    await ok(skill, "deleteDirectory", path="full", recursive=True)
    assert not (ws / "full").exists()
    assert await fail_message(skill, "deleteDirectory", path="full") == (
        "Directory full does not exist."
    )
    (ws / "f.txt").write_text("", encoding="utf-8")
    assert "is not a directory" in await fail_message(skill, "deleteDirectory", path="f.txt")


async def test_delete_directory_refuses_the_workspace_root(skill: BaseSkill, ws: Path) -> None:
    (ws / "keep.txt").write_text("x", encoding="utf-8")
    message = await fail_message(skill, "deleteDirectory", path=".", recursive=True)
    assert "workspace root" in message
    assert (ws / "keep.txt").exists()


async def test_move_across_file_systems_copies_without_following_links(
    skill: BaseSkill, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (ws / "tree/sub").mkdir(parents=True)
    (ws / "tree/sub/f.txt").write_text("f", encoding="utf-8")
    (ws / "tree/link").symlink_to("sub/f.txt")
    (ws / "tree/sub/f.txt").chmod(0o640)
    real_rename = os.rename

    def cross_device(*args: Any, **kwargs: Any) -> None:
        # What rename says when the destination is on another mount inside the workspace.
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, "rename", cross_device)
    await ok(skill, "moveFile", source="tree", destination="moved/tree")
    monkeypatch.setattr(os, "rename", real_rename)
    assert not (ws / "tree").exists()
    assert (ws / "moved/tree/sub/f.txt").read_text(encoding="utf-8") == "f"
    assert (ws / "moved/tree/sub/f.txt").stat().st_mode & 0o777 == 0o640
    assert os.readlink(ws / "moved/tree/link") == "sub/f.txt"
