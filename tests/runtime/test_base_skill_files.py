"""The base skill's text file tools: readTextFile, writeTextFile, appendTextFile and
editTextFile, their results and failures (§6)."""

from __future__ import annotations

import json
from pathlib import Path

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
