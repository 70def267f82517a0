"""Conversation messages and their parts, in Perstack's wire shape (§4.4 of the reference).

This is the only module that knows the shape of a message. Converters to a provider's format live
with the model implementation.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from runtime.schema.base import WireModel
from runtime.schema.ids import new_id


class _Part(WireModel):
    id: str = Field(default_factory=new_id)
    """Unique id of this part."""


class TextPart(_Part):
    """Plain text."""

    type: Literal["textPart"] = "textPart"
    text: str


class ImageUrlPart(_Part):
    """An image referenced by URL."""

    type: Literal["imageUrlPart"] = "imageUrlPart"
    url: str
    mime_type: str


class ImageInlinePart(_Part):
    """An image carried inline as base64."""

    type: Literal["imageInlinePart"] = "imageInlinePart"
    encoded_data: str
    """Base64-encoded bytes."""
    mime_type: str


class ImageBinaryPart(_Part):
    """An image carried as (base64) binary data."""

    type: Literal["imageBinaryPart"] = "imageBinaryPart"
    data: str
    mime_type: str


class FileUrlPart(_Part):
    """A file referenced by URL."""

    type: Literal["fileUrlPart"] = "fileUrlPart"
    url: str
    mime_type: str


class FileInlinePart(_Part):
    """A file (e.g. a PDF) carried inline as base64."""

    type: Literal["fileInlinePart"] = "fileInlinePart"
    encoded_data: str
    mime_type: str


class FileBinaryPart(_Part):
    """A file carried as (base64) binary data."""

    type: Literal["fileBinaryPart"] = "fileBinaryPart"
    data: str
    mime_type: str


class ToolCallPart(_Part):
    """A tool call requested by the model."""

    type: Literal["toolCallPart"] = "toolCallPart"
    tool_call_id: str
    tool_name: str
    args: dict[str, Any]


class ThinkingPart(_Part):
    """Reasoning text the provider returned, kept so extended thinking can continue."""

    type: Literal["thinkingPart"] = "thinkingPart"
    thinking: str
    signature: str | None = None
    """Provider signature (Anthropic) needed to send the thinking back."""


ToolResultContent = Annotated[
    TextPart | ImageInlinePart | FileInlinePart, Field(discriminator="type")
]
"""What a tool result may contain when it reaches the model."""


class ToolResultPart(_Part):
    """The result of one tool call, as sent back to the model."""

    type: Literal["toolResultPart"] = "toolResultPart"
    tool_call_id: str
    tool_name: str
    contents: list[ToolResultContent]
    is_error: bool | None = None
    """True when the call failed; the model sees the error text and can react."""


MessagePart = Annotated[
    TextPart
    | ImageUrlPart
    | ImageInlinePart
    | ImageBinaryPart
    | FileUrlPart
    | FileInlinePart
    | FileBinaryPart
    | ToolCallPart
    | ThinkingPart
    | ToolResultPart,
    Field(discriminator="type"),
]
"""Any part of any message."""

UserPart = Annotated[
    TextPart
    | ImageUrlPart
    | ImageInlinePart
    | ImageBinaryPart
    | FileUrlPart
    | FileInlinePart
    | FileBinaryPart,
    Field(discriminator="type"),
]
ExpertPart = Annotated[TextPart | ToolCallPart | ThinkingPart, Field(discriminator="type")]


class _Message(WireModel):
    id: str = Field(default_factory=new_id)
    cache: bool | None = None
    """Ask the provider to cache the prefix up to this message (Anthropic prompt caching)."""


class InstructionMessage(_Message):
    """The system prompt of a run."""

    type: Literal["instructionMessage"] = "instructionMessage"
    contents: list[TextPart]


class UserMessage(_Message):
    """A user query, or a retry notice the runtime adds for the model."""

    type: Literal["userMessage"] = "userMessage"
    contents: list[UserPart]


class ExpertMessage(_Message):
    """What the model said: thinking, text and tool calls."""

    type: Literal["expertMessage"] = "expertMessage"
    contents: list[ExpertPart]


class ToolMessage(_Message):
    """The results of the tool calls of the previous expert message."""

    type: Literal["toolMessage"] = "toolMessage"
    contents: list[ToolResultPart]


Message = Annotated[
    InstructionMessage | UserMessage | ExpertMessage | ToolMessage, Field(discriminator="type")
]
"""Any message of a conversation."""

MESSAGES_ADAPTER: TypeAdapter[list[Message]] = TypeAdapter(list[Message])


def first_text(message: Message) -> str | None:
    """The text of the first text part of ``message``, or None when it has none."""
    for part in message.contents:
        if isinstance(part, TextPart):
            return part.text
    return None
