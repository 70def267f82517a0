"""The base skill's run bookkeeping: todo, clearTodo, attemptCompletion and healthCheck
(§6)."""

from __future__ import annotations

import os
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
