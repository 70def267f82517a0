"""Wall time of ``perstack log --summary`` on a job of 10,000 events (target: under 0.5 s).

The job is generated with the runtime's own event models into a temporary storage: a coordinator
that delegates to one child after another (each child works for 20 steps with realistic message
sizes, a ~3 KB system prompt and full histories in every checkpoint-carrying event, as the
runtime stores them). Each command runs as a fresh subprocess (``python -m runtime.log.cli``), so
the figures include interpreter start-up and imports, like a user typing the command.

Run: ``.venv/bin/python benchmarks/log_summary.py [--events N] [--runs N]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runtime.jobs.store import Storage
from runtime.schema.checkpoint import (
    Checkpoint,
    DelegatedBy,
    DelegationTarget,
    ExpertRef,
    Job,
    Step,
    ToolCall,
    ToolResult,
    Usage,
)
from runtime.schema.events import (
    CallDelegate,
    CallTools,
    CompleteRun,
    ContinueToNextStep,
    FinishAllToolCalls,
    FinishToolCall,
    InitializeRuntime,
    PerstackEvent,
    ResolveToolResults,
    SkillConnected,
    SkillDisconnected,
    StartGeneration,
    StartRun,
    StopRunByDelegate,
)
from runtime.schema.ids import new_id
from runtime.schema.messages import (
    ExpertMessage,
    InstructionMessage,
    Message,
    TextPart,
    ToolCallPart,
    ToolMessage,
    ToolResultPart,
    UserMessage,
)

SYSTEM_PROMPT = ("You are Perstack, an expert that carries out the user's task. " * 50).strip()
FILE_TEXT = "line of a source file that the expert read back\n" * 8
LEAD = ExpertRef(key="lead", name="lead", version="1.0.0")
WORKER = ExpertRef(key="@team/worker", name="@team/worker", version="1.0.0")
GENERATION = Usage(input_tokens=900, output_tokens=60, total_tokens=960, cost_usd=0.0031)


class JobWriter:
    """Writes events the way the runtime's storage does (one JSON line each)."""

    def __init__(self, storage: Storage, job_id: str) -> None:
        self.storage = storage
        self.job_id = job_id
        self.clock = 1_760_000_000_000
        self.count = 0
        self.step = 1

    def emit(self, event: PerstackEvent) -> None:
        checkpoint = getattr(event, "checkpoint", None)
        if checkpoint is not None:
            self.storage.store_checkpoint(checkpoint)
        self.storage.append_event(self.job_id, event.run_id, event.to_json())
        self.count += 1

    def base(self, run_id: str, expert: ExpertRef) -> dict[str, object]:
        self.clock += 3
        return {
            "job_id": self.job_id,
            "run_id": run_id,
            "expert_key": expert.key,
            "step_number": self.step,
            "timestamp": self.clock,
        }

    def runtime(self, run_id: str) -> dict[str, object]:
        self.clock += 1
        return {"job_id": self.job_id, "run_id": run_id, "timestamp": self.clock}


def checkpoint(
    writer: JobWriter,
    run_id: str,
    expert: ExpertRef,
    status: str,
    messages: list[Message],
    usage: Usage,
    **extra: object,
) -> Checkpoint:
    return Checkpoint.model_validate(
        {
            "id": new_id(),
            "job_id": writer.job_id,
            "run_id": run_id,
            "status": status,
            "step_number": writer.step,
            "messages": messages,
            "expert": expert,
            "usage": usage,
            **extra,
        }
    )


