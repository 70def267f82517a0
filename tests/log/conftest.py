"""Jobs for the ``perstack log`` tests: real runs (scripted model) and hand-built event streams."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from runtime import RunSetting, parse_config, run
from runtime.jobs.store import Storage
from runtime.log.cli import main
from runtime.schema.checkpoint import (
    Checkpoint,
    DelegatedBy,
    DelegationTarget,
    ExpertRef,
    Job,
    RunErrorInfo,
    Step,
    ToolCall,
    ToolResult,
    Usage,
)
from runtime.schema.events import (
    CallDelegate,
    CallInteractiveTool,
    CallTools,
    CompleteRun,
    InitializeRuntime,
    PerstackEvent,
    ResolveToolResults,
    Retry,
    SkillConnected,
    StartGeneration,
    StartRun,
    StopRunByDelegate,
    StopRunByError,
    StopRunByInteractiveTool,
)
from runtime.schema.messages import (
    ExpertMessage,
    Message,
    TextPart,
    ToolCallPart,
    ToolMessage,
    ToolResultPart,
    UserMessage,
)
from runtime.testing import ScriptedModel, call, calls, fail, reply, scripted_team

SOLO = """
model = "scripted"

[experts."writer"]
description = "Writes files"
instruction = "Write what you are asked to."
"""

TEAM = """
[experts."lead"]
description = "Coordinates"
instruction = "You lead the team."
delegates = ["@team/designer", "@team/coder"]

[experts."@team/designer"]
description = "Designs levels"
instruction = "You design levels."

[experts."@team/coder"]
description = "Writes code"
instruction = "You write code."
delegates = ["@team/tester"]

[experts."@team/tester"]
description = "Tests code"
instruction = "You test code."

