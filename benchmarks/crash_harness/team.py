"""The crash-resume benchmark's team: its perstack.toml, the fake model's replies, launching
``perstack run`` and reading back what a killed job left on disk (see ``crash_resume.py``).

The files are read raw, on purpose: the harness checks the storage itself (torn or temporary
files included), not what the jobs API makes of it.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
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
