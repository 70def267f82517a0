"""SIGKILL a delegating run at random moments, continue each: the target of issue "Trust".

Target: over ≥ 100 random kill moments, 100 % of the continuations complete, 0 completed steps
are redone, 0 files under perstack/ are corrupt.

Scenario (``perstack.toml`` in a fresh temp workspace per case, storage on, FakeLLM in-process):

* ``lead`` (the coordinator, ``delegates = ["helper", "writer"]``) asks both delegates at once in
  its first reply (two parallel tool calls, call ids ``call_p<phase>_<delegate>``; each query
  names its call id as ``[lineage <id>]``), then answers text once their results are in.
* ``helper`` appends one line per step to ``helper.log`` (3 steps of ``appendTextFile``),
  ``writer`` to ``writer.log`` (2 steps), each then answers text. A line is
  ``<expert> step <k> [<lineage>]``: the evidence that step k of that delegation ran. The files
  are created empty before the run, so every execution of a step leaves one more line.
* The fake answers by expert (from the system prompt) and by progress (the number of assistant
  messages in the request), never from a queue: a continuation that asks again gets the same
  answer. Every reply is delayed 0–80 ms (seeded per case, expert and step), so the kills land at
  varied moments. Uninterrupted, the job makes 9 model requests.

For each of ``--runs`` cases (seeded from ``--seed`` and the case number) one kill moment is
drawn, mixing four kinds:

* ``time``: SIGKILL ``t`` seconds after the process started, ``t`` uniform in [0, 0.9 × the wall
  time of an uninterrupted reference run];
* ``request``: SIGKILL 0–100 ms after the fake received model request #n (n uniform in 1..9);
* ``line``: SIGKILL as soon as stdout line #m arrived (m uniform over the reference run's lines),
  i.e. just after the runtime stored and printed that event;
* ``event``: SIGKILL as soon as the n-th event of one type and expert arrived (drawn uniformly
  from the reference run's events, text deltas left out): the same landmarks as ``line``, found
  by name whatever the interleaving of the parallel delegates.

Each kill is then placed by what was stored at that moment: before the first checkpoint, while
the delegates run, both delegates done but lead not resumed, lead's final step, after lead's
completeRun (then the continuation is a new turn of a completed job).

The kill goes to the run's process group (``start_new_session``). A moment is redrawn, in a fresh
workspace (up to 5 times per case; both counts are reported), when the kill missed (the run had
already exited) or came before the job existed (no ``perstack/jobs/<id>/`` yet, the interpreter
still starting: nothing is stored, so ``--continue`` must refuse with "No jobs found", exit 2,
and store nothing; that is checked). So every case is a kill of a live job. Then
``perstack run lead "go on" --continue`` runs once, not killed, against a new FakeLLM (so the
requests before and after the kill cannot mix) and must complete; a lead that starts over must
still be asked the job's first query.

Checks per case (definitions are printed with the figures):

* completed: the continuation exits 0, its last run event is lead's ``completeRun``, job.json
  says ``completed``, lead's last request carries both delegates' results, and every step line
  of the delegations it used is in the evidence files;
* completed steps redone: see DEFINITIONS below (model requests after the continue compared with
  the checkpoints stored before the kill, and evidence lines written twice);
* duplicate step numbers: two stored checkpoints of one run lineage (same expert and same
  ``delegatedBy.toolCallId``) with the same step number, as ``step_numbers`` in
  tests/test_crash_resume.py;
* corrupt files, checked right after the kill and after the continuation: every ``*.json`` under
  perstack/ parses (job.json and checkpoints also load with the runtime's models), job.lock is
  empty or JSON, every events.jsonl line parses except a torn last line (no newline, not JSON),
  which is counted apart (readers skip it). Leftover ``.*.tmp`` files of interrupted atomic
  writes are counted apart too (readers never look at them).

    .venv/bin/python benchmarks/crash_resume.py [--runs N] [--seed S] [--json]
        [--only 3,17] [--keep DIR] [--verbose]

Exit status 1 when a case crashed the harness (or the uninterrupted reference run failed its
checks); a missed target is reported, not an exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.errors import PerstackError  # noqa: E402
from runtime.jobs.store import Storage  # noqa: E402
from tests.fakellm import (  # noqa: E402
    FakeLLM,
    Reply,
    reply_delay,
    reply_text,
    reply_tool_calls,
)

PERSTACK = [sys.executable, "-m", "studio"]
MODEL_ARGS = ["--provider", "openai", "--model", "gpt-4.1"]
QUERY = "run the team"
CONTINUE_QUERY = "go on"
TIMEOUT = 90.0
"""Seconds before a hung process is killed (a hung continuation counts as not completed)."""
MAX_REPLY_DELAY = 0.08
REQUEST_KILL_SPREAD = 0.1
TIME_KILL_FRACTION = 0.9
MAX_ATTEMPTS = 5
"""Kill moments drawn per case before giving up on landing a kill."""

LEAD = "lead"
STEPS = {"helper": 3, "writer": 2}
"""Tool-call steps of each delegate (each then answers text: one more generation)."""
LEAD_GENERATIONS = 2
TOTAL_REQUESTS = LEAD_GENERATIONS + sum(s + 1 for s in STEPS.values())
MARKERS = {LEAD: "<team-lead>", "helper": "<team-helper>", "writer": "<team-writer>"}
LINEAGE_RE = re.compile(r"\[lineage ([A-Za-z0-9_]+)\]")
EVIDENCE_RE = re.compile(r"^(\w+) step (\d+) \[lineage ([A-Za-z0-9_]+)\]$")

TOML = f"""[experts."{LEAD}"]
description = "Leads the team"
instruction = "You coordinate the team. {MARKERS[LEAD]}"
delegates = {json.dumps(list(STEPS))}