[experts."asker"]
instruction = "Ask the user before acting."
[experts."asker".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
[experts."asker".skills."ask"]
type = "interactiveSkill"
[experts."asker".skills."ask".tools."askColor"]
description = "Ask the user for a colour"
inputJsonSchema = '{"type": "object", "properties": {"question": {"type": "string"}}}'
"""


@dataclass
class Outcome:
    """What one ``perstack log`` invocation printed."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def log(root: Path, *args: str) -> Outcome:
    """Run ``perstack log --storage root ARGS`` in-process, times in UTC, no colour."""
    out, err = io.StringIO(), io.StringIO()
    code = main(["--storage", str(root), *args], stdout=out, stderr=err, tz=UTC)
    return Outcome(code, out.getvalue(), err.getvalue())


def events_of(outcome: Outcome) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = outcome.json()["events"]
    return events


def types_of(outcome: Outcome) -> list[str]:
    return [event["type"] for event in events_of(outcome)]


# real runs --------------------------------------------------------------------------------------


def run_job(
    workspace: Path,
    model: ScriptedModel,
    *,
    expert: str = "writer",
    query: str = "write a note please",
    toml: str = SOLO,
    **overrides: Any,
) -> Checkpoint:
    """Run an expert for real (scripted model) with storage under ``workspace/perstack``."""
    workspace.mkdir(parents=True, exist_ok=True)
    setting = RunSetting(
        expert_key=expert,
        query=query,
        workspace=workspace,
        retry_base_delay_ms=0,
        storage_path=workspace / "perstack",
        **overrides,
    )
    config = parse_config(toml, path=workspace / "perstack.toml")
    return asyncio.run(run(setting, None, model=model, config=config))


@dataclass
class RealJobs:
    """Jobs produced by the runtime, all in one storage (``root``), oldest first."""

    root: Path
    single: str
    error: str
    max_steps: str
    delegation: str
    parallel: str
    interactive: str


@pytest.fixture(scope="session")
def real_jobs(tmp_path_factory: pytest.TempPathFactory) -> RealJobs:
    workspace = tmp_path_factory.mktemp("real")
    single = run_job(
        workspace,
        ScriptedModel(
            [
                call("writeTextFile", path="a.txt", text="hi"),
                call("readTextFile", path="missing.txt"),
                call("attemptCompletion"),
                reply("Done writing.\nSecond line of the result."),
            ]
        ),
    )
    error = run_job(
        workspace,
        ScriptedModel([fail("slow down", retryable=True), fail("bad key", retryable=False)]),
        query="this will fail",
        max_retries=1,
    )
    max_steps = run_job(
        workspace,
        ScriptedModel([call("todo", newTodos=["a"]), call("todo", newTodos=["b"])]),
        query="loop forever",
        max_steps=2,
    )
    delegation = run_job(
        workspace,
        scripted_team(
            {
                "You lead the team.": [call("coder", query="build it"), reply("shipped")],
                "You write code.": [call("tester", query="test it"), reply("built and tested")],
                "You test code.": [reply("all green")],
            }
        ),
        expert="lead",
        query="make a game",
        toml=TEAM,
    )
    parallel = run_job(
        workspace,
        scripted_team(
            {
                "You lead the team.": [
                    calls(("designer", {"query": "levels"}), ("coder", {"query": "code"})),
                    reply("both done"),
                ],
                "You design levels.": [reply("3 levels")],
                "You write code.": [reply("main.ts")],
            }
        ),
        expert="lead",
        query="go",
        toml=TEAM,
    )
    stopped = run_job(
        workspace,
        ScriptedModel(
            [
                calls(
                    ("writeTextFile", {"path": "b.txt", "text": "x"}),
                    ("askColor", {"question": "Which colour?"}),
                )
            ]
        ),
        expert="asker",
        query="paint it",
        toml=TEAM,
    )
    assert stopped.status == "stoppedByInteractiveTool"
    resumed = run_job(
        workspace,
        ScriptedModel([reply("Painted it blue.")]),
        expert="asker",
        query="blue",
        toml=TEAM,
        continue_job=stopped.job_id,
        interactive_answer=True,
    )
    assert resumed.status == "completed"
    assert max_steps.status == "stoppedByExceededMaxSteps"
    assert error.status == "stoppedByError"
    return RealJobs(
        root=workspace / "perstack",
        single=single.job_id,
        error=error.job_id,
        max_steps=max_steps.job_id,
        delegation=delegation.job_id,
        parallel=parallel.job_id,
        interactive=stopped.job_id,
    )


# hand-built streams ------------------------------------------------------------------------------

T0 = 1_767_225_600_000  # 2026-01-01 00:00:00 UTC


def expert_ref(key: str) -> ExpertRef:
    return ExpertRef(key=key, name=key, version="1.0.0")


@dataclass
class Segment:
    """A run segment being written by :class:`JobBuilder`."""

    builder: JobBuilder
    run_id: str
    expert: ExpertRef
    messages: list[Message] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    delegated_by: DelegatedBy | None = None
    last_checkpoint: Checkpoint | None = None

    def base(self) -> dict[str, Any]:
        return self.builder.base(self.run_id, self.expert.key)

    def checkpoint(self, status: str, **extra: Any) -> Checkpoint:
        checkpoint = Checkpoint.model_validate(
            {
                "id": self.builder.next_id("cp"),
                "job_id": self.builder.job_id,
                "run_id": self.run_id,
                "status": status,
                "step_number": self.builder.step,
                "messages": list(self.messages),
                "expert": self.expert,
                "usage": self.usage,
                "delegated_by": self.delegated_by,
                **extra,
            }
        )
        self.builder.storage.store_checkpoint(checkpoint)
        self.last_checkpoint = checkpoint
        return checkpoint

    def step_model(self) -> Step:
        return Step(step_number=self.builder.step, started_at=self.builder.clock)

    def generation(self, tokens: int = 100, cost: float | None = 0.01) -> Usage:
        usage = Usage(
            input_tokens=tokens - 10, output_tokens=10, total_tokens=tokens, cost_usd=cost
        )
        self.usage = self.usage + usage
        return usage

    def tools(self, *names: str, results: dict[str, str] | None = None) -> list[ToolCall]:
        """callTools + resolveToolResults (one generation) for base-skill tools."""
        self.builder.emit(StartGeneration(**self.base(), messages=list(self.messages)))
        tool_calls = [
            ToolCall(
                id=self.builder.next_id("call"),
                skill_name="@perstack/base",
                tool_name=name,
                args={"path": f"{name}.txt"},
            )
            for name in names
        ]
        message = ExpertMessage(
            id=self.builder.next_id("msg"),
            contents=[
                ToolCallPart(tool_call_id=c.id, tool_name=c.tool_name, args=c.args)
                for c in tool_calls
            ],
        )
        usage = self.generation()
        self.builder.emit(
            CallTools(**self.base(), new_message=message, tool_calls=tool_calls, usage=usage)
        )
        texts = results or {}
        tool_results = [
            ToolResult(
                id=c.id,
                skill_name=c.skill_name,
                tool_name=c.tool_name,
                result=[TextPart(text=texts.get(c.tool_name, f"ok {c.tool_name}"))],
                is_error=texts.get(c.tool_name, "").startswith("Error") or None,
            )
            for c in tool_calls
        ]
        self.builder.emit(ResolveToolResults(**self.base(), tool_results=tool_results))
        self.messages.append(message)
        self.messages.append(
            ToolMessage(
                id=self.builder.next_id("msg"),
                contents=[
                    ToolResultPart(
                        tool_call_id=r.id,
                        tool_name=r.tool_name,
                        contents=[TextPart(text=str(r.result[0].text))],  # type: ignore[union-attr]
                    )
                    for r in tool_results
                ],
            )
        )
        self.builder.step += 1
        return tool_calls

    def delegate(self, *targets: tuple[str, str]) -> list[tuple[ToolCall, Checkpoint]]:
        """callDelegate + stopRunByDelegate for (expert key, query) targets."""
        self.builder.emit(StartGeneration(**self.base(), messages=list(self.messages)))
        tool_calls = [
            ToolCall(
                id=self.builder.next_id("call"),
                skill_name=key,
                tool_name=key.rsplit("/", 1)[-1],
                args={"query": query},
            )
            for key, query in targets
        ]
        message = ExpertMessage(
            id=self.builder.next_id("msg"),
            contents=[
                ToolCallPart(tool_call_id=c.id, tool_name=c.tool_name, args=c.args)
                for c in tool_calls
            ],
        )
        usage = self.generation()
        self.builder.emit(
            CallDelegate(**self.base(), new_message=message, tool_calls=tool_calls, usage=usage)
        )
        self.messages.append(message)
        stopped = self.checkpoint(
            "stoppedByDelegate",
            delegate_to=[
                DelegationTarget(
                    expert=expert_ref(c.skill_name),
                    tool_call_id=c.id,
                    tool_name=c.tool_name,
                    query=str(c.args["query"]),
                )
                for c in tool_calls
            ],
        )
        self.builder.emit(
            StopRunByDelegate(**self.base(), checkpoint=stopped, step=self.step_model())
        )
        return [(c, stopped) for c in tool_calls]

    def complete(self, text: str) -> None:
        self.builder.emit(StartGeneration(**self.base(), messages=list(self.messages)))
        usage = self.generation()
        self.messages.append(
            ExpertMessage(id=self.builder.next_id("msg"), contents=[TextPart(text=text)])
        )
        final = self.checkpoint("completed")
        self.builder.emit(
            CompleteRun(
                **self.base(), checkpoint=final, step=self.step_model(), text=text, usage=usage
            )
        )

    def error(self, name: str, message: str) -> None:
        self.builder.emit(StartGeneration(**self.base(), messages=list(self.messages)))
        self.builder.emit(
            Retry(
                **self.base(),
                reason=json.dumps({"error": "RateLimitError", "message": "slow down"}),
                new_messages=[],
                usage=Usage(),
            )
        )
        info = RunErrorInfo(name=name, message=message, is_retryable=False)
        stopped = self.checkpoint("stoppedByError", error=info)
        self.builder.emit(
            StopRunByError(**self.base(), checkpoint=stopped, step=self.step_model(), error=info)
        )

    def ask(self, tool: str) -> None:
        self.builder.emit(StartGeneration(**self.base(), messages=list(self.messages)))
        tool_call = ToolCall(
            id=self.builder.next_id("call"),
            skill_name="ask",
            tool_name=tool,
            args={"question": "Which colour?"},
        )
        message = ExpertMessage(
            id=self.builder.next_id("msg"),
            contents=[ToolCallPart(tool_call_id=tool_call.id, tool_name=tool, args=tool_call.args)],
        )
        usage = self.generation()
        self.builder.emit(
            CallInteractiveTool(
                **self.base(), new_message=message, tool_call=tool_call, usage=usage
            )
        )
        self.messages.append(message)
        stopped = self.checkpoint("stoppedByInteractiveTool", pending_tool_calls=[tool_call])
        self.builder.emit(
            StopRunByInteractiveTool(**self.base(), checkpoint=stopped, step=self.step_model())
        )


class JobBuilder:
    """Writes a job event by event with the runtime's models and fixed, increasing timestamps."""

    def __init__(self, root: Path, job_id: str = "job1", *, start: int = T0) -> None:
        self.storage = Storage(root)
        self.root = root
        self.job_id = job_id
        self.clock = start
        self.step = 1
        self._counter = 0

    def next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter:04d}"

    def tick(self) -> int:
        self.clock += 1000
        return self.clock

    def base(self, run_id: str, expert_key: str) -> dict[str, Any]:
        return {
            "id": self.next_id("ev"),
            "timestamp": self.tick(),
            "job_id": self.job_id,
            "run_id": run_id,
            "expert_key": expert_key,
            "step_number": self.step,
        }

    def emit(self, event: PerstackEvent) -> None:
        self.storage.append_event(self.job_id, event.run_id, event.to_json())

    def start(
        self,
        run_id: str,
        expert: str,
        query: str | None = None,
        *,
        delegated_by: tuple[Segment, ToolCall, Checkpoint] | None = None,
        resume: Segment | None = None,
    ) -> Segment:
        """initializeRuntime + skillConnected + startRun of a new (or resumed) segment."""
        ref = expert_ref(expert)
        segment = Segment(self, run_id, ref)
        runtime_base = {
            "id": self.next_id("ev"),
            "timestamp": self.tick(),
            "job_id": self.job_id,
            "run_id": run_id,
        }
        self.emit(
            InitializeRuntime(
                **runtime_base,
                runtime_version="0.1.0",
                expert_name=expert,
                experts=[expert],
                model="scripted",
                max_retries=5,
                timeout=300_000,
                query=query,
            )
        )
        self.emit(
            SkillConnected(
                id=self.next_id("ev"),
                timestamp=self.tick(),
                job_id=self.job_id,
                run_id=run_id,
                skill_name="@perstack/base",
            )
        )
        inputs: list[Message] = []
        status = "init"
        waiting: dict[str, Any] = {}
        if resume is not None:
            segment.messages = list(resume.messages)
            segment.usage = resume.usage
            segment.delegated_by = resume.delegated_by
            last = resume.last_checkpoint
            status = last.status if last else "init"
            if last is not None:
                # As the runtime resumes a run that stopped for calls: the checkpoint it goes on
                # from still names them (delegateTo), with their results (partialToolResults).
                waiting = {
                    "delegate_to": last.delegate_to,
                    "partial_tool_results": [
                        ToolResult(
                            id=c.id, skill_name=c.skill_name, tool_name=c.tool_name, result=[]
                        )
                        for c in last.pending_tool_calls or []
                    ]
                    or None,
                }
        if delegated_by is not None:
            parent, tool_call, parent_checkpoint = delegated_by
            segment.delegated_by = DelegatedBy(
                expert=parent.expert,
                tool_call_id=tool_call.id,
                tool_name=tool_call.tool_name,
                checkpoint_id=parent_checkpoint.id,
                run_id=parent.run_id,
            )
        if query is not None:
            inputs = [UserMessage(id=self.next_id("msg"), contents=[TextPart(text=query)])]
            segment.messages.extend(inputs)
        initial = Checkpoint.model_validate(
            {
                "id": self.next_id("cp"),
                "job_id": self.job_id,
                "run_id": run_id,
                "status": status,
                "step_number": self.step,
                "messages": list(resume.messages) if resume is not None else [],
                "expert": ref,
                "usage": segment.usage,
                "delegated_by": segment.delegated_by,
                **waiting,
            }
        )
        self.emit(StartRun(**segment.base(), initial_checkpoint=initial, input_messages=inputs))
        return segment

    def store_job(self, status: str, coordinator: str, usage: Usage | None = None) -> None:
        self.storage.store_job(
            Job(
                id=self.job_id,
                status=status,  # type: ignore[arg-type]
                coordinator_expert_key=coordinator,
                total_steps=self.step,
                usage=usage or Usage(),
                started_at=T0,
                finished_at=self.clock if status != "running" else None,
            )
        )


@pytest.fixture
def builder(tmp_path: Path) -> Iterator[JobBuilder]:
    yield JobBuilder(tmp_path / "perstack")


class FakeTerminal:
    """A stdout that says it is a terminal, keeping what is written to it."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass
