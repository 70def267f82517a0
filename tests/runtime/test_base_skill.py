"""The in-process base skill @perstack/base: every tool's result and failure shapes (§6)."""

from __future__ import annotations

import asyncio
import base64
import errno
import json
import os
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from runtime.schema.messages import FileInlinePart, ImageInlinePart, TextPart
from runtime.skills.base import BaseSkill, inline_file_results
from runtime.skills.types import ToolOutcome

TOOL_NAMES = {
    "attemptCompletion",
    "todo",
    "clearTodo",
    "healthCheck",
    "exec",
    "readTextFile",
    "readImageFile",
    "readPdfFile",
    "writeTextFile",
    "appendTextFile",
    "editTextFile",
    "moveFile",
    "deleteFile",
    "getFileInfo",
    "listDirectory",
    "createDirectory",
    "deleteDirectory",
}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    return workspace.resolve()


@pytest.fixture
def skill(ws: Path) -> BaseSkill:
    return BaseSkill(ws)


def text_of(outcome: ToolOutcome) -> str:
    assert len(outcome.contents) == 1
    part = outcome.contents[0]
    assert isinstance(part, TextPart)
    return part.text


async def ok(skill: BaseSkill, tool: str, **args: Any) -> Any:
    outcome = await skill.call(tool, args)
    assert not outcome.is_error, text_of(outcome)
    return json.loads(text_of(outcome))


async def fail(skill: BaseSkill, tool: str, **args: Any) -> dict[str, Any]:
    outcome = await skill.call(tool, args)
    assert outcome.is_error, text_of(outcome)
    result: dict[str, Any] = json.loads(text_of(outcome))
    return result


async def fail_message(skill: BaseSkill, tool: str, **args: Any) -> str:
    result = await fail(skill, tool, **args)
    assert set(result) == {"error", "message"}
    message: str = result["message"]
    return message


def run_args(command: str, *args: str, **overrides: Any) -> dict[str, Any]:
    call: dict[str, Any] = {
        "command": command,
        "args": list(args),
        "env": {},
        "cwd": ".",
        "stdout": True,
        "stderr": True,
    }
    call.update(overrides)
    return call


# Definitions and argument checking ------------------------------------------------------------


def test_offers_the_seventeen_perstack_tools(skill: BaseSkill) -> None:
    definitions = skill.tools()
    assert {d.name for d in definitions} == TOOL_NAMES
    assert len(definitions) == 17
    assert all(d.skill_name == "@perstack/base" for d in definitions)
    assert all(d.input_schema["type"] == "object" and d.description for d in definitions)
    assert skill.name == "@perstack/base"
    assert skill.kind == "mcp"


def test_schemas_use_perstack_parameter_names(skill: BaseSkill) -> None:
    schemas = {d.name: d.input_schema for d in skill.tools()}
    exec_schema = schemas["exec"]
    assert set(exec_schema["properties"]) == {
        "command",
        "args",
        "env",
        "cwd",
        "stdout",
        "stderr",
        "timeout",
    }
    assert set(exec_schema["required"]) == {"command", "args", "env", "cwd", "stdout", "stderr"}
    assert set(schemas["readTextFile"]["properties"]) == {"path", "from", "to"}
    assert schemas["readTextFile"]["required"] == ["path"]
    assert set(schemas["editTextFile"]["required"]) == {"path", "newText", "oldText"}
    assert set(schemas["moveFile"]["required"]) == {"source", "destination"}
    assert set(schemas["todo"]["properties"]) == {"newTodos", "completedTodos"}
    assert "required" not in schemas["todo"]
    assert schemas["deleteDirectory"]["required"] == ["path"]
    assert schemas["attemptCompletion"]["properties"] == {}


async def test_unknown_tool_is_an_error_result(skill: BaseSkill) -> None:
    result = await fail(skill, "think", thought="hmm")
    assert result == {"error": "Error", "message": "Tool think not found in @perstack/base"}


