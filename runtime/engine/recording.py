"""Recording every model call of a job, and the request fingerprint a replay matches on.

The fingerprint of a request is what stays the same when nothing that matters changed: the
messages without their random ids, with the workspace path and the date of the system prompt's
environment tail written as placeholders (an eval case runs in a new scratch folder, a replay on
another day), and the tools offered. Everything else (an instruction, a query, a tool result,
a delegate's answer, a tool's schema) is in it, so a change anywhere shows as a different hash.

Each message is hashed once per job (a conversation of 1,400 steps is not re-hashed 1,400 times):
messages are immutable and their ids are unique, so the hash is cached by id.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.engine.prompt import expert_sections
from runtime.engine.secrets import Redactor
from runtime.jobs.recording import (
    MAX_RECORDING_BYTES,
    PREVIEW_CHARS,
    MessagePreview,
    ModelCall,
    RecordedAnswer,
    RecordedToolCall,
    RecordingCut,
)
from runtime.llm import GenerationRequest, ToolSpec
from runtime.schema.messages import Message

if TYPE_CHECKING:
    from runtime.jobs.store import Storage

WORKSPACE_PLACEHOLDER = "$WORKSPACE"
_DATE = re.compile(r"Current date: \d{4}-\d{2}-\d{2} \(UTC\)")
_DATE_PLACEHOLDER = "Current date: $DATE (UTC)"
# Ids are random per run: two runs of the same conversation never share them.
_LEFT_OUT = frozenset({"id"})
_CUT_LINE_BYTES = 64


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_ids(item) for key, item in value.items() if key not in _LEFT_OUT}
    if isinstance(value, list):
        return [_without_ids(item) for item in value]
    return value


@dataclass(frozen=True)
class Fingerprint:
    """What a replay matches a request on."""

    request_hash: str
    message_hashes: list[str]
    tools_hash: str
    tool_names: list[str]


@dataclass
class Fingerprinter:
    """Hashes requests of one job (caching each message's hash by its id)."""

    workspace: Path
    _messages: dict[str, str] = field(default_factory=dict)
    _tools: dict[tuple[str, ...], str] = field(default_factory=dict)
    _prefixes: dict[str, Any] = field(default_factory=dict)
    """Message id → the request hash's state after the conversation up to that message: a
    conversation only grows, so each call hashes only what is new since the last."""
    _last: tuple[GenerationRequest, str, Fingerprint] | None = None
    """The latest request fingerprinted: a replay's model and the recorder ask about the same."""

    def _canonical(self, data: Any) -> str:
        text = json.dumps(_without_ids(data), sort_keys=True, ensure_ascii=False)
        workspace = json.dumps(str(self.workspace), ensure_ascii=False)[1:-1]
        if workspace:
            text = text.replace(workspace, WORKSPACE_PLACEHOLDER)
        return _DATE.sub(_DATE_PLACEHOLDER, text)

    def message_hash(self, message: Message) -> str:
        """The hash of one message's content."""
        known = self._messages.get(message.id)
        if known is None:
            known = _digest(self._canonical(message.model_dump(mode="json", by_alias=True)))
            self._messages[message.id] = known
        return known

    def tools_hash(self, tools: Sequence[ToolSpec]) -> str:
        """The hash of the tools offered (names, descriptions and schemas)."""
        names = tuple(tool.name for tool in tools)
        known = self._tools.get(names)
        if known is None:
            known = _digest(
                self._canonical(
                    [[tool.name, tool.description, tool.input_schema] for tool in tools]
                )
            )
            self._tools[names] = known
        return known

    def fingerprint(self, request: GenerationRequest, model: str) -> Fingerprint:
        """The fingerprint of ``request`` to ``model``."""
        if self._last is not None and self._last[0] is request and self._last[1] == model:
            return self._last[2]
        messages = request.messages
        hashes = [self.message_hash(message) for message in messages]
        tools = self.tools_hash(request.tools)
        start = len(messages)
        while start > 0 and messages[start - 1].id not in self._prefixes:
            start -= 1
        state = self._prefixes[messages[start - 1].id].copy() if start else hashlib.sha256()
        for message, digest in zip(messages[start:], hashes[start:], strict=True):
            state.update(f"{digest}\n".encode())
            self._prefixes[message.id] = state.copy()
        state.update(f"{model}\n{tools}".encode())
        fingerprint = Fingerprint(
            request_hash=state.hexdigest()[:24],
            message_hashes=hashes,
            tools_hash=tools,
            tool_names=[tool.name for tool in request.tools],
        )
        self._last = (request, model, fingerprint)
        return fingerprint

    def preview(self, message: Message, index: int) -> MessagePreview:
        """The start of ``message`` as a divergence report shows it."""
        return MessagePreview(
            index=index, type=message.type, text=preview_text(message, self.workspace)
        )


def preview_text(message: Message, workspace: Path) -> str:
    """A one-line start of a message's content (text, tool calls or tool results)."""
    pieces: list[str] = []
    for part in message.contents:
        data = part.model_dump(mode="json", by_alias=True)
        kind = data.get("type")
        if kind == "textPart":
            text = str(data.get("text", ""))
            pieces.append(expert_sections(text) if message.type == "instructionMessage" else text)
        elif kind == "toolCallPart":
            args = json.dumps(data.get("args"), ensure_ascii=False, sort_keys=True)
            pieces.append(f"{data.get('toolName')}({args})")
        elif kind == "toolResultPart":
            texts = [str(c.get("text", "")) for c in data.get("contents", []) if "text" in c]
            pieces.append(f"{data.get('toolName')} → {' '.join(texts)}")
        elif kind == "thinkingPart":
            continue
        else:
            pieces.append(f"[{kind}]")
    text = " | ".join(pieces).replace(str(workspace), WORKSPACE_PLACEHOLDER)
    text = _DATE.sub(_DATE_PLACEHOLDER, " ".join(text.split()))
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def preview_indexes(count: int) -> list[int]:
    """Which messages of a request of ``count`` messages a recording previews.

    The first (the system prompt: an instruction changed) and the last two (a query, a tool
    result or a delegate's answer changed): where replays diverge, at a bounded cost per call.
    """
    return sorted({index for index in (0, count - 2, count - 1) if 0 <= index < count})


@dataclass
class Recorder:
    """Appends each finished model call of a job to its recording (see runtime.jobs.recording)."""

    storage: Storage
    job_id: str
    fingerprints: Fingerprinter
    redactor: Redactor
    _size: int = -1
    _seq: int = -1
    _cut: bool = False
    _last_of_run: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    """Run id → the seq and message hashes of its latest recorded call."""

    def record(
        self,
        *,
        expert_key: str,
        run_id: str,
        step_number: int,
        model: str,
        context_window: int | None,
        request: GenerationRequest,
        answer: RecordedAnswer,
    ) -> None:
        """Append one call (past the size cap, the line that says the recording was cut).

        Raises:
            StorageError: the recording cannot be written.
        """
        if self._cut:
            return
        if self._size < 0:
            self._size = self.storage.recording_size(self.job_id)
            self._seq = _lines_in(self.storage, self.job_id)
        print_ = self.fingerprints.fingerprint(request, model)
        redacted = self._redact(answer)
        hashes, prefix = print_.message_hashes, None
        last = self._last_of_run.get(run_id)
        if last is not None and hashes[: len(last[1])] == last[1]:
            prefix = last[0]
            hashes = hashes[len(last[1]) :]
        call = ModelCall(
            seq=self._seq,
            expert_key=expert_key,
            run_id=run_id,
            step_number=step_number,
            model=model,
            request_hash=print_.request_hash,
            message_count=len(print_.message_hashes),
            message_hashes=hashes,
            prefix_seq=prefix,
            tools_hash=print_.tools_hash,
            tool_names=print_.tool_names,
            with_tools=bool(request.tools),
            context_window=context_window,
            previews=[
                self.fingerprints.preview(request.messages[index], index)
                for index in preview_indexes(len(request.messages))
            ],
            answer=redacted,
            redacted=redacted != answer,
        )
        line = call.to_json()
        # Room is kept for the line that says the recording was cut.
        if self._size + len(line.encode("utf-8")) + 1 + _CUT_LINE_BYTES > MAX_RECORDING_BYTES:
            self._cut = True
            line = RecordingCut(after_seq=self._seq - 1).to_json()
        self.storage.append_recording(self.job_id, line)
        if not self._cut:
            self._last_of_run[run_id] = (self._seq, print_.message_hashes)
        self._size += len(line.encode("utf-8")) + 1
        self._seq += 1

    def _redact(self, answer: RecordedAnswer) -> RecordedAnswer:
        if not self.redactor:
            return answer
        redact = self.redactor.redact
        return answer.model_copy(
            update={
                "text": redact(answer.text),
                "reasoning": redact(answer.reasoning),
                "tool_calls": [
                    call.model_copy(update={"arguments": redact(call.arguments)})
                    for call in answer.tool_calls
                ],
            }
        )


def _lines_in(storage: Storage, job_id: str) -> int:
    # A continued job appends to its recording: its calls number on from the earlier runs'.
    from runtime.jobs.recording import read_recording

    calls, _ = read_recording(storage.job_dir(job_id))
    return calls[-1].seq + 1 if calls else 0


def recorded_answer(
    *,
    text: str,
    reasoning: str,
    signature: str | None,
    tool_calls: Sequence[Any],
    usage: Any,
    finish_reason: str,
) -> RecordedAnswer:
    """The recording of one generation's answer."""
    return RecordedAnswer(
        text=text,
        reasoning=reasoning,
        reasoning_signature=signature,
        tool_calls=[
            RecordedToolCall(id=call.id, name=call.name, arguments=call.arguments)
            for call in tool_calls
        ],
        usage=usage,
        finish_reason=finish_reason,
    )
