"""What the base skill's file tools may touch (§6): paths stay in the workspace (``..``,
absolute paths, ``~``, symlinks, loops, FIFOs), and the storage directory and env files
are refused."""

from __future__ import annotations

import os
from pathlib import Path

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


async def test_dot_dot_cannot_escape(skill: BaseSkill, ws: Path) -> None:
    (ws.parent / "secret.txt").write_text("s", encoding="utf-8")
    message = await fail_message(skill, "readTextFile", path="../secret.txt")
    assert message == (
        f"Access denied - path outside allowed directories: {ws.parent / 'secret.txt'} not in {ws}"
    )
    message = await fail_message(skill, "writeTextFile", path="sub/../../x.txt", text="x")
    assert message.startswith("Access denied - path outside allowed directories")
    assert not (ws.parent / "x.txt").exists()


async def test_absolute_paths_outside_are_denied(skill: BaseSkill, ws: Path) -> None:
    message = await fail_message(skill, "readTextFile", path="/etc/passwd")
    assert message == f"Access denied - path outside allowed directories: /etc/passwd not in {ws}"
    assert "not in" in await fail_message(skill, "listDirectory", path="/")
    # An absolute path inside the workspace is fine.
    (ws / "in.txt").write_text("in", encoding="utf-8")
    assert (await ok(skill, "readTextFile", path=str(ws / "in.txt")))["content"] == "in"