async def test_missing_argument_names_the_parameter(skill: BaseSkill) -> None:
    result = await fail(skill, "writeTextFile", path="a.txt")
    assert result["error"] == "InvalidArgumentsError"
    assert '"text" is required' in result["message"]


async def test_wrong_argument_type_names_the_parameter(skill: BaseSkill) -> None:
    assert '"path" must be a string' in await fail_message(skill, "readTextFile", path=3)
    message = await fail_message(skill, "readTextFile", path="a", **{"from": True})
    assert '"from" must be an integer' in message
    message = await fail_message(skill, "todo", newTodos=["a", 1])
    assert '"newTodos" must be an array of strings' in message
    message = await fail_message(skill, "exec", **run_args("echo", env={"A": 1}))
    assert '"env" must be an object' in message


async def test_arguments_that_are_not_an_object_are_refused(skill: BaseSkill) -> None:
    outcome = await skill.call("todo", ["a"])  # type: ignore[arg-type]
    assert outcome.is_error
    assert "expected an object" in text_of(outcome)


async def test_null_optional_arguments_count_as_absent(skill: BaseSkill, ws: Path) -> None:
    (ws / "a.txt").write_text("x\ny", encoding="utf-8")
    result = await ok(skill, "readTextFile", path="a.txt", **{"from": None, "to": None})
    assert result["content"] == "x\ny"


# Todos and completion -------------------------------------------------------------------------


async def test_attempt_completion_without_todos_is_empty(skill: BaseSkill) -> None:
    assert await ok(skill, "attemptCompletion") == {}


async def test_todo_ids_increment_and_completion_is_sticky(skill: BaseSkill) -> None:
    result = await ok(skill, "todo", newTodos=["plan", "write"])
    assert result == {
        "todos": [
            {"id": 0, "title": "plan", "completed": False},
            {"id": 1, "title": "write", "completed": False},
        ]
    }
    await ok(skill, "todo", completedTodos=[0])
    result = await ok(skill, "todo", newTodos=["check"], completedTodos=[99])
    assert [(t["id"], t["completed"]) for t in result["todos"]] == [
        (0, True),
        (1, False),
        (2, False),
    ]


async def test_attempt_completion_returns_remaining_todos(skill: BaseSkill) -> None:
    await ok(skill, "todo", newTodos=["a", "b"], completedTodos=[0])
    assert await ok(skill, "attemptCompletion") == {
        "remainingTodos": [{"id": 1, "title": "b", "completed": False}]
    }
    await ok(skill, "todo", completedTodos=[1])
    assert await ok(skill, "attemptCompletion") == {}


async def test_clear_todo_resets_the_list_and_the_ids(skill: BaseSkill) -> None:
    await ok(skill, "todo", newTodos=["a", "b"])
    assert await ok(skill, "clearTodo") == {"todos": []}
    result = await ok(skill, "todo", newTodos=["c"])
    assert result["todos"] == [{"id": 0, "title": "c", "completed": False}]


async def test_todos_belong_to_one_skill_instance(ws: Path) -> None:
    first, second = BaseSkill(ws), BaseSkill(ws)
    await ok(first, "todo", newTodos=["only in the first run"])
    assert await ok(second, "attemptCompletion") == {}
    assert (await ok(first, "attemptCompletion"))["remainingTodos"][0]["id"] == 0


async def test_health_check(skill: BaseSkill, ws: Path) -> None:
    result = await ok(skill, "healthCheck")
    assert result["status"] == "ok"
    assert result["workspace"] == str(ws)
    assert result["uptime"] == "0s"
    assert result["pid"] == os.getpid()
    assert result["memory"]["heapUsed"].endswith("MB")
    assert int(result["memory"]["heapTotal"][:-2]) > 0


# Text files -----------------------------------------------------------------------------------


