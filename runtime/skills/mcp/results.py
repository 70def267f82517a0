"""What a tool result becomes: MCP content converted to result parts, then bounded.

Results are cut here, at the source, because every later copy (``resolveToolResults``, each
checkpoint, the next prompts) repeats them. A result hands the model at most ``maxResultChars``
characters of text and ``maxResultBinaryBytes`` of images and files, plus a note saying what was
left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runtime.config.schema import (
    DEFAULT_MAX_RESULT_BINARY_BYTES,
    DEFAULT_MAX_RESULT_CHARS,
    DEFAULT_MAX_STDERR_BYTES,
    DEFAULT_MAX_STDERR_MESSAGE_BYTES,
)
from runtime.schema.messages import FileInlinePart, ImageInlinePart, TextPart
from runtime.skills.mcp.context import McpSkillConfig
from runtime.skills.types import ResultPart, ToolOutcome

if TYPE_CHECKING:
    import mcp_types as types

__all__ = ["OutputLimits", "convert_result", "limit_result"]


_MAX_RESULT_PARTS = 1000
"""Content parts of one tool result that reach the model (each costs storage, even if tiny)."""

_MAX_NOTE_MIME_TYPES = 5
"""Media types named in the note about omitted binary parts."""

_MAX_MIME_TYPE_CHARS = 255
"""Longest media type accepted on an image or file part (RFC 6838 allows 127 + 1 + 127)."""


def convert_result(
    tool_name: str, args: Mapping[str, Any], result: types.CallToolResult
) -> ToolOutcome:
    """Turn an MCP tool result into our tool outcome (§5.9, §18.4).

    ``text`` becomes a text part (empty text: "Error: No content"); ``image`` an inline image;
    an embedded ``resource`` a text part when it has text, else an inline file from its blob.
    ``audio`` and ``resource_link`` blocks are dropped (no model input for them). A result with
    no usable content says so, naming the tool and its arguments; when the server sent only
    ``structuredContent``, that JSON is used instead. MCP ``isError`` is kept (Perstack drops it).

    Args:
        tool_name: The tool that was called.
        args: The arguments it was called with.
        result: What the server returned.

    Returns:
        The outcome for the loop.
    """
    import mcp_types as types

    parts: list[ResultPart] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(TextPart(text=block.text or "Error: No content"))
        elif isinstance(block, types.ImageContent):
            if block.data and block.mime_type:
                parts.append(ImageInlinePart(encoded_data=block.data, mime_type=block.mime_type))
        elif isinstance(block, types.EmbeddedResource):
            resource = block.resource
            if isinstance(resource, types.TextResourceContents):
                parts.append(TextPart(text=resource.text or "Error: No content"))
            elif resource.blob and resource.mime_type:
                parts.append(
                    FileInlinePart(encoded_data=resource.blob, mime_type=resource.mime_type)
                )
    if not parts and result.structured_content is not None:
        parts.append(TextPart(text=json.dumps(result.structured_content, ensure_ascii=False)))
    if not parts:
        shown = json.dumps(dict(args), separators=(",", ":"), ensure_ascii=False)
        parts.append(TextPart(text=f"Tool {tool_name} returned nothing with arguments: {shown}"))
    return ToolOutcome(contents=parts, is_error=bool(result.is_error))


@dataclass(frozen=True)
class OutputLimits:
    """How much of one MCP skill's output reaches the model and the job's storage.

    Attributes:
        result_chars: Characters of text in one tool result (``maxResultChars``).
        result_binary_bytes: Decoded bytes of images and embedded files in one tool result
            (``maxResultBinaryBytes``).
        stderr_bytes: Bytes of the server's stderr stored as ``skillStderr`` events while the
            skill is open, i.e. per run segment (``maxStderrBytes``).
        stderr_message_bytes: Bytes of one ``skillStderr`` event (``maxStderrMessageBytes``).
    """

    result_chars: int = DEFAULT_MAX_RESULT_CHARS
    result_binary_bytes: int = DEFAULT_MAX_RESULT_BINARY_BYTES
    stderr_bytes: int = DEFAULT_MAX_STDERR_BYTES
    stderr_message_bytes: int = DEFAULT_MAX_STDERR_MESSAGE_BYTES

    @classmethod
    def of(cls, config: McpSkillConfig) -> OutputLimits:
        """The limits a skill's table sets, with the defaults for the keys it leaves out."""

        def chosen(value: int | None, default: int) -> int:
            return default if value is None else value

        return cls(
            result_chars=chosen(config.max_result_chars, DEFAULT_MAX_RESULT_CHARS),
            result_binary_bytes=chosen(
                config.max_result_binary_bytes, DEFAULT_MAX_RESULT_BINARY_BYTES
            ),
            stderr_bytes=chosen(
                getattr(config, "max_stderr_bytes", None), DEFAULT_MAX_STDERR_BYTES
            ),
            stderr_message_bytes=chosen(
                getattr(config, "max_stderr_message_bytes", None), DEFAULT_MAX_STDERR_MESSAGE_BYTES
            ),
        )


