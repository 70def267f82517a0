"""How a base tool is declared, how its arguments are checked and how a failure is reported.

Tool names, parameters and result shapes are Perstack's (§6.3); the schemas sent to the model are
built from the same :class:`Param` declarations the arguments are checked against.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from runtime.schema.messages import TextPart
from runtime.skills.types import ToolOutcome

__all__ = [
    "Handler",
    "Kind",
    "Param",
    "ShapedFailure",
    "Tool",
    "ToolFailure",
    "dumps",
    "failure",
    "os_message",
    "schema",
    "validate",
]


class ToolFailure(Exception):
    """A failure the model can react to, reported as ``{"error": name, "message": message}``."""

    def __init__(self, message: str, name: str = "Error") -> None:
        super().__init__(message)
        self.message = message
        # Perstack reports ``Error.name``, which is "Error" for everything its tools throw.
        self.name = name


class ShapedFailure(Exception):
    """A failure with its own result shape (exec's ``{error, stdout?, stderr?}``)."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("error", ""))
        self.payload = payload


Kind = Literal["string", "integer", "boolean", "string[]", "integer[]", "string{}"]

_SCHEMAS: dict[Kind, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "string[]": {"type": "array", "items": {"type": "string"}},
    "integer[]": {"type": "array", "items": {"type": "integer"}},
    "string{}": {"type": "object", "additionalProperties": {"type": "string"}},
}

_KIND_NAMES: dict[Kind, str] = {
    "string": "a string",
    "integer": "an integer",
    "boolean": "a boolean",
    "string[]": "an array of strings",
    "integer[]": "an array of integers",
    "string{}": "an object mapping names to string values",
}


@dataclass(frozen=True)
class Param:
    """One parameter of a tool: its JSON name, kind and the description the model reads."""

    name: str
    kind: Kind
    description: str
    required: bool = True


# Tools that only make a few fast system calls are plain functions, run on the event loop; the
# ones that may wait (a process, a big file) are coroutines.
Handler = Callable[[dict[str, Any]], dict[str, Any] | Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Tool:
    """One base tool: what the model is told about it and the handler that runs it."""

    name: str
    description: str
    params: tuple[Param, ...]
    handler: Handler


def dumps(value: Any) -> str:
    """``value`` as compact JSON, like ``JSON.stringify``."""
    # Non-ASCII kept as is so the model reads the real text.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def failure(name: str, message: str) -> ToolOutcome:
    """The error outcome ``{"error": name, "message": message}``."""
    return ToolOutcome(
        contents=[TextPart(text=dumps({"error": name, "message": message}))], is_error=True
    )


def os_message(error: OSError) -> str:
    """What the model is told about an OS error: its description and the path involved."""
    if error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}"
    return error.strerror or str(error)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _coerce(kind: Kind, value: Any) -> Any:
    """``value`` converted to ``kind``, or raise ``ValueError`` when it does not fit."""
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "integer" and _is_integer(value):
        return int(value)
    if kind == "string[]" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if kind == "integer[]" and isinstance(value, list) and all(_is_integer(v) for v in value):
        return [int(v) for v in value]
    if (
        kind == "string{}"
        and isinstance(value, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        return value
    raise ValueError(kind)


def validate(tool: Tool, args: Any) -> dict[str, Any]:
    """The arguments ``tool`` declares, checked and coerced; unknown keys are dropped.

    Raises:
        ToolFailure: ``args`` is not an object, or a parameter is missing or of the wrong kind.
    """
    if not isinstance(args, dict):
        raise ToolFailure(
            f"Invalid arguments for {tool.name}: expected an object", "InvalidArgumentsError"
        )
    clean: dict[str, Any] = {}
    for param in tool.params:
        value = args.get(param.name)
        if value is None:
            # Models often send null for an optional parameter they mean to leave out.
            if param.required:
                raise ToolFailure(
                    f'Invalid arguments for {tool.name}: "{param.name}" is required',
                    "InvalidArgumentsError",
                )
            continue
        try:
            clean[param.name] = _coerce(param.kind, value)
        except ValueError:
            raise ToolFailure(
                f'Invalid arguments for {tool.name}: "{param.name}" must be '
                f"{_KIND_NAMES[param.kind]}",
                "InvalidArgumentsError",
            ) from None
    return clean


def schema(params: tuple[Param, ...]) -> dict[str, Any]:
    """The JSON schema of a tool's input, as the model sees it."""
    properties = {p.name: {**_SCHEMAS[p.kind], "description": p.description} for p in params}
    result: dict[str, Any] = {"type": "object", "properties": properties}
    required = [p.name for p in params if p.required]
    if required:
        result["required"] = required
    return result