async def test_read_text_file_whole_and_by_lines(skill: BaseSkill, ws: Path) -> None:
    (ws / "notes.txt").write_text("L0\nL1\nL2\nL3", encoding="utf-8")
    result = await ok(skill, "readTextFile", path="notes.txt")
    assert result == {
        "path": str(ws / "notes.txt"),
        "content": "L0\nL1\nL2\nL3",
        "from": 0,
        "to": 4,
    }
    result = await ok(skill, "readTextFile", path="notes.txt", **{"from": 1, "to": 3})
    assert (result["content"], result["from"], result["to"]) == ("L1\nL2", 1, 3)
    result = await ok(skill, "readTextFile", path="notes.txt", **{"from": 3})
    assert (result["content"], result["to"]) == ("L3", 4)


async def test_read_text_file_empty_and_unicode(skill: BaseSkill, ws: Path) -> None:
    (ws / "empty.txt").write_text("", encoding="utf-8")
    assert await ok(skill, "readTextFile", path="empty.txt") == {
        "path": str(ws / "empty.txt"),
        "content": "",
        "from": 0,
        "to": 1,
    }
    (ws / "uni.txt").write_text("🦜 Perstack\n日本語", encoding="utf-8")
    outcome = await skill.call("readTextFile", {"path": "uni.txt"})
    assert "日本語" in text_of(outcome)  # not \u-escaped
    assert json.loads(text_of(outcome))["content"] == "🦜 Perstack\n日本語"


async def test_read_text_file_failures(skill: BaseSkill, ws: Path) -> None:
    message = await fail_message(skill, "readTextFile", path="missing.txt")
    assert message == "File missing.txt does not exist."
    (ws / "dir").mkdir()
    assert "is a directory" in await fail_message(skill, "readTextFile", path="dir")


async def test_write_text_file_creates_missing_parents(skill: BaseSkill, ws: Path) -> None:
    result = await ok(skill, "writeTextFile", path="a/b/c/out.md", text="# hi")
    assert result == {"path": str(ws / "a/b/c/out.md"), "text": "# hi"}
    assert (ws / "a/b/c/out.md").read_text(encoding="utf-8") == "# hi"
    await ok(skill, "writeTextFile", path="a/b/c/out.md", text="new")
    assert (ws / "a/b/c/out.md").read_text(encoding="utf-8") == "new"


async def test_write_text_file_refuses_read_only_files(skill: BaseSkill, ws: Path) -> None:
    target = ws / "locked.txt"
    target.write_text("keep", encoding="utf-8")
    target.chmod(0o444)
    assert await fail_message(skill, "writeTextFile", path="locked.txt", text="x") == (
        "File locked.txt is not writable"
    )
    assert target.read_text(encoding="utf-8") == "keep"


async def test_big_files_round_trip(skill: BaseSkill, ws: Path) -> None:
    text = "0123456789abcdef\n" * 40_000  # ~680 KB: goes through a worker thread
    await ok(skill, "writeTextFile", path="big.txt", text=text)
    result = await ok(skill, "readTextFile", path="big.txt", **{"from": 39_999, "to": 40_000})
    assert result["content"] == "0123456789abcdef"
    await ok(skill, "editTextFile", path="big.txt", oldText="0123", newText="HEAD")
    assert (ws / "big.txt").read_text(encoding="utf-8").startswith("HEAD4567")


async def test_append_text_file(skill: BaseSkill, ws: Path) -> None:
    (ws / "log.txt").write_text("one", encoding="utf-8")
    result = await ok(skill, "appendTextFile", path="log.txt", text="two")
    assert result == {"path": str(ws / "log.txt"), "text": "two"}
    assert (ws / "log.txt").read_text(encoding="utf-8") == "onetwo"
    message = await fail_message(skill, "appendTextFile", path="nope.txt", text="x")
    assert message == "File nope.txt does not exist."
    assert not (ws / "nope.txt").exists()


