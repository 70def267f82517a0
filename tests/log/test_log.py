"""``perstack log`` on jobs produced by the real runtime: every option, text and JSON output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runtime.log.render import RULE
from tests.log.conftest import FakeTerminal, RealJobs, events_of, log, types_of

STEP_LINE = re.compile(r"^\[Step (\d+|-)\] (\S+)\s+(\d\d:\d\d:\d\d)")
ANSI = re.compile(r"\x1b\[")


def event_headers(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in map(STEP_LINE.match, text.splitlines()) if m]


# default view and header --------------------------------------------------------------------


def test_default_shows_the_latest_job_with_header_and_events(real_jobs: RealJobs) -> None:
    result = log(real_jobs.root)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "(showing latest job)"
    assert lines[1] == f"Storage: {real_jobs.root}"
    assert lines[2] == f"Job: {real_jobs.interactive} (completed)"
    assert lines[3] == "Expert: asker"
    assert re.fullmatch(r"Started: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[4])
    assert lines[5] == "Steps: 3"
    assert lines[6].startswith("Finished: ")
    assert lines[7].startswith("Usage: 30 tokens (input 20, output 10")
    assert "Events:" in lines
    start = lines.index("Events:")
    assert lines[start + 1] == RULE and len(RULE) == 50
    assert lines[-1] == RULE
    assert not ANSI.search(result.out)
    assert result.err == ""


def test_step_lines_have_perstack_layout(real_jobs: RealJobs) -> None:
    result = log(real_jobs.root, "--job", real_jobs.single)
    lines = result.out.splitlines()
    start_run = next(line for line in lines if "] startRun" in line)
    # "[Step N] " + type padded to 24 + HH:MM:SS
    assert re.fullmatch(r"\[Step 1\] startRun {16}\d\d:\d\d:\d\d", start_run)
    long_type = next(line for line in lines if "completeStreamingRunResult" in line)
    assert re.fullmatch(r"\[Step 3\] completeStreamingRunResult \d\d:\d\d:\d\d", long_type)
    runtime_event = next(line for line in lines if "initializeRuntime" in line)
    assert runtime_event.startswith("[Step -] initializeRuntime")


def test_single_expert_job_details(real_jobs: RealJobs) -> None:
    result = log(real_jobs.root, "--job", real_jobs.single)
    assert "(showing latest job)" not in result.out
    text = result.out
    assert f"Job: {real_jobs.single} (completed)" in text
    assert '  Query: "write a note please"' in text
    assert "  Tools: writeTextFile" in text
    assert re.search(r"  ✓ writeTextFile: \{\"path\":", text)
    # isError results get a cross even though the text does not start with "error".
    assert re.search(r"  ✗ readTextFile: \{\"error\":\"Error\",\"message\":\"File missing", text)
    # Newlines of the result are flattened into one line.
    assert "  Result: Done writing. Second line of the result." in text
    assert "Delegation tree:" not in text  # one run only
    assert event_headers(text)[0] == ("-", "initializeRuntime")


def test_previews_are_cut(real_jobs: RealJobs) -> None:
    text = log(real_jobs.root, "--job", real_jobs.single).out
    preview = next(line for line in text.splitlines() if "✓ writeTextFile:" in line)
    body = preview.split("writeTextFile: ", 1)[1]
    assert body.endswith("...") and len(body) == 43


def test_verbose_shows_skill_and_args(real_jobs: RealJobs) -> None:
    text = log(real_jobs.root, "--job", real_jobs.single, "--verbose").out
    assert "  [@perstack/base] writeTextFile" in text
    assert '    Args: {"path": "a.txt", "text": "hi"}' in text
    assert "  Tools: writeTextFile" not in text


def test_error_job(real_jobs: RealJobs) -> None:
    text = log(real_jobs.root, "--job", real_jobs.error).out
    assert f"Job: {real_jobs.error} (stoppedByError)" in text
    assert "  Reason: RateLimitError: slow down" in text
    assert "  Error: AuthenticationError\n  Message: bad key\n  Retryable: false" in text


def test_max_steps_job(real_jobs: RealJobs) -> None:
    text = log(real_jobs.root, "--job", real_jobs.max_steps).out
    assert f"Job: {real_jobs.max_steps} (stoppedByMaxSteps)" in text
    assert "stopRunByExceededMaxSteps" in text
    assert "  Stopped: the job reached its step limit (maxSteps)" in text


def test_interactive_stop_and_resume(real_jobs: RealJobs) -> None:
    text = log(real_jobs.root, "--job", real_jobs.interactive).out
    assert "  Interactive tool: [ask] askColor" in text
    assert "  Waiting for an answer to: askColor" in text
    assert '  Answer to askColor: "blue"' in text
    assert "  Resumed from: stoppedByInteractiveTool" in text
    # Two segments of one expert: listed as runs, not as a delegation.
    assert "Runs:\n  asker  completed  steps 1-3  30 tokens  runs " in text
    data = log(real_jobs.root, "--job", real_jobs.interactive, "--json").json()
    runs = data["runs"]
    assert [run["status"] for run in runs] == ["stoppedByInteractiveTool", "completed"]
    assert runs[1]["resumesRunId"] == runs[0]["runId"]
    assert runs[1]["initialStatus"] == "stoppedByInteractiveTool"
    assert [node["runIds"] for node in data["delegationTree"]] == [[r["runId"] for r in runs]]


# filters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("2", {2}),
        (">2", {3}),
        (">=2", {2, 3}),
        ("<2", {1}),
        ("<=2", {1, 2}),
        ("1-2", {1, 2}),
        ("2-2", {2}),
        (" 3 ", {3}),
    ],
)
def test_step_filter(real_jobs: RealJobs, step: str, expected: set[int]) -> None:
    result = log(real_jobs.root, "--job", real_jobs.single, "--step", step, "--json")
    assert {event["stepNumber"] for event in events_of(result)} == expected
    text = log(real_jobs.root, "--job", real_jobs.single, "--step", step).out
    assert {int(step) for step, _ in event_headers(text)} == expected


def test_step_filter_leaves_out_runtime_events(real_jobs: RealJobs) -> None:
    result = log(real_jobs.root, "--job", real_jobs.single, "--step", ">=1", "--json")
    assert "initializeRuntime" not in types_of(result)


def test_type_filter(real_jobs: RealJobs) -> None:
    result = log(real_jobs.root, "--job", real_jobs.single, "--type", "callTools", "--json")
    assert types_of(result) == ["callTools"] * 3


def test_errors_filter(real_jobs: RealJobs) -> None:
    result = log(real_jobs.root, "--job", real_jobs.error, "--errors", "--json")
    assert types_of(result) == ["retry", "stopRunByError"]


def test_tools_filter(real_jobs: RealJobs) -> None:
    result = log(real_jobs.root, "--job", real_jobs.interactive, "--tools", "--json")
    assert types_of(result) == ["callTools", "callInteractiveTool"]
    result = log(real_jobs.root, "--job", real_jobs.single, "--tools", "--json")
    assert set(types_of(result)) == {"callTools", "resolveToolResults"}


def test_delegations_filter(real_jobs: RealJobs) -> None:
    result = log(real_jobs.root, "--job", real_jobs.delegation, "--delegations", "--json")
    assert types_of(result) == [
        "callDelegate",
        "stopRunByDelegate",
        "callDelegate",
        "stopRunByDelegate",
    ]
    keys = [event["expertKey"] for event in events_of(result)]
    assert keys == ["lead", "lead", "@team/coder", "@team/coder"]


def test_filter_expression_with_fan_out(real_jobs: RealJobs) -> None:
    expression = '.toolCalls[].toolName == "writeTextFile"'
    result = log(real_jobs.root, "--job", real_jobs.single, "--filter", expression, "--json")
    events = events_of(result)
    assert [event["type"] for event in events] == ["callTools"]
    assert events[0]["toolCalls"][0]["args"] == {"path": "a.txt", "text": "hi"}


def test_json_events_carry_the_messages_the_stored_lines_refer_to(real_jobs: RealJobs) -> None:
    """Stored lines refer to checkpoint files for the conversation; --json puts it back."""
    job_dir = real_jobs.root / "jobs" / real_jobs.single
    raw = [
        json.loads(line)
        for path in job_dir.glob("runs/*/events.jsonl")
        for line in path.read_text().splitlines()
    ]
    stored_end = next(line for line in raw if line["type"] == "completeRun")
    assert "messagesRef" in stored_end["checkpoint"]

    events = events_of(log(real_jobs.root, "--job", real_jobs.single, "--json"))

    end = next(event for event in events if event["type"] == "completeRun")
    checkpoint_file = job_dir / "checkpoints" / f"{end['checkpoint']['id']}.json"
    assert end["checkpoint"]["messages"] == json.loads(checkpoint_file.read_text())["messages"]
    assert "messagesRef" not in json.dumps(events)
    generation = [event for event in events if event["type"] == "startGeneration"][-1]
    assert [m["type"] for m in generation["messages"]][:2] == ["instructionMessage", "userMessage"]


def test_filter_through_referenced_messages(real_jobs: RealJobs) -> None:
    expression = '.checkpoint.messages[].type == "toolMessage"'
    result = log(real_jobs.root, "--job", real_jobs.single, "--filter", expression, "--json")
    # Every step after the first tool call has a tool message in its checkpoint.
    assert types_of(result) == ["continueToNextStep", "continueToNextStep", "completeRun"]


@pytest.mark.parametrize(
    ("expression", "types"),
    [
        (".type == completeRun", ["completeRun"]),
        (".type == 'completeRun'", ["completeRun"]),
        (".toolResults[].isError == true", ["resolveToolResults"]),
        (".toolCalls[0].toolName == attemptCompletion", ["callTools"]),
        (".usage.totalTokens >= 15", ["callTools", "callTools", "callTools", "completeRun"]),
        (".stepNumber > 2", None),  # checked below: only step 3
        (
            '.text == "Done writing.\\nSecond line of the result."',
            ["completeStreamingRunResult", "completeRun"],
        ),
        (".checkpoint.status == completed", ["completeRun"]),
        (".nonexistent != 1", []),
        ('.usage.totalTokens == "15"', []),  # strict: a string is not a number
    ],
)
def test_filter_expressions(real_jobs: RealJobs, expression: str, types: list[str] | None) -> None:
    result = log(real_jobs.root, "--job", real_jobs.single, "--filter", expression, "--json")
    assert result.code == 0, result.err
    if types is None:
        assert {event["stepNumber"] for event in events_of(result)} == {3}
    else:
        assert types_of(result) == types


def test_filters_combine_in_order_then_page_then_context(real_jobs: RealJobs) -> None:
    # step -> type -> tools -> expression narrows; offset/take page the matches.
    args = ["--job", real_jobs.single, "--step", ">=1", "--tools", "--json"]
    everything = events_of(log(real_jobs.root, *args, "--take", "0"))
    # The last step's attemptCompletion has no resolveToolResults.
    assert [e["type"] for e in everything] == [
        "callTools",
        "resolveToolResults",
        "callTools",
        "resolveToolResults",
        "callTools",
    ]
    narrowed = log(
        real_jobs.root, *args, "--type", "callTools", "--filter", ".stepNumber >= 2"
    ).json()
    assert [e["stepNumber"] for e in narrowed["events"]] == [2, 3]
    assert narrowed["totalEventsBeforeLimit"] == 2
    paged = log(real_jobs.root, *args, "--offset", "1", "--take", "2").json()
    assert [e["id"] for e in paged["events"]] == [e["id"] for e in everything[1:3]]
    assert paged["totalEventsBeforeLimit"] == 5
    assert paged["matchedAfterPagination"] == 2
    # The summary counts every match, not just the page.
    assert paged["summary"]["totalEvents"] == 5


def test_no_data_found(real_jobs: RealJobs) -> None:
    result = log(real_jobs.root, "--job", real_jobs.single, "--type", "callDelegate")
    assert result.code == 0
    assert result.out.splitlines()[-1] == "No data found"
    assert "Events:" not in result.out
    data = log(real_jobs.root, "--job", real_jobs.single, "--type", "callDelegate", "--json").json()
    assert data["events"] == [] and data["totalEventsBeforeLimit"] == 0
    assert data["summary"]["totalEvents"] == 0 and "stepRange" not in data["summary"]


# paging and context ---------------------------------------------------------------------------


def test_take_and_offset(real_jobs: RealJobs) -> None:
    all_events = events_of(log(real_jobs.root, "--job", real_jobs.single, "--json"))
    total = len(all_events)
    result = log(real_jobs.root, "--job", real_jobs.single, "--take", "3", "--offset", "2")
    assert len(event_headers(result.out)) == 3
    assert f"(showing 3 of {total} matched events)" in result.out
    assert "Use --take N and --offset N to page through them (--take 0 shows all)." in result.out
    every = log(real_jobs.root, "--job", real_jobs.single, "--take", "0")
    assert len(event_headers(every.out)) == total
    assert "(showing" not in every.out
    beyond = log(real_jobs.root, "--job", real_jobs.single, "--offset", "999")
    assert "(no events on this page)" in beyond.out
    assert f"(showing 0 of {total} matched events)" in beyond.out


def test_default_take_is_100(real_jobs: RealJobs) -> None:
    result = log(real_jobs.root, "--job", real_jobs.single, "--take", "100", "--json").json()
    default = log(real_jobs.root, "--job", real_jobs.single, "--json").json()
    assert default["matchedAfterPagination"] == result["matchedAfterPagination"]


def test_context_adds_surrounding_events_after_paging(real_jobs: RealJobs) -> None:
    args = ["--job", real_jobs.error, "--type", "stopRunByError", "--context", "1"]
    text = log(real_jobs.root, *args).out
    headers = event_headers(text)
    assert [kind for _, kind in headers] == [
        "startGeneration",
        "stopRunByError",
        "skillDisconnected",
    ]
    assert "(showing 1 of 1 matched events (+2 context))" in text
    assert text.count("(context)") == 2
    data = log(real_jobs.root, *args, "--json").json()
    assert [e["type"] for e in data["events"]] == [
        "startGeneration",
        "stopRunByError",
        "skillDisconnected",
    ]
    context_ids = set(data["contextEventIds"])
    assert {e["type"] for e in data["events"] if e["id"] in context_ids} == {
        "startGeneration",
        "skillDisconnected",
    }
    assert data["totalEventsBeforeLimit"] == 1 and data["matchedAfterPagination"] == 1


def test_context_of_adjacent_matches_is_not_repeated(real_jobs: RealJobs) -> None:
    data = log(
        real_jobs.root, "--job", real_jobs.single, "--tools", "--context", "2", "--json"
    ).json()
    ids = [e["id"] for e in data["events"]]
    assert len(ids) == len(set(ids))


# summary ------------------------------------------------------------------------------------


def test_summary(real_jobs: RealJobs) -> None:
    # Three steps called one tool each: three tool calls made (issue 16, bug 4: the summary
    # counted the five tool events, the calls and their results, as calls).
    text = log(real_jobs.root, "--job", real_jobs.single, "--summary").out
    block = text.split("Summary:\n", 1)[1].split("\n\n", 1)[0]
    assert block.splitlines() == [
        "  Total Events: 20",
        "  Errors: 0",
        "  Tool Calls: 3",
        "  Delegations: 0",
        "  Step Range: 1 - 3",
        "  Runs: 1",
    ]
    summary = log(real_jobs.root, "--job", real_jobs.single, "--json").json()["summary"]
    assert summary == {
        "totalEvents": 20,
        "errorCount": 0,
        "toolCallCount": 5,  # Perstack's key keeps Perstack's meaning: tool events
        "delegationCount": 0,
        "stepRange": {"min": 1, "max": 3},
        "types": summary["types"],
        "toolCallsMade": 3,
        "delegationsMade": 0,
    }
    assert summary["types"]["callTools"] == 3


def test_summary_of_the_error_job(real_jobs: RealJobs) -> None:
    summary = log(real_jobs.root, "--job", real_jobs.error, "--json").json()["summary"]
    assert summary["errorCount"] == 2


# runs and checkpoints ---------------------------------------------------------------------------


def test_run_selects_one_segment(real_jobs: RealJobs) -> None:
    runs = log(real_jobs.root, "--job", real_jobs.delegation, "--json").json()["runs"]
    tester = next(run for run in runs if run["expertKey"] == "@team/tester")
    # Without --job the run is found in whichever job holds it.
    result = log(real_jobs.root, "--run", tester["runId"])
    assert result.code == 0, result.err
    assert f"Job: {real_jobs.delegation} (completed)" in result.out
    assert f"Run: {tester['runId']} (completed)" in result.out
    assert "Delegated by: @team/coder" in result.out
    assert set(re.findall(r"Expert: (\S+)", result.out)) >= {"@team/tester"}
    data = log(real_jobs.root, "--run", tester["runId"], "--json").json()
    assert {event["runId"] for event in data["events"]} == {tester["runId"]}
    assert data["run"]["expertKey"] == "@team/tester"
    assert "runs" not in data and "delegationTree" not in data


def test_checkpoint_header_and_messages(real_jobs: RealJobs) -> None:
    events = events_of(log(real_jobs.root, "--job", real_jobs.single, "--json"))
    complete = next(e for e in events if e["type"] == "completeRun")
    checkpoint_id = complete["checkpoint"]["id"]
    result = log(real_jobs.root, "--checkpoint", checkpoint_id)
    assert result.code == 0, result.err
    assert f"Checkpoint: {checkpoint_id}\nStatus: completed\nStep: 3\nExpert: writer" in result.out
    assert "Messages:" not in result.out
    with_messages = log(real_jobs.root, "--checkpoint", checkpoint_id, "--messages").out
    block = with_messages.split("Messages:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert block[0].startswith("  [instructionMessage] You are Perstack")
    assert len(block[0]) <= len("  [instructionMessage] ") + 103
    assert block[1] == "  [userMessage] write a note please"
    assert block[2] == "  [expertMessage] → writeTextFile"
    assert block[3].startswith("  [toolMessage] ← writeTextFile: ")
    assert block[-1] == "  [expertMessage] Done writing. Second line of the result."
    data = log(real_jobs.root, "--checkpoint", checkpoint_id, "--json").json()
    assert data["checkpoint"]["id"] == checkpoint_id
    assert data["run"]["runId"] == complete["runId"]


def test_job_json_includes_checkpoints(real_jobs: RealJobs) -> None:
    data = log(real_jobs.root, "--job", real_jobs.single, "--json").json()
    steps = [checkpoint["stepNumber"] for checkpoint in data["checkpoints"]]
    assert steps == sorted(steps) and len(steps) >= 3
    assert "checkpoints" not in log(real_jobs.root, "--json").json()


# JSON output ---------------------------------------------------------------------------------


def test_json_keys_are_stable(real_jobs: RealJobs) -> None:
    data = log(real_jobs.root, "--json").json()
    assert list(data) == [
        "job",
        "events",
        "summary",
        "isLatestJob",
        "storagePath",
        "totalEventsBeforeLimit",
        "matchedAfterPagination",
        "runs",
        "delegationTree",
    ]
    assert data["isLatestJob"] is True
    assert data["storagePath"] == str(real_jobs.root)
    assert data["job"]["id"] == real_jobs.interactive
    assert set(data["job"]) >= {"id", "status", "coordinatorExpertKey", "totalSteps", "usage"}
    run_keys = set(data["runs"][0])
    assert run_keys >= {
        "runId",
        "expertKey",
        "status",
        "parentRunId",
        "resumesRunId",
        "firstStep",
        "lastStep",
        "steps",
        "eventCount",
        "usage",
    }
    # Events are the stored objects, camelCase, untouched.
    assert all("type" in event and "timestamp" in event for event in data["events"])


def test_json_is_compact_and_pretty_is_indented(real_jobs: RealJobs) -> None:
    compact = log(real_jobs.root, "--json").out
    assert compact.count("\n") == 1 and '"job":{' in compact
    pretty = log(real_jobs.root, "--pretty").out
    assert pretty.startswith('{\n  "job": {\n    "')
    assert log(real_jobs.root, "--json", "--pretty").out == pretty


# colour --------------------------------------------------------------------------------------


def test_colour_on_a_terminal_unless_no_color(
    real_jobs: RealJobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC

    from runtime.log.cli import main

    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal = FakeTerminal()
    assert main(["--storage", str(real_jobs.root)], stdout=terminal, tz=UTC) == 0  # type: ignore[arg-type]
    coloured = "".join(terminal.parts)
    assert ANSI.search(coloured)
    monkeypatch.setenv("NO_COLOR", "1")
    plain = FakeTerminal()
    assert main(["--storage", str(real_jobs.root)], stdout=plain, tz=UTC) == 0  # type: ignore[arg-type]
    assert not ANSI.search("".join(plain.parts))
    # Same text once the escape codes are removed.
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == "".join(plain.parts)


def test_json_never_has_colour(real_jobs: RealJobs, monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.log.cli import main

    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal = FakeTerminal()
    main(["--storage", str(real_jobs.root), "--json"], stdout=terminal)  # type: ignore[arg-type]
    assert not ANSI.search("".join(terminal.parts))


# storage location -------------------------------------------------------------------------------


def test_storage_defaults_to_env_then_cwd(
    real_jobs: RealJobs, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import io
    from datetime import UTC

    from runtime.log.cli import main

    monkeypatch.setenv("PERSTACK_STORAGE_PATH", str(real_jobs.root))
    out = io.StringIO()
    assert main([], stdout=out, stderr=io.StringIO(), tz=UTC) == 0
    assert f"Storage: {real_jobs.root}" in out.getvalue()
    monkeypatch.delenv("PERSTACK_STORAGE_PATH")
    monkeypatch.chdir(tmp_path)
    err = io.StringIO()
    assert main([], stdout=io.StringIO(), stderr=err) == 0
    assert err.getvalue() == f"perstack log: No jobs found in {tmp_path / 'perstack'}\n"