def child_run(
    writer: JobWriter, parent_run: str, parent_checkpoint: str, call_id: str, steps: int
) -> None:
    run_id = new_id()
    writer.emit(
        InitializeRuntime(
            **writer.runtime(run_id),
            runtime_version="0.1.0",
            expert_name=WORKER.name,
            experts=["lead", WORKER.key],
            model="bench-model",
            max_retries=5,
            timeout=300_000,
            query="refactor module",
        )
    )
    writer.emit(SkillConnected(**writer.runtime(run_id), skill_name="@perstack/base"))
    messages: list[Message] = [
        InstructionMessage(contents=[TextPart(text=SYSTEM_PROMPT)]),
        UserMessage(contents=[TextPart(text="Refactor module number 7 and report what changed.")]),
    ]
    usage = Usage()
    delegated_by = DelegatedBy(
        expert=LEAD,
        tool_call_id=call_id,
        tool_name="worker",
        checkpoint_id=parent_checkpoint,
        run_id=parent_run,
    )
    initial = checkpoint(writer, run_id, WORKER, "init", [], usage, delegated_by=delegated_by)
    writer.emit(
        StartRun(**writer.base(run_id, WORKER), initial_checkpoint=initial, input_messages=messages)
    )
    for index in range(steps - 1):
        started = writer.clock
        writer.emit(StartGeneration(**writer.base(run_id, WORKER), messages=messages))
        tool_call = ToolCall(
            id=f"call_{new_id(12)}",
            skill_name="@perstack/base",
            tool_name="readTextFile",
            args={"path": f"src/m{index}.py"},
        )
        expert_message = ExpertMessage(
            contents=[
                ToolCallPart(
                    tool_call_id=tool_call.id, tool_name=tool_call.tool_name, args=tool_call.args
                )
            ]
        )
        usage = usage + GENERATION
        writer.emit(
            CallTools(
                **writer.base(run_id, WORKER),
                new_message=expert_message,
                tool_calls=[tool_call],
                usage=GENERATION,
            )
        )
        result = ToolResult(
            id=tool_call.id,
            skill_name="@perstack/base",
            tool_name="readTextFile",
            result=[TextPart(text=FILE_TEXT)],
        )
        writer.emit(ResolveToolResults(**writer.base(run_id, WORKER), tool_results=[result]))
        tool_message = ToolMessage(
            contents=[
                ToolResultPart(
                    tool_call_id=tool_call.id,
                    tool_name="readTextFile",
                    contents=[TextPart(text=FILE_TEXT)],
                )
            ]
        )
        writer.emit(FinishToolCall(**writer.base(run_id, WORKER), new_messages=[tool_message]))
        messages = [*messages, expert_message, tool_message]
        current = checkpoint(
            writer, run_id, WORKER, "proceeding", messages, usage, delegated_by=delegated_by
        )
        step = Step(
            step_number=writer.step,
            new_messages=[expert_message, tool_message],
            usage=GENERATION,
            started_at=started,
        )
        writer.step += 1
        following = current.model_copy(update={"id": new_id(), "step_number": writer.step})
        writer.emit(
            ContinueToNextStep(
                **writer.base(run_id, WORKER),
                checkpoint=current,
                step=step,
                next_checkpoint=following,
            )
        )
    writer.emit(StartGeneration(**writer.base(run_id, WORKER), messages=messages))
    answer = ExpertMessage(contents=[TextPart(text="Module refactored; tests pass.")])
    usage = usage + GENERATION
    final = checkpoint(
        writer, run_id, WORKER, "completed", [*messages, answer], usage, delegated_by=delegated_by
    )
    step = Step(
        step_number=writer.step, new_messages=[answer], usage=GENERATION, started_at=writer.clock
    )
    writer.emit(
        CompleteRun(
            **writer.base(run_id, WORKER),
            checkpoint=final,
            step=step,
            text="Module refactored; tests pass.",
            usage=GENERATION,
        )
    )
    writer.emit(SkillDisconnected(**writer.runtime(run_id), skill_name="@perstack/base"))
    writer.step += 1