def _binary_size(part: ImageInlinePart | FileInlinePart) -> int:
    """Decoded size of the base64 payload."""
    data = part.encoded_data
    return len(data) * 3 // 4 - data[-2:].count("=")


def _plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def limit_result(outcome: ToolOutcome, limits: OutputLimits, skill_name: str) -> ToolOutcome:
    """Bound one tool result before anything stores it or shows it to the model.

    Text parts are kept in order until ``limits.result_chars`` characters, the part that
    crosses the limit is cut there, and later text is dropped. Images and embedded files are
    kept whole while they fit in ``limits.result_binary_bytes`` (a partial image is useless)
    and dropped otherwise. At most 1,000 parts are kept. When anything was left out, a last
    text part says what, and which key of the skill's table raises the limit, e.g. ``[truncated:
    20,000,000 characters, showing the first 100,000; raise maxResultChars on skill "files" to
    see more]``.

    Args:
        outcome: The converted result (or an error outcome carrying the server's message).
        limits: The skill's limits.
        skill_name: The skill, named in the note.

    Returns:
        ``outcome`` itself when it is within the limits, else the bounded outcome.
    """
    chars_left = limits.result_chars
    bytes_left = limits.result_binary_bytes
    total_chars = 0
    kept: list[ResultPart] = []
    omitted_types: list[str] = []
    omitted_bytes = 0
    extra_parts = 0
    for part in outcome.contents:
        if isinstance(part, TextPart):
            total_chars += len(part.text)
            if chars_left == 0:
                continue
            if len(kept) >= _MAX_RESULT_PARTS:
                extra_parts += 1
                continue
            if len(part.text) > chars_left:
                part = part.model_copy(update={"text": part.text[:chars_left]})
            chars_left -= len(part.text)
            kept.append(part)
            continue
        size = _binary_size(part)
        # A media type is a short name (RFC 6838); a longer one would be stored as sent.
        if size > bytes_left or len(part.mime_type) > _MAX_MIME_TYPE_CHARS:
            omitted_types.append(part.mime_type[:_MAX_MIME_TYPE_CHARS])
            omitted_bytes += size
            continue
        if len(kept) >= _MAX_RESULT_PARTS:
            extra_parts += 1
            continue
        bytes_left -= size
        kept.append(part)
    notes: list[str] = []
    if total_chars > limits.result_chars:
        notes.append(
            f"[truncated: {total_chars:,} characters, showing the first "
            f"{limits.result_chars - chars_left:,}; raise maxResultChars on skill "
            f'"{skill_name}" to see more]'
        )
    if omitted_types:
        kinds = sorted(set(omitted_types))
        named = ", ".join(kinds[:_MAX_NOTE_MIME_TYPES]) + (
            ", ..." if len(kinds) > _MAX_NOTE_MIME_TYPES else ""
        )
        count = _plural(len(omitted_types), "image or file", "images or files")
        notes.append(
            f"[omitted: {count} ({named}, {omitted_bytes:,} bytes), over the limit of "
            f"{limits.result_binary_bytes:,} bytes of images and files per result; raise "
            f'maxResultBinaryBytes on skill "{skill_name}" to receive them]'
        )
    if extra_parts:
        notes.append(
            f"[omitted: {_plural(extra_parts, 'more content part', 'more content parts')}; "
            f"at most {_MAX_RESULT_PARTS:,} parts of a result are shown]"
        )
    if not notes:
        return outcome
    return ToolOutcome(contents=[*kept, TextPart(text="\n".join(notes))], is_error=outcome.is_error)
