"""Our messages and tools in the wire shapes of the two APIs we speak natively.

OpenAI chat-completions messages (§5.9 of the reference) serve litellm and every OpenAI-compatible
server; Anthropic Messages API requests serve the native Anthropic client. One module owns both so
that images, files, thinking blocks and cache marks are mapped the same way on every path.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Sequence
from typing import Any

from runtime.llm import ToolSpec
from runtime.schema.messages import (
    ExpertMessage,
    FileBinaryPart,
    FileInlinePart,
    FileUrlPart,
    ImageBinaryPart,
    ImageInlinePart,
    ImageUrlPart,
    InstructionMessage,
    Message,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolMessage,
    UserMessage,
    UserPart,
)

__all__ = ["to_anthropic_request", "to_openai_messages", "to_openai_tools"]


# OpenAI chat completions ------------------------------------------------------------------------

_ANTHROPIC_STYLE = ("anthropic", "bedrock", "vertex_ai")
"""litellm providers that may serve Claude, whose thinking blocks and cache marks we pass on."""


def _is_claude(provider: str, model: str) -> bool:
    return provider == "anthropic" or (provider in _ANTHROPIC_STYLE and "claude" in model.lower())


def _data_url(mime_type: str, data: str) -> str:
    return f"data:{mime_type};base64,{data}"


def _file_block(
    part_id: str, mime_type: str, *, data: str | None = None, url: str | None = None
) -> dict[str, Any]:
    ext = mimetypes.guess_extension(mime_type) or ""
    file: dict[str, Any] = {"filename": f"{part_id}{ext}", "format": mime_type}
    if data is not None:
        file["file_data"] = _data_url(mime_type, data)
    else:
        file["file_id"] = url
    return {"type": "file", "file": file}


def _user_block(
    part: UserPart,
) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImageUrlPart):
        return {"type": "image_url", "image_url": {"url": part.url}}
    if isinstance(part, ImageInlinePart):
        return {
            "type": "image_url",
            "image_url": {"url": _data_url(part.mime_type, part.encoded_data)},
        }
    if isinstance(part, ImageBinaryPart):
        return {"type": "image_url", "image_url": {"url": _data_url(part.mime_type, part.data)}}
    if isinstance(part, FileInlinePart):
        return _file_block(part.id, part.mime_type, data=part.encoded_data)
    if isinstance(part, FileBinaryPart):
        return _file_block(part.id, part.mime_type, data=part.data)
    return _file_block(part.id, part.mime_type, url=part.url)


def _mark_cached(message: dict[str, Any]) -> None:
    # Anthropic prompt caching: the mark goes on the last content block (litellm also reads a
    # message-level mark for plain-string content).
    mark = {"type": "ephemeral"}
    content = message.get("content")
    if isinstance(content, list) and content:
        content[-1]["cache_control"] = mark
    else:
        message["cache_control"] = mark


def _assistant(message: ExpertMessage, claude: bool) -> dict[str, Any]:
    texts = [p.text for p in message.contents if isinstance(p, TextPart)]
    calls = [p for p in message.contents if isinstance(p, ToolCallPart)]
    out: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts) if texts else None}
    if calls:
        out["tool_calls"] = [
            {
                "id": c.tool_call_id,
                "type": "function",
                "function": {"name": c.tool_name, "arguments": json.dumps(c.args)},
            }
            for c in calls
        ]
    elif out["content"] is None:
        out["content"] = ""
    if claude:
        # Extended thinking continues across tool calls only if the signed blocks come back;
        # unsigned thinking cannot be replayed, and other providers take none.
        blocks = [
            {"type": "thinking", "thinking": p.thinking, "signature": p.signature}
            for p in message.contents
            if isinstance(p, ThinkingPart) and p.signature
        ]
        if blocks:
            out["thinking_blocks"] = blocks
    return out


def _tool_messages(message: ToolMessage) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    media: list[dict[str, Any]] = []
    for result in message.contents:
        texts = [c.text for c in result.contents if isinstance(c, TextPart)]
        attachments = [c for c in result.contents if not isinstance(c, TextPart)]
        content = "\n".join(texts)
        if attachments:
            note = f"[{len(attachments)} attachment(s) follow in the next user message]"
            content = f"{content}\n{note}" if content else note
            media.append(
                {
                    "type": "text",
                    "text": f"Attachments returned by tool {result.tool_name!r} "
                    f"(call {result.tool_call_id}):",
                }
            )
            media.extend(_user_block(a) for a in attachments)
        out.append({"role": "tool", "tool_call_id": result.tool_call_id, "content": content})
    if media:
        # OpenAI tool messages carry text only, and every tool message must directly follow the
        # assistant message that called it: images and files go in one user message after them.
        out.append({"role": "user", "content": media})
    return out


def to_openai_messages(
    messages: Sequence[Message], *, provider: str = "openai", model: str = ""
) -> list[dict[str, Any]]:
    """Convert a conversation to OpenAI chat-completions messages, as litellm takes them.

    Args:
        messages: The conversation.
        provider: The litellm provider (prefix of the litellm model); Claude-serving providers get
            signed thinking blocks and prompt-cache marks.
        model: The litellm model, to tell Claude on Bedrock/Vertex from other models there.

    Returns:
        One or more chat messages per message: a tool message becomes one ``tool`` message per
        result, plus a ``user`` message carrying any images or files the tools returned.
    """
    claude = _is_claude(provider, model)
    out: list[dict[str, Any]] = []
    for message in messages:
        converted: list[dict[str, Any]]
        if isinstance(message, InstructionMessage):
            converted = [{"role": "system", "content": "\n".join(p.text for p in message.contents)}]
        elif isinstance(message, UserMessage):
            parts = message.contents
            if len(parts) == 1 and isinstance(parts[0], TextPart):
                converted = [{"role": "user", "content": parts[0].text}]
            else:
                converted = [{"role": "user", "content": [_user_block(p) for p in parts]}]
        elif isinstance(message, ExpertMessage):
            converted = [_assistant(message, claude)]
        else:
            converted = _tool_messages(message)
        if message.cache and claude and converted:
            _mark_cached(converted[-1])
        out.extend(converted)
    return out


def to_openai_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Convert tool specs to OpenAI function tools."""
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": t.input_schema,
            },
        }
        for t in tools
    ]


