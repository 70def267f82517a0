"""Tool calls a model wrote as text, for ``toolCallMode = "text"`` (weak local models).

Some models served without a tool-call grammar (Qwen2.5-Coder on llama.cpp or Ollama, for
example) answer a tool request with the call as JSON in the reply text instead of in the
provider's tool-call fields. :func:`parse_text_tool_calls` recognises such a reply when the
text is nothing but calls, in one of these shapes:

* a JSON object ``{"name": ..., "arguments": {...}}``; the name may also be under ``tool``,
  ``tool_name``, ``toolName`` or ``function`` (a string), the arguments under ``parameters``,
  ``args`` or ``input``, and the arguments may be a JSON string (OpenAI's encoding); ``id`` and
  ``type`` keys are allowed, any other key makes it not a call;
* OpenAI's ``{"type": "function", "function": {"name": ..., "arguments": ...}}``;
* a JSON list of calls, or ``{"tool_calls": [...]}``;
* several of these one after another, separated by whitespace;
* each optionally inside a ``````json`` fence or ``<tool_call>...</tool_call>`` tags (Qwen's
  chat template; the closing tag may be missing at the very end).

Every call must name a tool the run offers. Anything else (prose around the JSON, malformed
JSON, an unknown tool name, arguments that are not an object) means the reply is text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from runtime.llm import ToolCallChunk
from runtime.schema.ids import new_id

_NAME_KEYS = ("name", "tool", "tool_name", "toolName", "function")
_ARGS_KEYS = ("arguments", "parameters", "args", "input")
_IGNORED_KEYS = frozenset({"id", "type"})
_FENCE_RE = re.compile(r"^```[\w-]*[ \t]*\n?(?P<body>.*?)\n?[ \t]*```$", re.DOTALL)
_TAG_RE = re.compile(r"<tool_call>(?P<body>.*?)(?:</tool_call>|\Z)", re.DOTALL)
_DECODER = json.JSONDecoder()


def parse_text_tool_calls(text: str, known_tools: Collection[str]) -> list[ToolCallChunk] | None:
    """The tool calls ``text`` consists of, or ``None`` when it is an ordinary text reply.

    Args:
        text: The whole text of a reply that came with no native tool calls.
        known_tools: The names of the tools the run offers.

    Returns:
        One chunk per call, in order, each with a fresh id and its arguments as JSON text;
        ``None`` unless every part of ``text`` is a call to a known tool.
    """
    stripped = text.strip()
    if not stripped.startswith(("{", "[", "<tool_call>", "```")):
        return None
    if "<tool_call>" in stripped:
        if _TAG_RE.sub("", stripped).strip():
            return None
        bodies = [match.group("body") for match in _TAG_RE.finditer(stripped)]
    else:
        bodies = [stripped]
    found: list[tuple[str, dict[str, Any]]] = []
    for body in bodies:
        values = _json_values(_unfenced(body.strip()))
        if not values:
            return None
        for value in values:
            calls = _calls(value, known_tools)
            if not calls:
                return None
            found.extend(calls)
    return [
        ToolCallChunk(id=f"call_{new_id(12)}", name=name, arguments=json.dumps(args))
        for name, args in found
    ]


def _unfenced(text: str) -> str:
    match = _FENCE_RE.match(text)
    return match.group("body").strip() if match else text


def _json_values(text: str) -> list[Any] | None:
    """Every JSON value in ``text``, when it holds nothing else (whitespace between is fine)."""
    values: list[Any] = []
    position = 0
    while position < len(text):
        try:
            value, position = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError:
            return None
        values.append(value)
        while position < len(text) and text[position].isspace():
            position += 1
    return values or None


def _calls(value: Any, known_tools: Collection[str]) -> list[tuple[str, dict[str, Any]]] | None:
    if isinstance(value, list):
        items: list[Any] = value
    elif isinstance(value, dict) and set(value) == {"tool_calls"}:
        items = value["tool_calls"] if isinstance(value["tool_calls"], list) else []
    else:
        items = [value]
    calls = [_call(item, known_tools) for item in items]
    if not calls or any(c is None for c in calls):
        return None
    return [c for c in calls if c is not None]


def _call(item: Any, known_tools: Collection[str]) -> tuple[str, dict[str, Any]] | None:
    if not isinstance(item, dict):
        return None
    function = item.get("function")
    if isinstance(function, dict):
        if set(item) - _IGNORED_KEYS - {"function"}:
            return None
        item = function
    name_keys = [k for k in _NAME_KEYS if isinstance(item.get(k), str)]
    args_keys = [k for k in _ARGS_KEYS if k in item]
    if len(name_keys) != 1 or len(args_keys) > 1:
        return None
    if set(item) - _IGNORED_KEYS - {*name_keys, *args_keys}:
        return None
    name = item[name_keys[0]]
    if name not in known_tools:
        return None
    args = item[args_keys[0]] if args_keys else {}
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return None
    if args is None:
        args = {}
    return (name, args) if isinstance(args, dict) else None
