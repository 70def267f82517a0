"""What ``perstack diff`` compares and finds: each job's steps and runs, and their pairs.

A :class:`JobDiff` holds the two jobs' delegation trees aligned into :class:`NodeDiff` pairs,
each with its aligned :class:`StepDiff` pairs and the :class:`Difference` found; ``to_dict`` of
each is its part of the ``--json`` document.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from runtime.jobs.api import JobSummary

JSON = dict[str, Any]
"""A JSON object, as ``--json`` writes it."""

FIELDS = ("end", "calls", "args", "result", "text", "error", "tokens", "cost")
"""What is compared for a pair of steps, in the order differences are listed."""

MARKS = {"same": "=", "changed": "≠", "onlyInA": "-", "onlyInB": "+"}
"""How a step or run pair is marked, by its ``state``: equal, different, only in A, only in B."""


@dataclass(frozen=True)
class CallView:
    """One tool call of a step.

    Attributes:
        id: The call id (differs between jobs; used only to find the call's result).
        tool_name: The tool (a delegate's name for a delegation).
        args: The arguments the model gave.
    """

    id: str
    tool_name: str
    args: JSON

    def to_dict(self) -> JSON:
        """The call in ``--json`` output."""
        return {"toolName": self.tool_name, "args": self.args}


@dataclass(frozen=True)
class ResultView:
    """One tool result of a step.

    Attributes:
        call_id: The call it answers.
        tool_name: The tool.
        text: Its text parts, joined (other parts are named, e.g. ``[imageInlinePart]``).
        failed: Whether it reports a failure (:func:`runtime.tool_result_failed`).
    """

    call_id: str
    tool_name: str
    text: str
    failed: bool

    def to_dict(self) -> JSON:
        """The result in ``--json`` output."""
        return {"toolName": self.tool_name, "text": self.text, "failed": self.failed}


@dataclass(frozen=True)
class StepView:
    """One step of one job, as compared.

    Attributes:
        number: The job-wide step number (as ``perstack log`` shows it).
        run_id: The run segment that made it.
        end: How it ended: ``continued``, ``completed``, ``delegated``, ``stopped by error``...
        calls: Its tool calls, in the order the model made them.
        results: Its tool results (a resumed step holds its delegates' results).
        text: What the expert wrote (its text parts; a completed run's final text).
        error: ``Name: message`` when the step stopped by an error.
        input_tokens: Input tokens of its generation.
        output_tokens: Output tokens of its generation.
        total_tokens: All tokens of its generation.
        cost_usd: Cost when known.
        started_at: Milliseconds since the epoch.
        finished_at: Milliseconds since the epoch, None when it did not finish.
    """

    number: int
    run_id: str
    end: str
    calls: tuple[CallView, ...] = ()
    results: tuple[ResultView, ...] = ()
    text: str = ""
    error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None
    started_at: int | None = None
    finished_at: int | None = None

    @property
    def duration_ms(self) -> int | None:
        """How long the step took, None when unknown."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0, self.finished_at - self.started_at)

    @property
    def signature(self) -> tuple[str, ...]:
        """What aligns steps: the tools it called (else how it ended)."""
        return tuple(call.tool_name for call in self.calls) or (self.end,)

    def to_dict(self) -> JSON:
        """The step in ``--json`` output."""
        return {
            "stepNumber": self.number,
            "runId": self.run_id,
            "end": self.end,
            "toolCalls": [call.to_dict() for call in self.calls],
            "results": [result.to_dict() for result in self.results],
            "text": self.text,
            "error": self.error,
            "usage": usage_dict(
                self.input_tokens, self.output_tokens, self.total_tokens, self.cost_usd
            ),
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "durationMs": self.duration_ms,
        }


@dataclass(frozen=True)
class NodeSide:
    """One expert's run in one job: a node of its delegation tree.

    Attributes:
        run_ids: Its run segments.
        status: Status of its latest segment.
        steps: Its steps in order.
        usage: Tokens and cost of its own generations (delegates excluded), camelCase.
        query: The query it started with.
        call_id: The tool call of the parent that started it (None for a coordinator).
    """

    run_ids: tuple[str, ...]
    status: str
    steps: tuple[StepView, ...]
    usage: JSON
    query: str | None
    call_id: str | None

    @property
    def started_at(self) -> int | None:
        """When its first step started."""
        return next((s.started_at for s in self.steps if s.started_at is not None), None)

    @property
    def duration_ms(self) -> int | None:
        """From its first step's start to its last step's end."""
        ends = [s.finished_at for s in self.steps if s.finished_at is not None]
        start = self.started_at
        return max(0, max(ends) - start) if ends and start is not None else None

    def to_dict(self) -> JSON:
        """The run's side in ``--json`` output (its steps are listed pairwise)."""
        return {
            "runIds": list(self.run_ids),
            "status": self.status,
            "steps": len(self.steps),
            "usage": self.usage,
            "query": self.query,
            "durationMs": self.duration_ms,
        }


@dataclass(frozen=True)
class JobSide:
    """One of the two jobs.

    Attributes:
        summary: The job as the jobs API lists it.
        origin: The job it was replayed or forked from, as job.json says (``kind``, ``jobId``,
            ``checkpointId``), None for a job of its own.
    """

    summary: JobSummary
    origin: JSON | None = None

    @property
    def duration_ms(self) -> int | None:
        """From the job's start to its end, None while it runs."""
        finished = self.summary.finished_at
        if finished is None or not self.summary.started_at:
            return None
        return max(0, finished - self.summary.started_at)

    def to_dict(self) -> JSON:
        """The job's side in ``--json`` output."""
        job = self.summary
        return {
            "jobId": job.id,
            "expertKey": job.expert_key,
            "status": job.status,
            "totalSteps": job.total_steps,
            "usage": job.usage,
            "startedAt": job.started_at,
            "finishedAt": job.finished_at,
            "durationMs": self.duration_ms,
            "origin": self.origin,
        }


@dataclass(frozen=True)
class Difference:
    """One thing that differs between the two sides.

    Attributes:
        field: What: ``end``, ``calls``, ``args``, ``result``, ``text``, ``error``, ``tokens``,
            ``cost`` for a step; ``status``, ``query`` for a run or the job.
        label: Which one, for people: ``writeTextFile path``, ``programmer result``...
        a: The value in job A (JSON; None when A has none).
        b: The value in job B.
    """

    field: str
    label: str
    a: Any
    b: Any

    def to_dict(self) -> JSON:
        """The difference in ``--json`` output."""
        return {"field": self.field, "label": self.label, "a": self.a, "b": self.b}


@dataclass
class StepDiff:
    """A pair of aligned steps (or a step only one job made).

    Attributes:
        a: The step in job A, None when only B made it.
        b: The step in job B.
        differences: What differs, in :data:`FIELDS` order (empty for a one-sided step).
    """

    a: StepView | None
    b: StepView | None
    differences: list[Difference] = field(default_factory=list)

    @property
    def state(self) -> str:
        """``same``, ``changed``, ``onlyInA`` or ``onlyInB``."""
        if self.b is None:
            return "onlyInA"
        if self.a is None:
            return "onlyInB"
        return "changed" if self.differences else "same"

    @property
    def same(self) -> bool:
        """Both jobs made this step the same way (time aside)."""
        return self.state == "same"

    @property
    def label(self) -> str:
        """``step 4``; ``step 4 (B: 5)`` when B numbers it otherwise; ``step 4 (only in A)``."""
        if self.a is None or self.b is None:
            view = self.a or self.b
            assert view is not None
            return f"step {view.number} (only in {'A' if self.a is not None else 'B'})"
        if self.a.number == self.b.number:
            return f"step {self.a.number}"
        return f"step {self.a.number} (B: {self.b.number})"

    def to_dict(self) -> JSON:
        """The step pair in ``--json`` output."""
        return {
            "state": self.state,
            "a": self.a.to_dict() if self.a is not None else None,
            "b": self.b.to_dict() if self.b is not None else None,
            "differences": [difference.to_dict() for difference in self.differences],
        }


@dataclass
class NodeDiff:
    """A pair of aligned expert runs (or a run only one job has), with their steps and delegates.

    Attributes:
        expert_key: The expert.
        call: Which call of this expert under its parent (1 for the first).
        path: The expert keys from the coordinator down to this one.
        a: The run in job A, None when only B has it.
        b: The run in job B.
        differences: What differs about the run itself (status; the query of a coordinator).
        steps: The aligned steps.
        children: The aligned delegates, in call order.
        called_at: Index in the parent's :attr:`steps` of the step that called it (None when
            unknown, and for a coordinator).
    """

    expert_key: str
    call: int
    path: tuple[str, ...]
    a: NodeSide | None
    b: NodeSide | None
    differences: list[Difference] = field(default_factory=list)
    steps: list[StepDiff] = field(default_factory=list)
    children: list[NodeDiff] = field(default_factory=list)
    called_at: int | None = None

    @property
    def state(self) -> str:
        """``same``, ``changed`` (itself or anything under it), ``onlyInA`` or ``onlyInB``."""
        if self.b is None:
            return "onlyInA"
        if self.a is None:
            return "onlyInB"
        if self.differences or not all(step.same for step in self.steps):
            return "changed"
        if any(child.state != "same" for child in self.children):
            return "changed"
        return "same"

    @property
    def name(self) -> str:
        """The expert key, with the call number from the second call on (``coder [2]``)."""
        return self.expert_key if self.call == 1 else f"{self.expert_key} [{self.call}]"

    def walk(self, depth: int = 0) -> Iterator[tuple[int, NodeDiff]]:
        """This node and every node under it, depth first, with their depths."""
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)

    def to_dict(self) -> JSON:
        """The run pair in ``--json`` output."""
        return {
            "expertKey": self.expert_key,
            "call": self.call,
            "path": list(self.path),
            "state": self.state,
            "a": self.a.to_dict() if self.a is not None else None,
            "b": self.b.to_dict() if self.b is not None else None,
            "differences": [difference.to_dict() for difference in self.differences],
            "steps": [step.to_dict() for step in self.steps],
            "calledAtStep": self.called_at,
            "children": [child.to_dict() for child in self.children],
        }


@dataclass(frozen=True)
class Divergence:
    """Where the two jobs first went different ways.

    Attributes:
        node: The run pair it is in.
        step: The step pair, None when the run itself differs (only one job has it, or its
            status differs).
        difference: The first difference of that step or run, None for a one-sided one.
        text: One line for people, e.g. ``game-studio › coder, step 2: writeTextFile path
            "a.py" → "b.py"``.
    """

    node: NodeDiff
    step: StepDiff | None
    difference: Difference | None
    text: str

    def to_dict(self) -> JSON:
        """The divergence in ``--json`` output."""
        step = self.step
        return {
            "path": list(self.node.path),
            "call": self.node.call,
            "step": (
                {
                    "a": step.a.number if step.a is not None else None,
                    "b": step.b.number if step.b is not None else None,
                }
                if step is not None
                else None
            ),
            "field": self.difference.field if self.difference is not None else None,
            "text": self.text,
        }


@dataclass
class JobDiff:
    """Two jobs compared: their aligned trees, what differs, and where they first diverged.

    Attributes:
        a: Job A.
        b: Job B.
        roots: The aligned coordinators (normally one pair).
        differences: What differs about the jobs themselves (their status).
        first: The first divergence, None when the jobs do not differ.
    """

    a: JobSide
    b: JobSide
    roots: list[NodeDiff]
    differences: list[Difference] = field(default_factory=list)
    first: Divergence | None = None

    @property
    def same(self) -> bool:
        """No difference but time."""
        return not self.differences and all(root.state == "same" for root in self.roots)

    def walk(self) -> Iterator[tuple[int, NodeDiff]]:
        """Every run pair, depth first, with its depth."""
        for root in self.roots:
            yield from root.walk()

    def counts(self) -> JSON:
        """How many steps and runs differ (camelCase, as in ``--json``)."""
        steps = [step for _, node in self.walk() for step in node.steps]
        nodes = [node for _, node in self.walk()]
        return {
            "steps": len(steps),
            "changedSteps": sum(step.state == "changed" for step in steps),
            "stepsOnlyInA": sum(step.state == "onlyInA" for step in steps),
            "stepsOnlyInB": sum(step.state == "onlyInB" for step in steps),
            "runsOnlyInA": sum(node.state == "onlyInA" for node in nodes),
            "runsOnlyInB": sum(node.state == "onlyInB" for node in nodes),
        }

    @property
    def summary(self) -> str:
        """The first divergence in one line, or what is the same."""
        if self.first is not None:
            return f"First divergence: {self.first.text}"
        return (
            "No differences: the same delegation tree, tool calls, arguments, results, text, "
            "tokens and cost"
        )

    def to_dict(self) -> JSON:
        """The ``--json`` document."""
        return {
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "same": self.same,
            "summary": self.summary,
            "firstDivergence": self.first.to_dict() if self.first is not None else None,
            "counts": self.counts(),
            "differences": [difference.to_dict() for difference in self.differences],
            "tree": [root.to_dict() for root in self.roots],
        }


def usage_dict(
    input_tokens: int, output_tokens: int, total_tokens: int, cost: float | None
) -> JSON:
    """Usage as ``--json`` shows it (camelCase; ``costUsd`` only when known)."""
    usage: JSON = {
        "inputTokens": input_tokens,
        "outputTokens": output_tokens,
        "totalTokens": total_tokens,
    }
    if cost is not None:
        usage["costUsd"] = cost
    return usage