async def test_home_is_expanded(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (ws / "h.txt").write_text("home", encoding="utf-8")
    monkeypatch.setenv("HOME", str(ws))
    skill = BaseSkill(ws)
    assert (await ok(skill, "readTextFile", path="~/h.txt"))["content"] == "home"
    monkeypatch.setenv("HOME", str(ws.parent))
    assert "not in" in await fail_message(skill, "readTextFile", path="~/h.txt")


async def test_symlink_pointing_outside_is_denied(skill: BaseSkill, ws: Path) -> None:
    outside = ws.parent / "outside"
    outside.mkdir()
    (outside / "data.txt").write_text("private", encoding="utf-8")
    (ws / "file_link").symlink_to(outside / "data.txt")
    (ws / "dir_link").symlink_to(outside)
    denied = "Access denied - symlink target outside allowed directories"
    assert await fail_message(skill, "readTextFile", path="file_link") == denied
    assert await fail_message(skill, "readTextFile", path="dir_link/data.txt") == denied
    assert await fail_message(skill, "writeTextFile", path="dir_link/new.txt", text="x") == denied
    assert await fail_message(skill, "listDirectory", path="dir_link") == denied
    assert await fail_message(skill, "deleteFile", path="dir_link/data.txt") == denied
    assert await fail_message(skill, "readImageFile", path="dir_link/x.png") == denied
    assert not (outside / "new.txt").exists()
    assert (outside / "data.txt").read_text(encoding="utf-8") == "private"
    # Entries leading out of the workspace are not listed either.
    assert (await ok(skill, "listDirectory", path="."))["items"] == []


async def test_symlink_target_files_are_not_read_or_written(skill: BaseSkill, ws: Path) -> None:
    (ws / "real.txt").write_text("real", encoding="utf-8")
    (ws / "alias.txt").symlink_to(ws / "real.txt")
    denied = "Operation denied: target is a symbolic link"
    assert await fail_message(skill, "readTextFile", path="alias.txt") == denied
    assert await fail_message(skill, "writeTextFile", path="alias.txt", text="x") == denied
    assert await fail_message(skill, "appendTextFile", path="alias.txt", text="x") == denied
    message = await fail_message(skill, "editTextFile", path="alias.txt", oldText="r", newText="x")
    assert message == denied
    assert (ws / "real.txt").read_text(encoding="utf-8") == "real"
    # Removing the link leaves its target alone.
    await ok(skill, "deleteFile", path="alias.txt")
    assert (ws / "real.txt").exists()


async def test_symlinked_directory_inside_the_workspace_is_followed(
    skill: BaseSkill, ws: Path
) -> None:
    (ws / "real").mkdir()
    (ws / "real/f.txt").write_text("f", encoding="utf-8")
    (ws / "alias").symlink_to(ws / "real")
    result = await ok(skill, "readTextFile", path="alias/f.txt")
    assert (result["path"], result["content"]) == (str(ws / "real/f.txt"), "f")


async def test_perstack_directory_is_denied_in_any_case(skill: BaseSkill, ws: Path) -> None:
    (ws / "perstack/jobs").mkdir(parents=True)
    (ws / "perstack/jobs/job.json").write_text("{}", encoding="utf-8")
    denied = "Access denied - perstack directory is not allowed"
    assert await fail_message(skill, "readTextFile", path="perstack/jobs/job.json") == denied
    assert await fail_message(skill, "readTextFile", path="PERSTACK/jobs/job.json") == denied
    assert await fail_message(skill, "listDirectory", path="perstack") == denied
    assert await fail_message(skill, "writeTextFile", path="Perstack/x.txt", text="x") == denied
    assert await fail_message(skill, "deleteDirectory", path="perstack", recursive=True) == denied
    assert await fail_message(skill, "moveFile", source="perstack", destination="p2") == denied
    assert await fail_message(skill, "createDirectory", path="PERSTACK") == denied
    # Through a symlink as well.
    (ws / "sneaky").symlink_to(ws / "perstack")
    assert await fail_message(skill, "readTextFile", path="sneaky/jobs/job.json") == denied
    assert (await ok(skill, "listDirectory", path="."))["items"] == []
    assert (ws / "perstack/jobs/job.json").exists()


async def test_custom_storage_directory_is_denied(ws: Path) -> None:
    skill = BaseSkill(ws, storage_dir=ws / ".data" / "store")
    (ws / ".data/store").mkdir(parents=True)
    (ws / ".data/other.txt").write_text("ok", encoding="utf-8")
    denied = "Access denied - perstack directory is not allowed"
    assert await fail_message(skill, "writeTextFile", path=".data/store/x", text="x") == denied
    assert await fail_message(skill, "writeTextFile", path=".DATA/Store/x", text="x") == denied
    assert await fail_message(skill, "deleteDirectory", path=".data", recursive=True) == denied
    listing = await ok(skill, "listDirectory", path=".data")
    assert [i["name"] for i in listing["items"]] == ["other.txt"]
    assert await fail_message(skill, "readTextFile", path="perstack/x") == denied


async def test_symlinks_inside_the_workspace_resolve_inside(skill: BaseSkill, ws: Path) -> None:
    (ws / "real").mkdir()
    (ws / "real/f.txt").write_text("f", encoding="utf-8")
    # Absolute, and relative through the workspace's own name: both stay inside.
    (ws / "abs").symlink_to(ws / "real")
    (ws / "sub").mkdir()
    (ws / "sub/rel").symlink_to(Path("..") / ".." / ws.name / "real")
    for path in ("abs/f.txt", "sub/rel/f.txt"):
        result = await ok(skill, "readTextFile", path=path)
        assert (result["path"], result["content"]) == (str(ws / "real/f.txt"), "f")
    listing = await ok(skill, "listDirectory", path="sub/rel")
    assert [i["name"] for i in listing["items"]] == ["f.txt"]
    info = await ok(skill, "getFileInfo", path="abs")
    assert (info["type"], info["absolutePath"]) == ("directory", str(ws / "real"))
    await ok(skill, "writeTextFile", path="abs/new/g.txt", text="g")
    assert (ws / "real/new/g.txt").read_text(encoding="utf-8") == "g"
    # The link itself is what moveFile moves and deleteDirectory refuses.
    await ok(skill, "moveFile", source="abs", destination="abs2")
    assert (ws / "abs2").is_symlink() and (ws / "real/f.txt").exists()
    message = await fail_message(skill, "deleteDirectory", path="abs2", recursive=True)
    assert message == "Operation denied: target is a symbolic link"


async def test_link_loops_and_links_through_files_fail_cleanly(skill: BaseSkill, ws: Path) -> None:
    (ws / "a").symlink_to("b")
    (ws / "b").symlink_to("a")
    result = await fail(skill, "readTextFile", path="a/x.txt")
    assert "Too many levels of symbolic links" in result["message"]
    (ws / "file.txt").write_text("x", encoding="utf-8")
    result = await fail(skill, "readTextFile", path="file.txt/x")
    assert "Not a directory" in result["message"]
    # A dangling link inside is listed as nothing, and removable.
    (ws / "dangling").symlink_to("nowhere")
    names = [i["name"] for i in (await ok(skill, "listDirectory", path="."))["items"]]
    assert names == ["file.txt"]
    await ok(skill, "deleteFile", path="dangling")


async def test_a_fifo_never_blocks_a_tool(skill: BaseSkill, ws: Path) -> None:
    os.mkfifo(ws / "pipe")
    assert await fail_message(skill, "readTextFile", path="pipe") == (
        "Path pipe is not a regular file."
    )
    assert await fail_message(skill, "writeTextFile", path="pipe", text="x") == (
        "Path pipe is not a regular file."
    )


REFUSED = "Refused: {} holds secrets (API keys); the base skill does not read or change env files."


@pytest.fixture
def env_ws(ws: Path) -> Path:
    (ws / ".env").write_text("OPENAI_API_KEY=sk-test-1234567890\n", encoding="utf-8")
    (ws / ".env.local").write_text("LOCAL_TOKEN=tok-1234567890\n", encoding="utf-8")
    (ws / "config").mkdir()
    (ws / "config/keys.txt").write_text("CUSTOM_SECRET=custom-1234567890\n", encoding="utf-8")
    (ws / ".env.example").write_text("OPENAI_API_KEY=\n", encoding="utf-8")
    return ws


def files_of(directory: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}


@pytest.mark.parametrize("path", [".env", ".env.local", "sub/.ENV.production", "config/keys.txt"])
async def test_env_files_are_refused_to_every_file_tool(env_ws: Path, path: str) -> None:
    skill = BaseSkill(env_ws, env_files=[env_ws / "config/keys.txt"])
    (env_ws / "plain.txt").write_text("plain", encoding="utf-8")
    before = files_of(env_ws)
    for tool, args in [
        ("readTextFile", {"path": path}),
        ("writeTextFile", {"path": path, "text": "OPENAI_BASE_URL=https://evil.example"}),
        ("appendTextFile", {"path": path, "text": "X=1"}),
        ("editTextFile", {"path": path, "oldText": "=", "newText": "=x"}),
        ("getFileInfo", {"path": path}),
        ("deleteFile", {"path": path}),
        ("moveFile", {"source": path, "destination": "stolen.txt"}),
        ("moveFile", {"source": "plain.txt", "destination": path}),
        ("createDirectory", {"path": path}),
    ]:
        assert await fail_message(skill, tool, **args) == REFUSED.format(path), (tool, args)
    assert files_of(env_ws) == before
    image = ".env.png"
    assert await fail_message(skill, "readImageFile", path=image) == REFUSED.format(image)


async def test_env_files_are_refused_through_links_and_other_names(env_ws: Path) -> None:
    skill = BaseSkill(env_ws, env_files=[env_ws / ".env"])
    (env_ws / "alias").symlink_to(".env")
    assert await fail_message(skill, "getFileInfo", path="alias") == REFUSED.format("alias")
    (env_ws / "cfg").symlink_to(".")
    assert await fail_message(skill, "readTextFile", path="cfg/.env") == REFUSED.format("cfg/.env")
    # A hard link is the same file under another name: caught by its inode.
    os.link(env_ws / ".env", env_ws / "notes.txt")
    assert await fail_message(skill, "readTextFile", path="notes.txt") == (
        REFUSED.format("notes.txt")
    )
    assert await fail_message(skill, "writeTextFile", path="notes.txt", text="x") == (
        REFUSED.format("notes.txt")
    )
    assert (env_ws / ".env").read_text(encoding="utf-8").startswith("OPENAI_API_KEY=sk-")


async def test_env_files_are_listed_and_templates_are_ordinary_files(env_ws: Path) -> None:
    skill = BaseSkill(env_ws)
    names = [i["name"] for i in (await ok(skill, "listDirectory", path="."))["items"]]
    assert names == [".env", ".env.example", ".env.local", "config"]
    result = await ok(skill, "readTextFile", path=".env.example")
    assert result["content"] == "OPENAI_API_KEY=\n"
    await ok(skill, "editTextFile", path=".env.example", oldText="KEY=", newText="KEY=<key>")
    # A directory called .env (a virtualenv) can still be listed.
    (env_ws / "proj/.env/bin").mkdir(parents=True)
    listing = await ok(skill, "listDirectory", path="proj/.env")
    assert [i["name"] for i in listing["items"]] == ["bin"]


async def test_storage_internals_are_refused(ws: Path) -> None:
    skill = BaseSkill(ws, storage_dir=ws / "perstack")
    (ws / "perstack/jobs/j1/checkpoints").mkdir(parents=True)
    (ws / "perstack/jobs/j1/job.json").write_text("{}", encoding="utf-8")
    denied = "Access denied - perstack directory is not allowed"
    for tool, args in [
        ("readTextFile", {"path": "perstack/jobs/j1/job.json"}),
        ("writeTextFile", {"path": "perstack/jobs/j1/job.json", "text": "x"}),
        ("editTextFile", {"path": "perstack/jobs/j1/job.json", "oldText": "{", "newText": "["}),
        ("getFileInfo", {"path": "perstack/jobs/j1/job.json"}),
        ("moveFile", {"source": "perstack/jobs/j1/job.json", "destination": "x.json"}),
        ("listDirectory", {"path": "perstack/jobs"}),
    ]:
        assert await fail_message(skill, tool, **args) == denied, tool
    assert (ws / "perstack/jobs/j1/job.json").read_text(encoding="utf-8") == "{}"
