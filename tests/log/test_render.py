"""Exact text output, time zones, colour rules and import hygiene."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from datetime import UTC, timedelta, timezone
from pathlib import Path

import pytest

from runtime.log.cli import main
from runtime.log.render import format_time, format_timestamp, use_color
from runtime.schema.checkpoint import Usage
from tests.log.conftest import JobBuilder, log

GOLDEN = """\
(showing latest job)
Storage: {root}
Job: job1 (completed)
Expert: lead
Started: 2026-01-01 00:00:00
Steps: 2
Finished: 2026-01-01 00:00:20
Usage: 300 tokens (input 270, output 30, reasoning 0, cached input 0), $0.0300

Delegation tree:
{lead_line}
  └── @team/designer  stoppedByError  step 2  0 tokens  run run-designer

Summary:
  Total Events: 20
  Errors: 2
  Tool Calls: 3
  Delegations: 1
  Step Range: 1 - 2
  Runs: 3

Events:
──────────────────────────────────────────────────
[Step -] initializeRuntime       00:00:01  lead
  Expert: lead  Model: scripted

[Step -] skillConnected          00:00:02  lead
  Skill: @perstack/base

[Step 1] startRun                00:00:03  lead
  Query: "Plan a small platform game with three levels and a boss at t..."

[Step 1] startGeneration         00:00:04  lead

[Step 1] callTools               00:00:05  lead
  [@perstack/base] readTextFile
    Args: {{"path": "readTextFile.txt"}}
  [@perstack/base] listDirectory
    Args: {{"path": "listDirectory.txt"}}

[Step 1] resolveToolResults      00:00:06  lead
  ✗ readTextFile: Error: notes.md does not exist
  ✓ listDirectory: src/ main.ts README.md package.json tsco...

[Step 2] startGeneration         00:00:07  lead

[Step 2] callDelegate            00:00:08  lead
  Delegate to: @team/designer "Design three levels"

[Step 2] stopRunByDelegate       00:00:09  lead
  Waiting for: @team/designer

[Step -] initializeRuntime       00:00:10  @team/designer
  Expert: @team/designer  Model: scripted

[Step -] skillConnected          00:00:11  @team/designer
  Skill: @perstack/base

[Step 2] startRun                00:00:12  @team/designer
  Query: "Design three levels"
  Delegated by: lead (run run-lead-1)

[Step 2] startGeneration         00:00:13  @team/designer

[Step 2] retry                   00:00:14  @team/designer
  Reason: RateLimitError: slow down

[Step 2] stopRunByError          00:00:15  @team/designer
  Error: AuthenticationError
  Message: Invalid API key
  Retryable: false

[Step -] initializeRuntime       00:00:16  lead
  Expert: lead  Model: scripted

[Step -] skillConnected          00:00:17  lead
  Skill: @perstack/base

[Step 2] startRun                00:00:18  lead
  Resumed from: stoppedByDelegate (step 2)

[Step 2] startGeneration         00:00:19  lead

[Step 2] completeRun             00:00:20  lead
  Result: The designer failed; here is a plan I wrote myself: level 1 forest, level 2 cave...