async def test_edit_text_file_replaces_the_first_match(skill: BaseSkill, ws: Path) -> None:
    (ws / "code.py").write_bytes(b"x = 1\r\nx = 1\r\n")
    result = await ok(skill, "editTextFile", path="code.py", oldText="x = 1\r\n", newText="y = 2\n")
    assert result == {"path": str(ws / "code.py"), "newText": "y = 2\n", "oldText": "x = 1\r\n"}
    assert (ws / "code.py").read_bytes() == b"y = 2\nx = 1\n"


async def test_edit_text_file_failures(skill: BaseSkill, ws: Path) -> None:
    (ws / "code.py").write_text("x = 1\n", encoding="utf-8")
    message = await fail_message(skill, "editTextFile", path="code.py", oldText="z", newText="y")
    assert message == f"Could not find exact match for oldText in file {ws / 'code.py'}"
    message = await fail_message(skill, "editTextFile", path="code.py", oldText="", newText="y")
    assert message == "oldText must not be empty"
    message = await fail_message(skill, "editTextFile", path="no.py", oldText="a", newText="b")
    assert message == "File no.py does not exist."
    assert (ws / "code.py").read_text(encoding="utf-8") == "x = 1\n"


# Files and directories ------------------------------------------------------------------------


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


# Path rules -----------------------------------------------------------------------------------


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


# Env files --------------------------------------------------------------------------------------

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


# exec -----------------------------------------------------------------------------------------


async def test_exec_runs_without_a_shell(skill: BaseSkill) -> None:
    result = await ok(skill, "exec", **run_args("echo", "$HOME", "*", "a;b"))
    assert result == {"output": "$HOME * a;b\n"}


async def test_exec_stream_flags(skill: BaseSkill) -> None:
    script = "import sys; print('out'); print('err', file=sys.stderr)"
    both = await ok(skill, "exec", **run_args(sys.executable, "-c", script))
    assert both == {"output": "out\nerr\n"}
    only_out = await ok(skill, "exec", **run_args(sys.executable, "-c", script, stderr=False))
    assert only_out == {"output": "out\n"}
    only_err = await ok(skill, "exec", **run_args(sys.executable, "-c", script, stdout=False))
    assert only_err == {"output": "err\n"}


async def test_exec_without_output(skill: BaseSkill) -> None:
    assert await ok(skill, "exec", **run_args("true")) == {
        "output": "Command executed successfully, but produced no output."
    }


async def test_exec_non_zero_exit_has_the_exec_error_shape(skill: BaseSkill) -> None:
    args = run_args("sh", "-c", "echo partial; echo boom >&2; exit 3")
    result = await fail(skill, "exec", **args)
    assert result["error"].startswith("Command failed with exit code 3")
    assert (result["stdout"], result["stderr"]) == ("partial\n", "boom\n")
    result = await fail(skill, "exec", **{**args, "stdout": False})
    assert set(result) == {"error", "stderr"}


async def test_exec_timeout_kills_the_process_group(skill: BaseSkill) -> None:
    started = time.monotonic()
    # The background sleep holds the pipes open: only killing the whole group ends the call.
    args = run_args("sh", "-c", "echo started; sleep 30 & sleep 30", timeout=300)
    result = await fail(skill, "exec", **args)
    assert time.monotonic() - started < 10
    assert result["error"] == "Command timed out after 300ms."
    assert result["stdout"] == "started\n"


