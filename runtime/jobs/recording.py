"""The model-call recording of a job: what each model call was asked and what it answered.

Stored beside the job's events as ``jobs/{jobId}/recording.jsonl``, one :class:`ModelCall` per
line, appended as each generation finishes (concurrent delegates append whole lines, as events
do). ``perstack replay`` answers a new run's model calls from it (:mod:`runtime.engine.replay`).

What a line keeps is bounded and secret-free:

- the request as hashes only (the whole request, each message new since the run's previous
  call, the tools), plus a short preview of the few messages a replay most often diverges on
  (the first, and the last two), so a divergence can be reported without keeping the
  conversation a second time;
- the answer in full (text, reasoning, tool calls, usage, finish reason), with the run's secret
  values redacted, as the events that carry the same answer are;
- at most :data:`MAX_RECORDING_BYTES` per job: past it, one last line says the recording was cut
  and later calls are not recorded (a replay runs live from there, or stops).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from runtime.schema.base import WireModel
from runtime.schema.checkpoint import Usage

RECORDING_FILE = "recording.jsonl"
RECORDING_VERSION = 1
MAX_RECORDING_BYTES = 64 * 1024 * 1024
"""A job's recording stops growing past this (the size events files are read up to)."""
PREVIEW_CHARS = 160
"""Characters kept of each previewed message (enough to say what differs, never the whole)."""


class RecordedToolCall(WireModel):
    """One tool call of a recorded answer."""

    id: str
    name: str
    arguments: str
    """The raw JSON text of the arguments, as the model sent it."""


class RecordedAnswer(WireModel):
    """What one model call answered."""

    text: str = ""
    reasoning: str = ""
    reasoning_signature: str | None = None
    tool_calls: list[RecordedToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    finish_reason: str = "stop"


class MessagePreview(WireModel):
    """The start of one message of a request, for divergence reports."""

    index: int
    type: str
    text: str


class ModelCall(WireModel):
    """One recorded model call."""

    v: int = RECORDING_VERSION
    seq: int
    """The call's position in the job's recording (0-based), in the order calls finished."""
    expert_key: str
    run_id: str
    step_number: int
    model: str
    request_hash: str
    """Hash of the request as a replay matches it: the messages (ids, the workspace path and the
    date in the system prompt left out) and the tools."""
    message_count: int
    message_hashes: list[str]
    """The hashes of the request's messages after the first ``message_count - len(...)``: those
    are the messages of call ``prefix_seq`` (the same run's previous call, whose conversation
    this one extends), or none when ``prefix_seq`` is None. Kept as a tail so a recording grows
    with the conversation, not with its square (:func:`all_message_hashes` puts it together)."""
    prefix_seq: int | None = None
    tools_hash: str
    tool_names: list[str]
    with_tools: bool = True
    context_window: int | None = None
    """The model's window as the run knew it (a replay reports the same occupancy)."""
    previews: list[MessagePreview] = Field(default_factory=list)
    answer: RecordedAnswer
    redacted: bool = False
    """A secret value was taken out of the answer: a replay of it will not match what follows."""


class RecordingCut(WireModel):
    """The last line of a recording that reached :data:`MAX_RECORDING_BYTES`."""

    v: int = RECORDING_VERSION
    cut: Literal[True] = True
    after_seq: int


def all_message_hashes(call: ModelCall, by_seq: dict[int, ModelCall]) -> list[str]:
    """Every message hash of a recorded call's request, following its ``prefix_seq`` chain."""
    tails: list[list[str]] = []
    current: ModelCall | None = call
    while current is not None:
        tails.append(current.message_hashes)
        current = by_seq.get(current.prefix_seq) if current.prefix_seq is not None else None
    hashes = [item for tail in reversed(tails) for item in tail]
    return hashes[-call.message_count :] if len(hashes) > call.message_count else hashes


def recording_path(job_dir: Path) -> Path:
    """Where a job's recording is stored."""
    return job_dir / RECORDING_FILE


def read_recording(job_dir: Path) -> tuple[list[ModelCall], bool]:
    """The recorded calls of a job, in recorded order, and whether the recording was cut.

    Unreadable lines (a torn last line after a crash, a line of a later version) are skipped:
    a replay then finds no answer for that call and says so.
    """
    calls: list[ModelCall] = []
    cut = False
    for data in _lines(recording_path(job_dir)):
        if data.get("cut"):
            cut = True
            continue
        try:
            calls.append(ModelCall.model_validate(data))
        except ValidationError:
            continue
    return calls, cut


def _lines(path: Path) -> Iterator[dict[str, object]]:
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except OSError:
        return
    with handle:
        for text in handle:
            try:
                data = json.loads(text)
            except ValueError:
                continue
            if isinstance(data, dict) and data.get("v") == RECORDING_VERSION:
                yield data