[experts."helper"]
description = "Keeps the helper log"
instruction = "You keep helper.log. {MARKERS["helper"]}"

[experts."writer"]
description = "Keeps the writer log"
instruction = "You keep writer.log. {MARKERS["writer"]}"
"""

DEFINITIONS = """\
  generation k of a lineage: the model reply that makes the lineage's k-th assistant message
    (a request holding k-1 assistant messages asks for it). lead has 2, helper 4, writer 3.
  step k is checkpointed when a checkpoint of its lineage stored before the kill holds k
    assistant messages (Perstack stores a checkpoint at the end of each step), or when step
    k-1 is and step k's tool results are in a stored resolveToolResults event (the runtime
    rebuilds that step from its events).
  completed step redone = (lineage, k) with either
    (a) a model request after the continue asking for generation k although step k was
        checkpointed (its reply was on disk), or
    (b) its evidence line in the workspace at the kill and written again after the continue.
  It is split into: checkpointed (a, or b with the step checkpointed: a resume bug) and
  effect-only (b with the step not checkpointed: the kill fell between the tool's effect and the
  step's checkpoint, so the runtime had no record the tool ran; at-least-once execution).
  Also counted: evidence lines written twice before the kill or twice within the continuation.
  requests beyond the checkpoints: requests after the continue minus the generations the stored
    checkpoints leave to do (lead: 1 when the job had completed: the continuation is a new turn)."""


# Fake replies -----------------------------------------------------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


@dataclass(frozen=True)
class Asked:
    """What one model request asks for."""

    expert: str
    lineage: str
    """``lead``, or ``<delegate>:<delegation call id>``."""
    assistants: int
    """Assistant messages already in the conversation: it asks for generation assistants + 1."""
    tool_texts: tuple[str, ...]
    users: tuple[str, ...]


def parse_request(body: dict[str, Any]) -> Asked:
    messages = body.get("messages") or []
    system = _text(messages[0].get("content")) if messages else ""
    expert = next((name for name, marker in MARKERS.items() if marker in system), "?")
    lineage = LEAD if expert == LEAD else f"{expert}:?"
    if expert in STEPS:
        for message in messages:
            if message.get("role") == "user":
                match = LINEAGE_RE.search(_text(message.get("content")))
                if match:
                    lineage = f"{expert}:{match.group(1)}"
                    break
    assistants = sum(1 for m in messages if m.get("role") == "assistant")
    tools = tuple(_text(m.get("content")) for m in messages if m.get("role") == "tool")
    users = tuple(_text(m.get("content")) for m in messages if m.get("role") == "user")
    return Asked(expert, lineage, assistants, tools, users)


def evidence_line(expert: str, step: int, call_id: str) -> str:
    return f"{expert} step {step} [lineage {call_id}]"


def done_text(expert: str, call_id: str) -> str:
    return f"{expert} done [lineage {call_id}]"


def make_reply(
    case_seed: str, phase: int, on_request: Callable[[int], None]
) -> Callable[[dict[str, Any]], Reply]:
    lock = threading.Lock()
    count = [0]

    def reply(body: dict[str, Any]) -> Reply:
        with lock:
            count[0] += 1
            number = count[0]
        on_request(number)
        asked = parse_request(body)
        rng = random.Random(f"{case_seed}/{phase}/{asked.lineage}/{asked.assistants}")
        delay = rng.uniform(0, MAX_REPLY_DELAY)
        if asked.expert == LEAD:
            if asked.assistants == 0:
                calls = [
                    (
                        name,
                        {"query": f"Append {steps} lines. [lineage call_p{phase}_{name}]"},
                        f"call_p{phase}_{name}",
                    )
                    for name, steps in STEPS.items()
                ]
                return reply_delay(delay, reply_tool_calls(calls))
            return reply_delay(delay, reply_text("team done"))
        if asked.expert in STEPS and not asked.lineage.endswith(":?"):
            call_id = asked.lineage.split(":", 1)[1]
            step = asked.assistants + 1
            if step <= STEPS[asked.expert]:
                line = evidence_line(asked.expert, step, call_id)
                args = {"path": f"{asked.expert}.log", "text": line + "\n"}
                tool_id = f"{call_id}_s{step}_p{phase}"
                return reply_delay(delay, reply_tool_calls([("appendTextFile", args, tool_id)]))
            return reply_delay(delay, reply_text(done_text(asked.expert, call_id)))
        return reply_text("unexpected request")  # caught by the checks

    return reply


# Running the CLI --------------------------------------------------------------------------------


class Launch:
    """A ``perstack run`` subprocess in its own process group, killable at any moment."""

    def __init__(
        self,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        *,
        holder: list[Launch] | None = None,
        on_line: Callable[[int, str], None] | None = None,
    ) -> None:
        """Start the process; ``on_line(count, line)`` runs on each stdout line as it arrives.

        ``holder`` gets this object appended before the process starts (for callbacks).
        """
        if holder is not None:
            holder.append(self)
        self.lines: list[str] = []
        self.kill_time: float | None = None
        self.kill_line_count: int | None = None
        self.kill_request_count: int | None = None
        self.timed_out = False
        self.on_line = on_line
        self._stderr = tempfile.TemporaryFile()
        self._lock = threading.Lock()
        self.start = time.monotonic()
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace")
            with self._lock:
                self.lines.append(line)
                count = len(self.lines)
            if self.on_line is not None:
                self.on_line(count, line)

    def kill(self, requests: int | None = None) -> None:
        """SIGKILL the process group (once); remember when and how much had happened."""
        with self._lock:
            if self.kill_time is not None or self.process.returncode is not None:
                return
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            self.kill_time = time.monotonic() - self.start
            self.kill_line_count = len(self.lines)
            self.kill_request_count = requests

    def wait(self, timeout: float = TIMEOUT) -> None:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.timed_out = True
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.wall = time.monotonic() - self.start
        self._reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()

    @property
    def returncode(self) -> int:
        assert self.process.returncode is not None
        return self.process.returncode

    @property
    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"type": "<not JSON>"})
        return out


def child_env(fake: FakeLLM) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(fake.env())
    env.pop("PERSTACK_STORAGE_PATH", None)
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return env


def new_workspace() -> Path:
    workspace = Path(tempfile.mkdtemp(prefix="crash-resume-"))
    (workspace / "perstack.toml").write_text(TOML)
    for name in STEPS:
        (workspace / f"{name}.log").write_text("")
    return workspace


def run_command(*extra: str, query: str = QUERY) -> list[str]:
    return [*PERSTACK, "run", LEAD, query, *MODEL_ARGS, *extra]


# Reading what a job left ------------------------------------------------------------------------


def lineage_of(checkpoint: dict[str, Any]) -> str:
    by = checkpoint.get("delegatedBy")
    expert = checkpoint.get("expert", {}).get("key", "?")
    return f"{expert}:{by['toolCallId']}" if by else expert


def assistant_count(checkpoint: dict[str, Any]) -> int:
    return sum(1 for m in checkpoint.get("messages", []) if m.get("type") == "expertMessage")


def read_checkpoints(workspace: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted((workspace / "perstack" / "jobs").glob("*/checkpoints/*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # counted by the integrity check
        if isinstance(data, dict):
            data["_mtime"] = path.stat().st_mtime
            found.append(data)
    return found


def stored_tool_results(workspace: Path) -> set[str]:
    """Ids of the tool calls whose results a stored ``resolveToolResults`` event holds."""
    ids: set[str] = set()
    for path in (workspace / "perstack" / "jobs").glob("*/runs/*/events.jsonl"):
        for line in path.read_bytes().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("type") == "resolveToolResults":
                ids.update(r.get("id", "") for r in event.get("toolResults") or [])
    return ids


def tmp_checkpoints(workspace: Path) -> dict[str, int]:
    """Per lineage: the most assistant messages of a whole checkpoint left in a ``.tmp`` file."""
    out: dict[str, int] = {}
    for path in (workspace / "perstack" / "jobs").glob("*/checkpoints/.*.tmp"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            key = lineage_of(data)
            out[key] = max(out.get(key, 0), assistant_count(data))
    return out


def progress(checkpoints: list[dict[str, Any]]) -> dict[str, int]:
    """Per lineage: the most assistant messages a stored checkpoint holds (checkpointed steps)."""
    out: dict[str, int] = {}
    for checkpoint in checkpoints:
        key = lineage_of(checkpoint)
        out[key] = max(out.get(key, 0), assistant_count(checkpoint))
    return out


def latest(checkpoints: list[dict[str, Any]], lineage: str) -> dict[str, Any] | None:
    mine = [c for c in checkpoints if lineage_of(c) == lineage]
    if not mine:
        return None
    return max(mine, key=lambda c: (c.get("stepNumber", 0), c["_mtime"]))


def duplicate_steps(checkpoints: list[dict[str, Any]]) -> dict[str, list[int]]:
    steps: dict[str, list[int]] = {}
    for checkpoint in checkpoints:
        steps.setdefault(lineage_of(checkpoint), []).append(checkpoint.get("stepNumber", -1))
    return {
        lineage: sorted(numbers)
        for lineage, numbers in steps.items()
        if len(numbers) != len(set(numbers))
    }


def evidence(workspace: Path) -> Counter[str]:
    lines: Counter[str] = Counter()
    for name in STEPS:
        path = workspace / f"{name}.log"
        if path.exists():
            lines.update(line for line in path.read_text().splitlines() if line)
    return lines


@dataclass
class Integrity:
    corrupt: list[str] = field(default_factory=list)
    """``path: reason`` of each corrupt file."""
    torn: list[str] = field(default_factory=list)
    tmp: list[str] = field(default_factory=list)
    files: int = 0


def check_integrity(workspace: Path) -> Integrity:
    root = workspace / "perstack"
    result = Integrity()
    if not root.is_dir():
        return result
    storage = Storage(root)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = str(path.relative_to(workspace))
        result.files += 1
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            result.tmp.append(rel)
            continue
        raw = path.read_bytes()
        if path.name == "events.jsonl":
            lines = raw.split(b"\n")
            tail_torn = bool(lines and lines[-1])  # no newline after the last line
            for index, line in enumerate(lines):
                if not line.strip():
                    continue
                try:
                    json.loads(line)
                except ValueError:
                    if tail_torn and index == len(lines) - 1:
                        result.torn.append(rel)
                    else:
                        result.corrupt.append(f"{rel}: line {index + 1} is not JSON")
                        break
            continue
        if path.name == "job.lock":
            if raw.strip():
                try:
                    json.loads(raw)
                except ValueError:
                    result.corrupt.append(f"{rel}: not JSON")
            continue
        if path.suffix == ".json":
            try:
                json.loads(raw)
            except ValueError as exc:
                result.corrupt.append(f"{rel}: {exc}")
                continue
            job_id = path.relative_to(root / "jobs").parts[0] if "jobs" in path.parts else None
            try:
                if path.name == "job.json" and job_id:
                    storage.load_job(job_id)
                elif path.parent.name == "checkpoints" and job_id:
                    storage.load_checkpoint(job_id, path.stem)
            except PerstackError as exc:
                result.corrupt.append(f"{rel}: {exc}")
            continue
        result.corrupt.append(f"{rel}: unexpected file")
    return result


# One case ---------------------------------------------------------------------------------------


@dataclass
class Moment:
    kind: str
    """time, request, line or event."""
    value: float
    """Seconds (time), request number (request), stdout line number (line), occurrence
    (event)."""
    extra: float = 0.0
    """request: seconds after the request arrived."""
    event: str = ""
    """event: ``type:expertKey`` of the event after which to kill."""

    def describe(self) -> str:
        if self.kind == "time":
            return f"{self.value:.3f} s after start"
        if self.kind == "request":
            return f"{self.extra * 1000:.0f} ms after request #{int(self.value)}"
        if self.kind == "event":
            return f"after event {self.event} #{int(self.value)}"
        return f"at stdout line #{int(self.value)}"


@dataclass
class Reference:
    wall: float
    lines: int
    requests: int
    events: list[str]
    """``type:expertKey`` of each stdout event but the text/reasoning deltas, in order."""


def event_key(line: str) -> str | None:
    """``type:expertKey`` of a stdout line (None: a delta or not JSON)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    kind = event.get("type") if isinstance(event, dict) else None
    if kind is None or kind in ("streamRunResult", "streamReasoning"):
        return None
    return f"{kind}:{event.get('expertKey')}"


def draw_moment(rng: random.Random, reference: Reference) -> Moment:
    kind = rng.choice(["time", "request", "line", "event"])
    if kind == "time":
        return Moment("time", rng.uniform(0, TIME_KILL_FRACTION * reference.wall))
    if kind == "request":
        return Moment("request", rng.randint(1, reference.requests), rng.uniform(0, 0.1))
    if kind == "event":
        index = rng.randrange(len(reference.events))
        key = reference.events[index]
        return Moment("event", reference.events[: index + 1].count(key), event=key)
    return Moment("line", rng.randint(1, reference.lines))


@dataclass
class CaseResult:
    case: int
    seed: str
    kind: str = ""
    moment: str = ""
    attempts: int = 0
    landed: bool = False
    """The kill hit the run once its job existed (perstack/jobs/<id>/)."""
    missed: int = 0
    """Moments redrawn because the run had exited before the kill."""
    before_job: int = 0
    """Moments redrawn because the kill came before the job existed (nothing to continue)."""
    where: str = ""
    """Category of the kill moment, from what was stored at the kill."""
    detail: str = ""
    completed: bool = False
    problems: list[str] = field(default_factory=list)
    redone: list[str] = field(default_factory=list)
    """``lineage step k: class (how)`` per redone step."""
    redone_checkpointed: int = 0
    redone_effect_only: int = 0
    repeated_elsewhere: int = 0
    extra_requests: int = 0
    duplicate_steps: dict[str, list[int]] = field(default_factory=dict)
    corrupt: list[str] = field(default_factory=list)
    torn: int = 0
    tmp: int = 0
    kill_wall: float = 0.0
    continue_wall: float = 0.0
    case_wall: float = 0.0
    workspace: str = ""


def first_run(
    case_seed: str, moment: Moment | None, workspace: Path
) -> tuple[Launch, FakeLLM, list[Asked]]:
    """Start the job; kill it at ``moment`` (None: let it finish)."""
    holder: list[Launch] = []
    fake_box: list[FakeLLM] = []

    def on_request(number: int) -> None:
        if moment is None or moment.kind != "request" or number != int(moment.value):
            return
        launch, fake = holder[0], fake_box[0]
        timer = threading.Timer(moment.extra, lambda: launch.kill(requests=len(fake.requests)))
        timer.daemon = True
        timer.start()

    seen: Counter[str] = Counter()

    def on_line(count: int, line: str) -> None:
        if moment is None:
            return
        if moment.kind == "line" and count == int(moment.value):
            holder[0].kill(requests=len(fake_box[0].requests))
        elif moment.kind == "event" and (key := event_key(line)) is not None:
            seen[key] += 1
            if key == moment.event and seen[key] == int(moment.value):
                holder[0].kill(requests=len(fake_box[0].requests))

    fake = FakeLLM(default=make_reply(case_seed, 1, on_request))
    fake_box.append(fake)
    launch = Launch(run_command(), workspace, child_env(fake), holder=holder, on_line=on_line)
    timer = None
    if moment is not None and moment.kind == "time":
        timer = threading.Timer(moment.value, lambda: launch.kill(requests=len(fake.requests)))
        timer.daemon = True
        timer.start()
    launch.wait()
    if timer is not None:
        timer.cancel()
    fake.close()
    return launch, fake, [parse_request(body) for body in list(fake.requests)]


def check_nothing_to_continue(workspace: Path, result: CaseResult) -> None:
    """A job killed before it existed: ``--continue`` must refuse, and store nothing."""
    fake = FakeLLM(default=make_reply(result.seed, 2, lambda _n: None))
    resumed = Launch(run_command("--continue", query=CONTINUE_QUERY), workspace, child_env(fake))
    resumed.wait()
    fake.close()
    jobs = list((workspace / "perstack" / "jobs").glob("*"))
    if resumed.returncode != 2 or "No jobs found" not in resumed.stderr or jobs or fake.requests:
        result.problems.append(
            f"killed before its job existed, --continue exit {resumed.returncode} "
            f"({resumed.stderr[-300:].strip()!r}), {len(jobs)} jobs, {len(fake.requests)} "
            "requests: expected exit 2 'No jobs found', no job, no request"
        )


CATEGORIES = [
    "before the first checkpoint (no request yet)",
    "before the first checkpoint",
    "delegates running",
    "both delegates done, lead not resumed",
    "lead's final step",
    "after lead's completeRun was stored",
]


def classify(checkpoints: list[dict[str, Any]], requests: int) -> tuple[str, str]:
    """Where the kill landed, from the checkpoints stored at that moment."""
    done = progress(checkpoints)
    lead = latest(checkpoints, LEAD)
    parts = [f"{LEAD} {done.get(LEAD, 0)}/{LEAD_GENERATIONS}"]
    delegates_done = 0
    for name, steps in STEPS.items():
        lineages = [k for k in done if k.startswith(f"{name}:")]
        stored = max((done[k] for k in lineages), default=0)
        parts.append(f"{name} {stored}/{steps + 1}")
        delegates_done += stored == steps + 1
    detail = "checkpointed generations " + ", ".join(parts) + f"; {requests} requests received"
    if not checkpoints:
        where = "before the first checkpoint"
        if requests == 0:
            where += " (no request yet)"
    elif lead is None:
        where = "delegates running, lead checkpoint missing (!)"
    elif lead.get("status") == "completed":
        where = "after lead's completeRun was stored"
    elif lead.get("status") == "stoppedByDelegate":
        where = (
            "both delegates done, lead not resumed"
            if delegates_done == len(STEPS)
            else "delegates running"
        )
    else:
        where = "lead's final step"
    return where, detail


def last_events(launch: Launch, count: int | None, n: int = 3) -> str:
    events = launch.events()[: count if count is not None else len(launch.lines)]
    tail = [
        f"{e.get('type')}:{e.get('expertKey')}@{e.get('stepNumber')}"
        if e.get("expertKey")
        else str(e.get("type"))
        for e in events[-n:]
    ]
    return " → ".join(tail) or "(no stdout yet)"


def run_case(
    case: int, seed: int, reference: Reference, keep: Path | None, verbose: bool
) -> CaseResult:
    case_seed = f"{seed}:{case}"
    rng = random.Random(case_seed)
    result = CaseResult(case=case, seed=case_seed)
    started = time.monotonic()
    workspace = Path()
    launch: Launch | None = None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        moment = draw_moment(rng, reference)
        workspace = new_workspace()
        launch, _fake, _asked = first_run(case_seed, moment, workspace)
        result.attempts = attempt
        result.kind, result.moment = moment.kind, moment.describe()
        if launch.returncode == -signal.SIGKILL and launch.kill_time is not None:
            if any(p.is_dir() for p in (workspace / "perstack" / "jobs").glob("*")):
                result.landed = True
                break
            # Killed before the job existed: nothing is stored, so there is nothing to continue.
            result.before_job += 1
            check_nothing_to_continue(workspace, result)
        elif launch.returncode != 0:
            result.problems.append(
                f"the first run ended with exit {launch.returncode} before the kill: "
                f"{launch.stderr[-400:].strip()}"
            )
            break
        else:
            result.missed += 1  # the run had finished before the kill
        if attempt == MAX_ATTEMPTS:
            result.problems.append(f"no kill landed on a live job in {MAX_ATTEMPTS} attempts")
            break
        shutil.rmtree(workspace, ignore_errors=True)
    assert launch is not None
    result.kill_wall = launch.wall
    result.moment += f" (landed {launch.kill_time:.3f} s)" if launch.kill_time is not None else ""

    # What the kill left.
    before = read_checkpoints(workspace)
    done_before = progress(before)
    lines_before = evidence(workspace)
    integrity_before = check_integrity(workspace)
    results_before = stored_tool_results(workspace)
    tmp_before = tmp_checkpoints(workspace)
    # The runtime rebuilds the step after a lineage's latest checkpoint from its stored
    # callTools/resolveToolResults events: such a step is done too, and asking for it again
    # would be a redo.
    # (also a delegate's first step, from its startRun and those events).
    lineages = {f"{name}:call_p1_{name}" for name in STEPS} | set(done_before)
    for lineage in lineages:
        done = done_before.get(lineage, 0)
        call_id = lineage.partition(":")[2]
        if call_id and f"{call_id}_s{done + 1}_p1" in results_before:
            done_before[lineage] = done + 1
    result.where, result.detail = classify(before, launch.kill_request_count or 0)
    result.detail += f"; last stdout: {last_events(launch, launch.kill_line_count)}"

    # The continuation.
    fake = FakeLLM(default=make_reply(case_seed, 2, lambda _n: None))
    resumed = Launch(run_command("--continue", query=CONTINUE_QUERY), workspace, child_env(fake))
    resumed.wait()
    fake.close()
    asked = [parse_request(body) for body in list(fake.requests)]
    result.continue_wall = resumed.wall

    after = read_checkpoints(workspace)
    lines_after = evidence(workspace)
    integrity_after = check_integrity(workspace)

    # Completed?
    problems = result.problems
    events = resumed.events()
    if resumed.timed_out:
        problems.append(f"continuation hung ({TIMEOUT:.0f} s)")
    elif resumed.returncode != 0:
        problems.append(f"continuation exit {resumed.returncode}: {resumed.stderr[-600:].strip()}")
    run_events = [e for e in events if e.get("expertKey")]
    last = run_events[-1] if run_events else {}
    if (last.get("type"), last.get("expertKey")) != ("completeRun", LEAD):
        problems.append(f"last run event is {last.get('type')}:{last.get('expertKey')}")
    jobs = list((workspace / "perstack" / "jobs").glob("*/job.json"))
    statuses = []
    for path in jobs:
        try:
            statuses.append(json.loads(path.read_text()).get("status"))
        except ValueError:
            statuses.append("<unreadable>")
    if statuses != ["completed"]:
        problems.append(f"job.json statuses {statuses}, expected ['completed']")
    lead_requests = [a for a in asked if a.expert == LEAD]
    used: dict[str, str] = {}
    if lead_requests:
        final = lead_requests[-1]
        for name in STEPS:
            found = [
                m.group(1)
                for text in final.tool_texts
                if (m := re.fullmatch(rf"{name} done \[lineage ([A-Za-z0-9_]+)\]", text.strip()))
            ]
            if len(found) != 1:
                problems.append(f"lead's last request lacks {name}'s result: {final.tool_texts}")
            else:
                used[name] = found[0]
    else:
        problems.append("lead made no request after the continue")
    for name, call_id in used.items():
        for step in range(1, STEPS[name] + 1):
            if lines_after[evidence_line(name, step, call_id)] == 0:
                problems.append(f"{name} step {step} [{call_id}] never ran (evidence missing)")
    for a in asked:
        if a.expert == LEAD and a.assistants == 0 and not any(QUERY in u for u in a.users):
            problems.append(f"lead restarted without its query {QUERY!r}: users {a.users}")
    if any(a.expert == "?" or a.lineage.endswith(":?") for a in asked):
        problems.append("a request the fake could not attribute")
    result.completed = not problems

    # Redone steps.
    redone: dict[tuple[str, int], str] = {}
    for a in asked:
        step = a.assistants + 1
        if step <= done_before.get(a.lineage, 0):
            redone[(a.lineage, step)] = "checkpointed (generation asked again)"
    for line, count in lines_after.items():
        match = EVIDENCE_RE.match(line)
        if count <= 1 or not match:
            continue
        name, step, call_id = match.group(1), int(match.group(2)), match.group(3)
        lineage = f"{name}:{call_id}"
        if lines_before[line] >= 1 and count > lines_before[line]:
            if step <= done_before.get(lineage, 0):
                redone.setdefault((lineage, step), "checkpointed (tool ran again)")
            else:
                notes = []
                if f"{call_id}_s{step}_p1" in results_before:
                    notes.append("its result was in a stored resolveToolResults event")
                if tmp_before.get(lineage, 0) >= step:
                    notes.append("its checkpoint was whole in a .tmp file, not yet renamed")
                redone.setdefault(
                    (lineage, step),
                    "effect-only (tool ran before the kill, no checkpoint"
                    + "".join(f"; {note}" for note in notes)
                    + ")",
                )
        else:
            result.repeated_elsewhere += count - 1
            where = "before the kill" if lines_before[line] > 1 else "within the continuation"
            problems.append(f"evidence line {line!r} written {count} times ({where})")
    result.redone = [f"{lineage} step {step}: {how}" for (lineage, step), how in redone.items()]
    result.redone_checkpointed = sum(how.startswith("checkpointed") for how in redone.values())
    result.redone_effect_only = sum(how.startswith("effect-only") for how in redone.values())

    # Requests beyond what the stored checkpoints leave to do.
    expected = 0
    lead_done = done_before.get(LEAD, 0)
    expected += 1 if lead_done >= LEAD_GENERATIONS else LEAD_GENERATIONS - lead_done
    for name, call_id in used.items():
        expected += STEPS[name] + 1 - done_before.get(f"{name}:{call_id}", 0)
    result.extra_requests = len(asked) - expected
    if result.extra_requests < 0:
        problems.append(f"{-result.extra_requests} fewer requests than the steps left")
        result.completed = False

    result.duplicate_steps = duplicate_steps(after)
    result.corrupt = sorted(set(integrity_before.corrupt) | set(integrity_after.corrupt))
    result.torn = len(set(integrity_before.torn) | set(integrity_after.torn))
    result.tmp = len(set(integrity_before.tmp) | set(integrity_after.tmp))
    result.case_wall = time.monotonic() - started

    clean = (
        result.completed
        and not result.redone
        and not result.duplicate_steps
        and not result.corrupt
        and not result.repeated_elsewhere
    )
    if verbose or not clean:
        result.detail += (
            f"; continuation: {len(asked)} requests "
            f"({', '.join(f'{a.lineage}#{a.assistants + 1}' for a in asked)})"
        )
    if keep is not None and not clean:
        target = keep / f"case-{case:03d}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(workspace, target, symlinks=True)
        (target / "stdout-killed.jsonl").write_text("".join(launch.lines))
        (target / "stdout-continue.jsonl").write_text("".join(resumed.lines))
        (target / "stderr-continue.txt").write_text(resumed.stderr)
        result.workspace = str(target)
    shutil.rmtree(workspace, ignore_errors=True)
    return result


def reference_run() -> Reference:
    """One uninterrupted run: the time and line scales of the kill moments, and a sanity check."""
    workspace = new_workspace()
    try:
        launch, _fake, asked = first_run("reference", None, workspace)
        if launch.returncode != 0:
            raise RuntimeError(f"reference run exit {launch.returncode}: {launch.stderr[-800:]}")
        events = launch.events()
        run_events = [e for e in events if e.get("expertKey")]
        if (run_events[-1].get("type"), run_events[-1].get("expertKey")) != ("completeRun", LEAD):
            raise RuntimeError("reference run did not end with lead's completeRun")
        if len(asked) != TOTAL_REQUESTS:
            raise RuntimeError(f"reference run made {len(asked)} requests, not {TOTAL_REQUESTS}")
        lines = evidence(workspace)
        wanted = {
            evidence_line(name, step, f"call_p1_{name}")
            for name, steps in STEPS.items()
            for step in range(1, steps + 1)
        }
        if set(lines) != wanted or any(count != 1 for count in lines.values()):
            raise RuntimeError(f"reference run evidence is {dict(lines)}")
        checkpoints = read_checkpoints(workspace)
        if duplicate_steps(checkpoints) or check_integrity(workspace).corrupt:
            raise RuntimeError("reference run: duplicate step numbers or corrupt files")
        keys = [key for line in launch.lines if (key := event_key(line)) is not None]
        return Reference(
            wall=launch.wall, lines=len(launch.lines), requests=len(asked), events=keys
        )
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


# Report -----------------------------------------------------------------------------------------


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def summarize(results: list[CaseResult]) -> dict[str, Any]:
    n = len(results)
    completed = sum(r.completed for r in results)
    redone_total = sum(len(r.redone) for r in results) + sum(r.repeated_elsewhere for r in results)
    dups = sum(len(v) - len(set(v)) for r in results for v in r.duplicate_steps.values())
    corrupt = sum(len(r.corrupt) for r in results)
    return {
        "cases": n,
        "landed": sum(r.landed for r in results),
        "missed_kills": sum(r.missed for r in results),
        "kills_before_job": sum(r.before_job for r in results),
        "completed": completed,
        "completed_pct": round(100 * completed / n, 1) if n else 0.0,
        "redone_steps": redone_total,
        "redone_cases": sum(bool(r.redone or r.repeated_elsewhere) for r in results),
        "redone_checkpointed": sum(r.redone_checkpointed for r in results),
        "redone_effect_only": sum(r.redone_effect_only for r in results),
        "repeated_elsewhere": sum(r.repeated_elsewhere for r in results),
        "extra_requests": sum(max(r.extra_requests, 0) for r in results),
        "duplicate_step_numbers": dups,
        "corrupt_files": corrupt,
        "torn_last_lines": sum(r.torn for r in results),
        "stray_tmp_files": sum(r.tmp for r in results),
        "case_wall_median": statistics.median(r.case_wall for r in results) if results else 0,
        "kill_run_wall_median": statistics.median(r.kill_wall for r in results) if results else 0,
        "continue_wall_median": (
            statistics.median(r.continue_wall for r in results) if results else 0
        ),
        "where": dict(Counter(r.where for r in results).most_common()),
        "targets": {
            "completed_100pct": completed == n and n > 0,
            "zero_redone": redone_total == 0,
            "zero_corrupt": corrupt == 0,
            "zero_duplicate_step_numbers": dups == 0,
        },
    }


def print_report(
    summary: dict[str, Any], results: list[CaseResult], reference: Reference, seed: int
) -> None:
    n = summary["cases"]
    print()
    print(
        f"Crash resume: {n} cases, seed {seed}; kills landed on a live job {summary['landed']}/{n}"
    )
    print(
        f"Moments redrawn: {summary['kills_before_job']} killed before the job existed "
        "(nothing stored; --continue must say 'No jobs found', exit 2, and store nothing: "
        f"checked), {summary['missed_kills']} after the run had exited"
    )
    print(
        f"Reference (uninterrupted) run: {reference.wall:.3f} s, {reference.requests} model "
        f"requests, {reference.lines} stdout lines"
    )
    print("Kill moments, by what was stored at the kill:")
    counts = dict(summary["where"])
    for where in [*CATEGORIES, *(w for w in counts if w not in CATEGORIES)]:
        print(f"  {where:<48}{counts.get(where, 0):>5}")
    kinds = Counter(r.kind for r in results)
    print(
        f"  (kinds of moment: {kinds['time']} time, {kinds['request']} after a request, "
        f"{kinds['line']} at a stdout line, {kinds['event']} after an event)"
    )
    print()
    print("Definitions:")
    print(DEFINITIONS)
    print()
    t = summary["targets"]
    rows = [
        (
            "completed",
            f"{summary['completed']}/{n} ({summary['completed_pct']:.1f} %)",
            "100 %",
            met(t["completed_100pct"]),
        ),
        (
            "completed steps redone",
            f"{summary['redone_steps']} in {summary['redone_cases']} cases",
            "0",
            met(t["zero_redone"]),
        ),
        ("  checkpointed step redone", str(summary["redone_checkpointed"]), "", ""),
        ("  effect-only (tool ran, no checkpoint)", str(summary["redone_effect_only"]), "", ""),
        ("  line written twice otherwise", str(summary["repeated_elsewhere"]), "", ""),
        ("requests beyond the checkpoints", str(summary["extra_requests"]), "", ""),
        (
            "duplicate step numbers",
            str(summary["duplicate_step_numbers"]),
            "0",
            met(t["zero_duplicate_step_numbers"]),
        ),
        ("corrupt files", str(summary["corrupt_files"]), "0", met(t["zero_corrupt"])),
        ("torn last lines (tolerated)", str(summary["torn_last_lines"]), "", ""),
        ("stray .tmp files (tolerated)", str(summary["stray_tmp_files"]), "", ""),
        (
            "time per case, median",
            f"{summary['case_wall_median']:.2f} s (kill run "
            f"{summary['kill_run_wall_median']:.2f} s, continue "
            f"{summary['continue_wall_median']:.2f} s)",
            "",
            "",
        ),
    ]
    header = f"{'measure':<40}{'value':<44}{'target':<8}met"
    print(header)
    print("-" * len(header))
    for label, value, target, ok in rows:
        print(f"{label:<40}{value:<44}{target:<8}{ok}")
    overall = t["completed_100pct"] and t["zero_redone"] and t["zero_corrupt"]
    print()
    print(
        f"Target (100 % completed / 0 completed steps redone / 0 corrupt files): {met(overall)}"
        + (
            " (the only misses are effect-only repeats: kills between a tool's effect and its "
            "step's checkpoint)"
            if not overall
            and t["completed_100pct"]
            and t["zero_corrupt"]
            and summary["redone_steps"] == summary["redone_effect_only"]
            else ""
        )
    )
    bad = [
        r
        for r in results
        if not r.completed or r.redone or r.duplicate_steps or r.corrupt or r.repeated_elsewhere
    ]
    if bad:
        print()
        print(f"{len(bad)} case(s) off target:")
        for r in bad:
            print(f"  case {r.case} (seed {r.seed!r}): kill {r.moment}; {r.where}")
            print(f"      {r.detail}")
            for line in r.redone:
                print(f"      redone: {line}")
            for problem in r.problems:
                print(f"      problem: {problem[:300]}")
            for lineage, steps in r.duplicate_steps.items():
                print(f"      duplicate step numbers: {lineage} {steps}")
            for corrupt in r.corrupt:
                print(f"      corrupt: {corrupt}")
            if r.workspace:
                print(f"      kept: {r.workspace}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="kill moments (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the moments (default 0)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument(
        "--only", help="comma-separated case numbers to run (reproduce a case of a larger run)"
    )
    parser.add_argument("--keep", type=Path, help="copy the workspace of off-target cases here")
    parser.add_argument("--verbose", action="store_true", help="print every case")
    args = parser.parse_args()

    cases = [int(c) for c in args.only.split(",") if c.strip()] if args.only else range(args.runs)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    try:
        reference = reference_run()
    except Exception as exc:
        print(f"reference run FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"reference run ok: {reference.wall:.3f} s, {reference.lines} stdout lines")
    results: list[CaseResult] = []
    crashes: list[str] = []
    for case in cases:
        try:
            result = run_case(case, args.seed, reference, args.keep, args.verbose)
        except Exception:
            crashes.append(f"case {case}: {traceback.format_exc()}")
            print(f"case {case}: HARNESS CRASH\n{crashes[-1]}", file=sys.stderr, flush=True)
            continue
        results.append(result)
        off = (
            not result.completed
            or result.redone
            or result.duplicate_steps
            or result.corrupt
            or result.repeated_elsewhere
        )
        mark = "ok" if not off else "OFF"
        if args.verbose or off:
            print(f"case {case:3d} {mark}: {result.moment}; {result.where}", flush=True)
            if args.verbose:
                print(f"    {result.detail}", flush=True)
        elif (case + 1) % 10 == 0:
            print(f"case {case:3d} ok ({len(results)} done)", flush=True)

    summary = summarize(results)
    print_report(summary, results, reference, args.seed)
    if crashes:
        print()
        print(f"{len(crashes)} case(s) crashed the harness:")
        for crash in crashes:
            print(f"  {crash.splitlines()[0]}")
    if args.json:
        print()
        print(
            json.dumps(
                {
                    "seed": args.seed,
                    "reference": asdict(reference),
                    "summary": summary,
                    "cases": [asdict(r) for r in results],
                    "harness_crashes": crashes,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