──────────────────────────────────────────────────
"""


def build_small_team(root: Path) -> JobBuilder:
    b = JobBuilder(root)
    lead = b.start(
        "run-lead-1",
        "lead",
        "Plan a small platform game with three levels and a boss at the end of each one",
    )
    lead.tools(
        "readTextFile",
        "listDirectory",
        results={
            "readTextFile": "Error: notes.md does not exist",
            "listDirectory": "src/ main.ts README.md package.json tsconfig.json and more",
        },
    )
    ((tool_call, stopped),) = lead.delegate(("@team/designer", "Design three levels"))
    designer = b.start(
        "run-designer",
        "@team/designer",
        "Design three levels",
        delegated_by=(lead, tool_call, stopped),
    )
    designer.error("AuthenticationError", "Invalid API key")
    b.start("run-lead-2", "lead", resume=lead).complete(
        "The designer failed; here is a plan I wrote myself: level 1 forest, level 2 caves,"
        " level 3 castle."
    )
    b.store_job(
        "completed",
        "lead",
        Usage(input_tokens=270, output_tokens=30, total_tokens=300, cost_usd=0.03),
    )
    return b


def test_golden_text_output(tmp_path: Path) -> None:
    b = build_small_team(tmp_path / "perstack")
    result = log(b.root, "--summary", "--verbose")
    assert result.err == ""
    lead_line = (
        "  lead  completed  steps 1-2  300 tokens, $0.0300  (with delegates: 2 steps, 300 tokens,"
        " $0.0300)  runs run-lead-1, run-lead-2"
    )
    assert result.out == GOLDEN.format(root=b.root, lead_line=lead_line)


def test_times_use_the_given_time_zone(tmp_path: Path) -> None:
    b = build_small_team(tmp_path / "perstack")
    out = io.StringIO()
    main(["--storage", str(b.root)], stdout=out, tz=timezone(timedelta(hours=9)))
    assert "Started: 2026-01-01 09:00:00" in out.getvalue()
    assert "[Step 1] startRun                09:00:03" in out.getvalue()


def test_times_default_to_the_local_time_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = build_small_team(tmp_path / "perstack")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        out = io.StringIO()
        main(["--storage", str(b.root)], stdout=out)
        assert "Started: 2025-12-31 19:00:00" in out.getvalue()
    finally:
        monkeypatch.undo()
        time.tzset()


def test_format_helpers() -> None:
    assert format_timestamp(0, UTC) == "1970-01-01 00:00:00"
    assert format_time(3_723_000, UTC) == "01:02:03"


class Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_use_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_color(Stream(tty=True)) is True
    assert use_color(Stream(tty=False)) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(Stream(tty=True)) is False
    # An empty NO_COLOR does not count (https://no-color.org).
    monkeypatch.setenv("NO_COLOR", "")
    assert use_color(Stream(tty=True)) is True


def test_colour_marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    b = build_small_team(tmp_path / "perstack")
    out = Stream(tty=True)
    main(["--storage", str(b.root)], stdout=out, tz=UTC)
    text = out.getvalue()
    assert "\x1b[31m✗\x1b[0m readTextFile" in text
    assert "\x1b[32m✓\x1b[0m listDirectory" in text
    assert "\x1b[31mstopRunByError" in text
    assert "Job:\x1b[0m job1 (\x1b[32mcompleted\x1b[0m)" in text


def test_terminal_event_types_are_every_stop_and_the_completion() -> None:
    from runtime.log.query import known_event_types
    from runtime.schema.events import TERMINAL_EVENT_TYPES

    stops = {name for name in known_event_types() if name.startswith("stopRunBy")}
    assert len(stops) == 4
    assert TERMINAL_EVENT_TYPES == stops | {"completeRun"}


def test_log_imports_stay_light() -> None:
    probe = (
        "import sys\nfrom runtime.log.cli import main\n"
        "print(' '.join(m for m in ('litellm', 'textual', 'rich', 'studio',"
        " 'runtime.schema.events', 'runtime.engine.runner', 'httpx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "View execution history" in text  # Perstack's wording for the command
    for option in (
        "--job",
        "--run",
        "--checkpoint",
        "--messages",
        "--storage",
        "--step",
        "--type",
        "--errors",
        "--tools",
        "--delegations",
        "--filter",
        "--take",
        "--offset",
        "--context",
        "--json",
        "--pretty",
        "--verbose",
        "--summary",
    ):
        assert option in text


def test_benchmark_generator_produces_a_readable_job(tmp_path: Path) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "log_summary.py"
    spec = importlib.util.spec_from_file_location("log_summary_bench", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    root = tmp_path / "perstack"
    job_id = module.generate(root, 400, steps_per_child=5)
    data = log(root, "--summary", "--json").json()
    assert data["job"]["id"] == job_id
    assert data["summary"]["totalEvents"] == 400
    (tree,) = data["delegationTree"]
    assert tree["totalUsage"]["totalTokens"] == data["job"]["usage"]["totalTokens"]
