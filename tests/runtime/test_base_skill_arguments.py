"""The base skill @perstack/base: its seventeen tool definitions and how it checks a
call's arguments before running a tool (§6)."""

from __future__ import annotations

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