async def test_exec_env_is_filtered(skill: BaseSkill, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPER_SECRET_TOKEN", "hunter2")
    monkeypatch.setenv("LANG", "C.UTF-8")
    script = "import os, json; print(json.dumps(dict(os.environ)))"
    args = run_args(
        sys.executable,
        "-c",
        script,
        env={"GREETING": "hi", "PATH": "/nowhere", "LD_PRELOAD": "/evil.so", "HOME": "/tmp/x"},
    )
    env = json.loads((await ok(skill, "exec", **args))["output"])
    assert "SUPER_SECRET_TOKEN" not in env
    assert env["GREETING"] == "hi"
    assert env["PATH"] == os.environ["PATH"]
    assert env["HOME"] == os.environ["HOME"]
    assert env["LANG"] == "C.UTF-8"
    assert "LD_PRELOAD" not in env


async def test_exec_cwd_is_checked(skill: BaseSkill, ws: Path) -> None:
    (ws / "sub").mkdir()
    result = await ok(skill, "exec", **run_args("pwd", cwd="sub"))
    assert result == {"output": f"{ws / 'sub'}\n"}
    message = await fail_message(skill, "exec", **run_args("pwd", cwd=".."))
    assert message.startswith("Access denied - path outside allowed directories")
    message = await fail_message(skill, "exec", **run_args("pwd", cwd="missing"))
    assert message == "Directory missing does not exist."
    message = await fail_message(skill, "exec", **run_args("pwd", cwd="perstack"))
    assert message == "Access denied - perstack directory is not allowed"


async def test_exec_unknown_command(skill: BaseSkill) -> None:
    result = await fail(skill, "exec", **run_args("definitely-not-a-command-xyz"))
    assert result["error"].startswith("Failed to run definitely-not-a-command-xyz")


async def test_exec_output_is_capped(skill: BaseSkill) -> None:
    script = "import sys; sys.stdout.write('x' * (11 * 1024 * 1024))"
    result = await fail(skill, "exec", **run_args(sys.executable, "-c", script, stderr=False))
    assert result["error"].startswith("Command output exceeded 10 MB (stdout)")
    assert len(result["stdout"]) <= 10 * 1024 * 1024


async def test_close_kills_running_commands(skill: BaseSkill, ws: Path) -> None:
    task = asyncio.create_task(skill.call("exec", run_args("sh", "-c", "touch started; sleep 30")))
    async with asyncio.timeout(10):
        # Another process creates the file: there is no event to wait on, so poll.
        for _ in range(1000):
            if (ws / "started").exists():
                break
            await asyncio.sleep(0.01)
        await skill.close()
        outcome = await task  # within the timeout: the 30 s command did not run on
    assert outcome.is_error
    # Usually "killed by signal SIGKILL"; once, on a loaded CI machine, the shell reported exit
    # code 255 instead. Either way the command was stopped, which is what close() promises.
    error = json.loads(text_of(outcome))["error"]
    assert error.startswith(("Command killed by signal", "Command failed with exit code"))
    assert "sh -c touch started; sleep 30" in error
    assert not skill._exec.processes


# Images, PDFs and inlining --------------------------------------------------------------------


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


TINY_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 10 10]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


async def test_read_image_file_returns_path_type_and_size(skill: BaseSkill, ws: Path) -> None:
    png = tiny_png()
    (ws / "dot.PNG").write_bytes(png)
    (ws / "photo.jpeg").write_bytes(b"\xff\xd8\xff")
    assert await ok(skill, "readImageFile", path="dot.PNG") == {
        "path": str(ws / "dot.PNG"),
        "mimeType": "image/png",
        "size": len(png),
    }
    assert (await ok(skill, "readImageFile", path="photo.jpeg"))["mimeType"] == "image/jpeg"


async def test_read_image_file_failures(skill: BaseSkill, ws: Path) -> None:
    (ws / "pic.bmp").write_bytes(b"BM")
    assert "Unsupported image format .bmp" in await fail_message(
        skill, "readImageFile", path="pic.bmp"
    )
    assert await fail_message(skill, "readImageFile", path="none.png") == (
        "File none.png does not exist."
    )
    with (ws / "huge.png").open("wb") as handle:
        handle.truncate(15 * 1024 * 1024 + 1)
    message = await fail_message(skill, "readImageFile", path="huge.png")
    assert message == "Image file too large (15.0MB). Maximum supported size is 15MB."


