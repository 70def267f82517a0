"""Answering a run's model calls from another job's recording (``perstack replay``).

:class:`ReplayModel` is a :class:`~runtime.llm.LanguageModel`: each request is fingerprinted
(:mod:`runtime.engine.recording`) and answered with the recorded answer of the same fingerprint,
with no network. Matching is by content, never by order or timing, so parallel delegates that
finish in another order than they did still find their answers; two identical requests take the
recorded answers in the order they were recorded.

The first request the recording cannot answer is a *divergence*. :class:`Divergence` says where
(whose call, at which step) and why (the message that differs, with the recorded and the new
start of it; a changed model; tools added or removed). Without a live model the call fails
(``ReplayDiverged``, not retried) and every later unmatched call fails with the same first
report, so a coordinator whose delegate diverged reports the delegate's cause. With a live model
(``--live``), that call and every later one the recording does not answer go to it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from runtime.engine.context import CURRENT_GENERATION
from runtime.engine.recording import Fingerprint, Fingerprinter, preview_text
from runtime.errors import ModelError
from runtime.jobs.recording import ModelCall, all_message_hashes
from runtime.llm import (
    Finish,
    GenerationRequest,
    LanguageModel,
    ModelChunk,
    ReasoningDelta,
    TextDelta,
    ToolCallChunk,
)

logger = logging.getLogger("runtime")

REPLAY_DIVERGED = "ReplayDiverged"
"""The error name of a model call a replay could not answer."""


@dataclass(frozen=True)
class Divergence:
    """The first model call of a replay that its recording did not answer."""

    job_id: str
    """The job whose recording was replayed."""
    expert_key: str
    step_number: int
    reason: str
    """One line: what differs."""
    details: tuple[str, ...] = ()
    """Further lines: the recorded and the new start of the message that differs."""

    def summary(self) -> str:
        """One line for an event or a status bar."""
        return (
            f"replay of job {self.job_id} diverged at {self.expert_key}'s model call "
            f"(step {self.step_number}): {self.reason}"
        )

    def report(self) -> str:
        """The whole report, one line per fact."""
        return "\n".join([self.summary(), *(f"  {line}" for line in self.details)])


@dataclass
class ReplayModel:
    """A model that answers from a recording, then (optionally) from a live model.

    Args:
        calls: The recorded calls of the job being replayed (:func:`read_recording`).
        job_id: That job's id (for reports).
        model_name: The model the run is configured with (part of the fingerprint: a changed
            model is a divergence).
        fingerprints: The run's fingerprinter (shared with its recorder, so each message is
            hashed once).
        live: Makes the model to go on with after a divergence; None stops there instead.
        cut: The recording was cut at its size cap (said in reports of calls past it).
    """

    calls: Sequence[ModelCall]
    job_id: str
    model_name: str
    fingerprints: Fingerprinter
    live: Callable[[], LanguageModel] | None = None
    cut: bool = False
    answered: int = 0
    """Calls answered from the recording."""
    live_calls: int = 0
    """Calls sent to the live model."""
    divergence: Divergence | None = None
    _by_hash: dict[str, deque[ModelCall]] = field(default_factory=dict)
    _used: set[int] = field(default_factory=set)
    _window: int | None = None
    _live_model: LanguageModel | None = None

    def __post_init__(self) -> None:
        for call in self.calls:
            self._by_hash.setdefault(call.request_hash, deque()).append(call)
        windows = [call.context_window for call in self.calls if call.context_window]
        self._window = windows[0] if windows else None

    def context_window(self) -> int | None:
        """The window the recorded model reported (the live model's once it has answered)."""
        if self._live_model is not None:
            return self._live_model.context_window()
        return self._window

    async def prepare(self) -> None:
        """Load the live model's client, once the replay has gone live."""
        prepare = getattr(self._live_model, "prepare", None)
        if prepare is not None:
            await prepare()

    async def aclose(self) -> None:
        """Close the live model's connections, if one was made."""
        aclose = getattr(self._live_model, "aclose", None)
        if aclose is not None:
            await aclose()

    async def stream(self, request: GenerationRequest) -> AsyncIterator[ModelChunk]:
        """Yield the recorded answer to ``request``, or the live model's after a divergence."""
        found = self._take(request)
        if found is not None:
            self.answered += 1
            for chunk in _chunks(found):
                yield chunk
            return
        assert self.divergence is not None
        if self.live is None:
            raise ModelError(self.divergence.report(), name=REPLAY_DIVERGED, retryable=False)
        if self._live_model is None:
            self._live_model = self.live()
            logger.warning("%s; going on with the live model", self.divergence.report())
            prepare = getattr(self._live_model, "prepare", None)
            if prepare is not None:
                await prepare()
        self.live_calls += 1
        async for chunk in self._live_model.stream(request):
            yield chunk

    def _take(self, request: GenerationRequest) -> ModelCall | None:
        # Without a live model, the first divergence ends the replay: later calls (a parent
        # whose delegate failed) report it rather than a cause of their own. With one, a call
        # that still matches (a parallel delegate the change did not touch) stays free.
        if self.divergence is not None and self.live is None:
            return None
        fingerprint = self.fingerprints.fingerprint(request, self.model_name)
        queue = self._by_hash.get(fingerprint.request_hash)
        if queue:
            call = queue.popleft()
            self._used.add(call.seq)
            return call
        if self.divergence is None:
            self.divergence = self._explain(fingerprint, request)
        return None

    def _explain(self, fingerprint: Fingerprint, request: GenerationRequest) -> Divergence:
        expert_key, _run_id, step = CURRENT_GENERATION.get() or ("?", "", 0)
        candidates = [
            call
            for call in self.calls
            if call.expert_key == expert_key and call.seq not in self._used
        ]

        def divergence(reason: str, *details: str) -> Divergence:
            return Divergence(self.job_id, expert_key, step, reason, tuple(details))

        if not candidates:
            ever = sum(call.expert_key == expert_key for call in self.calls)
            if self.cut:
                return divergence("the recording was cut at its size limit before this call")
            if not ever:
                return divergence(f"{expert_key} made no model call in the recorded job")
            return divergence(
                f"the recorded job has {ever} model call(s) of {expert_key}, all answered "
                "already: this run asks for more"
            )
        by_seq = {c.seq: c for c in self.calls}
        histories = {c.seq: all_message_hashes(c, by_seq) for c in candidates}
        call = max(candidates, key=lambda c: _common_prefix(histories[c.seq], fingerprint))
        if call.model != self.model_name:
            return divergence(f"the model changed: recorded {call.model}, now {self.model_name}")
        now, then = fingerprint.message_hashes, histories[call.seq]
        index = _common_prefix(then, fingerprint)
        if index < min(len(now), len(then)):
            message = request.messages[index]
            recorded = next((p for p in call.previews if p.index == index), None)
            return divergence(
                f"message {index + 1} of {len(now)} ({message.type}) differs from the recording",
                f"recorded: {recorded.text if recorded else '(not kept in the recording)'}",
                f"now:      {preview_text(message, self.fingerprints.workspace)}",
            )
        if len(now) != len(then):
            return divergence(
                f"the request has {len(now)} messages where the recording has {len(then)}"
            )
        added = sorted(set(fingerprint.tool_names) - set(call.tool_names))
        removed = sorted(set(call.tool_names) - set(fingerprint.tool_names))
        if added or removed:
            return divergence(
                "the tools offered changed: "
                + "; ".join(
                    part
                    for part in (
                        f"added {', '.join(added)}" if added else "",
                        f"removed {', '.join(removed)}" if removed else "",
                    )
                    if part
                )
            )
        return divergence("a tool's description or input schema changed")


def _common_prefix(recorded: Sequence[str], fingerprint: Fingerprint) -> int:
    count = 0
    for then, now in zip(recorded, fingerprint.message_hashes, strict=False):
        if then != now:
            break
        count += 1
    return count


def _chunks(call: ModelCall) -> list[ModelChunk]:
    answer = call.answer
    chunks: list[ModelChunk] = []
    if answer.reasoning:
        chunks.append(ReasoningDelta(answer.reasoning))
    if answer.text:
        chunks.append(TextDelta(answer.text))
    chunks.extend(ToolCallChunk(c.id, c.name, c.arguments) for c in answer.tool_calls)
    chunks.append(
        Finish(
            finish_reason=answer.finish_reason,  # type: ignore[arg-type]
            usage=answer.usage,
            reasoning_signature=answer.reasoning_signature,
        )
    )
    return chunks