# Anthropic Messages API ---------------------------------------------------------------------------

_EPHEMERAL = {"type": "ephemeral"}


def _anthropic_source(mime_type: str, *, data: str | None = None, url: str | None = None) -> Any:
    if data is not None:
        return {"type": "base64", "media_type": mime_type, "data": data}
    return {"type": "url", "url": url}


def _anthropic_block(
    part: UserPart,
) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImageUrlPart):
        return {"type": "image", "source": _anthropic_source(part.mime_type, url=part.url)}
    if isinstance(part, ImageInlinePart | ImageBinaryPart):
        data = part.encoded_data if isinstance(part, ImageInlinePart) else part.data
        return {"type": "image", "source": _anthropic_source(part.mime_type, data=data)}
    if isinstance(part, FileUrlPart):
        return {"type": "document", "source": _anthropic_source(part.mime_type, url=part.url)}
    data = part.encoded_data if isinstance(part, FileInlinePart) else part.data
    if part.mime_type.startswith("text/"):
        # Anthropic takes plain-text documents as text, not base64.
        import base64

        text = base64.b64decode(data).decode("utf-8", errors="replace")
        source = {"type": "text", "media_type": "text/plain", "data": text}
        return {"type": "document", "source": source}
    return {"type": "document", "source": _anthropic_source(part.mime_type, data=data)}


def _anthropic_assistant(message: ExpertMessage) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in message.contents:
        if isinstance(part, ThinkingPart):
            # Unsigned thinking (another provider's, or cut off) cannot be sent back.
            if part.signature:
                blocks.append(
                    {"type": "thinking", "thinking": part.thinking, "signature": part.signature}
                )
        elif isinstance(part, TextPart):
            if part.text:
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ToolCallPart):
            blocks.append(
                {
                    "type": "tool_use",
                    "id": part.tool_call_id,
                    "name": part.tool_name,
                    "input": part.args,
                }
            )
    return blocks


def _anthropic_tool_results(message: ToolMessage) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for result in message.contents:
        content = [_anthropic_block(c) for c in result.contents]
        block: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": result.tool_call_id,
            "content": content or [{"type": "text", "text": ""}],
        }
        if result.is_error:
            block["is_error"] = True
        blocks.append(block)
    return blocks


def to_anthropic_request(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """The ``system``, ``messages`` and ``tools`` of an Anthropic Messages API request.

    Prompt caching: Anthropic caches the request's prefix in the order tools, system, messages,
    up to each block marked ``cache_control`` (at most four marks). We mark the end of the stable
    part of the system prompt (an instruction message of several parts keeps its last part, the
    run's volatile tail, out of the mark), every message the loop flagged ``cache``, and the last
    message, so each step re-reads the conversation so far from the cache.

    Consecutive messages of the same role are merged (tool results first in a user turn), as the
    API expects a user/assistant alternation.
    """
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    marks = 0

    def add(role: str, blocks: list[dict[str, Any]], cache: bool) -> None:
        nonlocal marks
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            previous = turns[-1]["content"]
            if role == "user" and blocks[0]["type"] == "tool_result":
                # tool_result blocks must open the user turn that answers the tool calls.
                turns[-1]["content"] = [*blocks, *previous]
            else:
                previous.extend(blocks)
        else:
            turns.append({"role": role, "content": list(blocks)})
        if cache and marks < 2:
            blocks[-1]["cache_control"] = dict(_EPHEMERAL)
            marks += 1

    for message in messages:
        if isinstance(message, InstructionMessage):
            parts: list[dict[str, Any]] = [
                {"type": "text", "text": p.text} for p in message.contents if p.text
            ]
            if parts:
                stable = parts[-2] if len(parts) > 1 else parts[-1]
                stable["cache_control"] = dict(_EPHEMERAL)
                system.extend(parts)
        elif isinstance(message, UserMessage):
            add("user", [_anthropic_block(p) for p in message.contents], bool(message.cache))
        elif isinstance(message, ExpertMessage):
            add("assistant", _anthropic_assistant(message), bool(message.cache))
        else:
            add("user", _anthropic_tool_results(message), bool(message.cache))
    if turns:
        last = turns[-1]["content"][-1]
        if "cache_control" not in last and last.get("type") not in ("thinking",):
            last["cache_control"] = dict(_EPHEMERAL)
    request: dict[str, Any] = {"messages": turns}
    if system:
        request["system"] = system
    if tools:
        request["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in tools
        ]
    return request