def generate(root: Path, target_events: int, steps_per_child: int = 20) -> str:
    """Write one job of about ``target_events`` events under ``root``; return its id."""
    storage = Storage(root)
    job_id = new_id()
    writer = JobWriter(storage, job_id)
    storage.store_job(
        Job(
            id=job_id,
            status="running",
            coordinator_expert_key="lead",
            started_at=writer.clock,
            max_steps=100_000,
        )
    )
    messages: list[Message] = [
        InstructionMessage(contents=[TextPart(text=SYSTEM_PROMPT)]),
        UserMessage(contents=[TextPart(text="Refactor every module of the project.")]),
    ]
    usage = Usage()
    status = "init"
    per_child = 3 + 5 * (steps_per_child - 1) + 3
    while True:
        run_id = new_id()
        writer.emit(
            InitializeRuntime(
                **writer.runtime(run_id),
                runtime_version="0.1.0",
                expert_name="lead",
                experts=["lead", WORKER.key],
                model="bench-model",
                max_retries=5,
                timeout=300_000,
            )
        )
        initial = checkpoint(writer, run_id, LEAD, status, messages, usage)
        writer.emit(
            StartRun(
                **writer.base(run_id, LEAD),
                initial_checkpoint=initial,
                input_messages=messages[-1:],
            )
        )
        if status != "init":
            writer.emit(
                FinishAllToolCalls(**writer.base(run_id, LEAD), new_messages=[messages[-1]])
            )  # type: ignore[list-item]
        writer.emit(StartGeneration(**writer.base(run_id, LEAD), messages=messages))
        usage = usage + GENERATION
        if writer.count + per_child + 8 >= target_events:
            answer = ExpertMessage(contents=[TextPart(text="All modules refactored.")])
            final = checkpoint(writer, run_id, LEAD, "completed", [*messages, answer], usage)
            step = Step(
                step_number=writer.step,
                new_messages=[answer],
                usage=GENERATION,
                started_at=writer.clock,
            )
            writer.emit(
                CompleteRun(
                    **writer.base(run_id, LEAD),
                    checkpoint=final,
                    step=step,
                    text="All modules refactored.",
                    usage=GENERATION,
                )
            )
            while writer.count < target_events:
                writer.emit(
                    SkillDisconnected(**writer.runtime(run_id), skill_name=f"skill-{writer.count}")
                )
            storage.store_job(
                Job(
                    id=job_id,
                    status="completed",
                    coordinator_expert_key="lead",
                    total_steps=writer.step,
                    usage=usage,
                    started_at=1_760_000_000_000,
                    finished_at=writer.clock,
                )
            )
            return job_id
        call = ToolCall(
            id=f"call_{new_id(12)}",
            skill_name=WORKER.key,
            tool_name="worker",
            args={"query": "refactor module"},
        )
        expert_message = ExpertMessage(
            contents=[ToolCallPart(tool_call_id=call.id, tool_name="worker", args=call.args)]
        )
        writer.emit(
            CallTools(
                **writer.base(run_id, LEAD),
                new_message=expert_message,
                tool_calls=[call],
                usage=GENERATION,
            )
        )
        writer.emit(
            CallDelegate(
                **writer.base(run_id, LEAD),
                new_message=expert_message,
                tool_calls=[call],
                usage=Usage(),
            )
        )
        messages = [*messages, expert_message]
        target = DelegationTarget(
            expert=WORKER, tool_call_id=call.id, tool_name="worker", query="refactor module"
        )
        stopped = checkpoint(
            writer, run_id, LEAD, "stoppedByDelegate", messages, usage, delegate_to=[target]
        )
        step = Step(
            step_number=writer.step,
            new_messages=[expert_message],
            usage=GENERATION,
            started_at=writer.clock,
        )
        writer.emit(StopRunByDelegate(**writer.base(run_id, LEAD), checkpoint=stopped, step=step))
        writer.step += 1
        before = writer.step
        child_run(writer, run_id, stopped.id, call.id, steps_per_child)
        usage = usage + Usage(
            input_tokens=GENERATION.input_tokens * steps_per_child,
            output_tokens=GENERATION.output_tokens * steps_per_child,
            total_tokens=GENERATION.total_tokens * steps_per_child,
            cost_usd=(GENERATION.cost_usd or 0.0) * steps_per_child,
        )
        assert writer.step == before + steps_per_child
        result = ToolMessage(
            contents=[
                ToolResultPart(
                    tool_call_id=call.id,
                    tool_name="worker",
                    contents=[TextPart(text="Module refactored; tests pass.")],
                )
            ]
        )
        messages = [*messages, result]
        status = "stoppedByDelegate"


def measure(command: list[str], runs: int) -> list[float]:
    # An installed package has its bytecode cached; a PYTHONDONTWRITEBYTECODE shell would make
    # every run recompile the sources, which no user pays.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(command, check=True, capture_output=True, env=env)  # warm caches
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(command, check=False, capture_output=True, env=env)
        samples.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{command} failed: {done.stderr.decode()}")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "perstack"
        started = time.perf_counter()
        job_id = generate(root, args.events)
        lines = sum(
            sum(1 for _ in path.open(encoding="utf-8")) for path in root.rglob("events.jsonl")
        )
        size = sum(path.stat().st_size for path in root.rglob("events.jsonl"))
        runs = len(list((root / "jobs" / job_id / "runs").iterdir()))
        print(
            f"job {job_id}: {lines} events in {runs} runs, events.jsonl total {size / 1e6:.1f} MB"
            f" (generated in {time.perf_counter() - started:.1f} s)"
        )
        log = [sys.executable, "-m", "runtime.log.cli", "--storage", str(root)]
        cases = [
            (
                "python -c 'import runtime.log.cli' (start-up + imports only)",
                [sys.executable, "-c", "import runtime.log.cli"],
            ),
            ("perstack log --summary (target < 0.5 s)", [*log, "--summary"]),
            ("perstack log --summary --json", [*log, "--summary", "--json"]),
            ("perstack log (first 100 events)", log),
            ("perstack log --errors", [*log, "--errors"]),
            (
                "perstack log --filter '.toolCalls[].toolName == \"readTextFile\"'",
                [*log, "--filter", '.toolCalls[].toolName == "readTextFile"'],
            ),
        ]
        print(f"{'command':<68} {'min s':>7} {'median s':>9} {'max s':>7}  (n={args.runs})")
        for label, command in cases:
            samples = measure(command, args.runs)
            print(
                f"{label:<68} {min(samples):>7.3f} {statistics.median(samples):>9.3f}"
                f" {max(samples):>7.3f}"
            )


if __name__ == "__main__":
    main()
