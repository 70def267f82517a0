"""The base tools ``todo``, ``clearTodo`` and ``attemptCompletion``, over one run's todo list.

The list belongs to one :class:`~runtime.skills.base.BaseSkill` (one run) instead of the whole
process, as in Perstack (§18.7). ``attemptCompletion`` is answered from it: while todos are open
they are handed back and the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.skills.base.tool import Param, Tool

__all__ = ["TodoList"]


@dataclass
class _Todo:
    id: int
    title: str
    completed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "completed": self.completed}


class TodoList:
    """One run's todo list and the tools that keep it."""

    def __init__(self) -> None:
        self._todos: list[_Todo] = []
        self._next_todo_id = 0

    def tools(self) -> list[Tool]:
        """``attemptCompletion``, ``todo`` and ``clearTodo``, in the order the model sees them."""
        return [
            Tool(
                "attemptCompletion",
                "Signal that the task is finished. Call it alone, with no other tool call and no "
                "text. If todos are still open they are returned as remainingTodos and the run "
                "continues; otherwise you are asked for the final answer next.",
                (),
                self._attempt_completion,
            ),
            Tool(
                "todo",
                "Keep a todo list for the current task. Add items with newTodos and tick them off "
                "by id with completedTodos (ids start at 0 and increase). Returns the whole list "
                "after every call. Completed items stay completed.",
                (
                    Param("newTodos", "string[]", "Titles of todos to add.", required=False),
                    Param("completedTodos", "integer[]", "Ids of todos now done.", required=False),
                ),
                self._todo,
            ),
            Tool(
                "clearTodo",
                "Empty the todo list and restart ids at 0. Returns the empty list.",
                (),
                self._clear_todo,
            ),
        ]

    def _attempt_completion(self, args: dict[str, Any]) -> dict[str, Any]:
        remaining = [todo.as_json() for todo in self._todos if not todo.completed]
        return {"remainingTodos": remaining} if remaining else {}

    def _todo(self, args: dict[str, Any]) -> dict[str, Any]:
        for title in args.get("newTodos", []):
            self._todos.append(_Todo(id=self._next_todo_id, title=title))
            self._next_todo_id += 1
        done = set(args.get("completedTodos", []))
        for todo in self._todos:
            todo.completed = todo.completed or todo.id in done
        return {"todos": [todo.as_json() for todo in self._todos]}

    def _clear_todo(self, args: dict[str, Any]) -> dict[str, Any]:
        self._todos = []
        self._next_todo_id = 0
        return {"todos": []}