async def test_read_pdf_file(skill: BaseSkill, ws: Path) -> None:
    (ws / "doc.pdf").write_bytes(TINY_PDF)
    assert await ok(skill, "readPdfFile", path="doc.pdf") == {
        "path": str(ws / "doc.pdf"),
        "mimeType": "application/pdf",
        "size": len(TINY_PDF),
    }
    (ws / "doc.txt").write_text("x", encoding="utf-8")
    assert await fail_message(skill, "readPdfFile", path="doc.txt") == (
        "File doc.txt is not a PDF file."
    )
    with (ws / "huge.pdf").open("wb") as handle:
        handle.truncate(30 * 1024 * 1024 + 1)
    message = await fail_message(skill, "readPdfFile", path="huge.pdf")
    assert message == "PDF file too large (30.0MB). Maximum supported size is 30MB."


async def test_inline_file_results_for_a_png(skill: BaseSkill, ws: Path) -> None:
    png = tiny_png()
    (ws / "dot.png").write_bytes(png)
    outcome = inline_file_results(
        "readImageFile", await skill.call("readImageFile", {"path": "dot.png"})
    )
    assert not outcome.is_error
    [part] = outcome.contents
    assert isinstance(part, ImageInlinePart)
    assert part.mime_type == "image/png"
    assert base64.b64decode(part.encoded_data) == png


async def test_inline_file_results_for_a_pdf(skill: BaseSkill, ws: Path) -> None:
    (ws / "doc.pdf").write_bytes(TINY_PDF)
    outcome = inline_file_results(
        "readPdfFile", await skill.call("readPdfFile", {"path": "doc.pdf"})
    )
    [part] = outcome.contents
    assert isinstance(part, FileInlinePart)
    assert part.mime_type == "application/pdf"
    assert base64.b64decode(part.encoded_data) == TINY_PDF


def test_inline_file_results_read_failure(tmp_path: Path) -> None:
    missing = tmp_path / "gone.png"
    result = json.dumps({"path": str(missing), "mimeType": "image/png", "size": 1})
    outcome = inline_file_results("readImageFile", ToolOutcome(contents=[TextPart(text=result)]))
    assert outcome.is_error
    assert text_of(outcome) == f'Failed to read file "{missing}": No such file or directory'


def test_inline_file_results_leaves_other_results_alone() -> None:
    plain = ToolOutcome(contents=[TextPart(text='{"path":"/x","mimeType":"image/png","size":1}')])
    assert inline_file_results("readTextFile", plain) is plain
    error = ToolOutcome(
        contents=[TextPart(text='{"path":"/x","mimeType":"image/png"}')], is_error=True
    )
    assert inline_file_results("readImageFile", error) is error
    not_json = ToolOutcome(contents=[TextPart(text="an image, trust me")])
    assert inline_file_results("readImageFile", not_json) is not_json
    no_mime = ToolOutcome(contents=[TextPart(text='{"path":"/x"}')])
    assert inline_file_results("readPdfFile", no_mime) is no_mime


def test_inline_file_results_inside_a_workspace_reads_only_inside(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "img").mkdir(parents=True)
    (ws / "img/a.png").write_bytes(tiny_png())
    (tmp_path / "out.png").write_bytes(tiny_png())
    (ws / "img/link.png").symlink_to(tmp_path / "out.png")
    (ws / ".env.png").write_bytes(tiny_png())

    def inline(path: Path) -> ToolOutcome:
        info = {"path": str(path), "mimeType": "image/png", "size": 1}
        outcome = ToolOutcome(contents=[TextPart(text=json.dumps(info))])
        return inline_file_results("readImageFile", outcome, workspace=ws)

    good = inline(ws / "img/a.png")
    assert isinstance(good.contents[0], ImageInlinePart)
    for path, reason in [
        (tmp_path / "out.png", "Access denied - path outside allowed directories"),
        (ws / "img/link.png", "Too many levels of symbolic links"),
        (ws / ".env.png", "env files hold secrets"),
    ]:
        outcome = inline(path)
        assert outcome.is_error
        assert text_of(outcome).startswith(f'Failed to read file "{path}": {reason}')
