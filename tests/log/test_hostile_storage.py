"""Storage written to attack the reader: references out of the job folder, terminal escapes,
deeply nested and oversized JSON.

Each case is read like any other broken data: a reference that leaves the job folder is never
followed, stored control characters are shown and never executed, and a line that cannot be
decoded is skipped with a warning naming its file and line (exit code 0, as for corrupt lines).
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from runtime.jobs.store import MAX_NESTING, MAX_STORED_BYTES
from runtime.log.cli import main
from tests.log.conftest import FakeTerminal, JobBuilder, Outcome, log

MARKER = "MARKER-FROM-OUTSIDE-THE-JOB"
"""Text that exists only in files outside the job folder: it must never reach the output."""

DEEP = 100_000
"""Nesting that makes ``json.loads`` raise RecursionError."""

CONTROLS = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)
"""Characters a terminal acts on (every control but newline and tab), bidi controls, U+2028/9
and lone surrogates: none may reach the output raw."""

HOSTILE = (
    "\x1b[31mRED\x1b[0m \x1b]52;c;ZXZpbA==\x07 \x1b]8;;https://evil.example\x1b\\link"
    "\x1b]8;;\x1b\\ back\x08\x08 \x9b2J \u202eevil\u202c \u2066iso\u2069 nul\x00 del\x7f"
)
"""SGR, OSC 52 (clipboard), OSC 8 (hyperlink), backspace, C1 CSI, bidi overrides, NUL, DEL."""


def job_with_messages_ref(root: Path) -> tuple[JobBuilder, Path, int]:
    """A one-run job; returns the builder, its events file and the completeRun line number."""
    b = JobBuilder(root)
    segment = b.start("run-1", "solo", "hello")
    segment.tools("readTextFile")
    segment.complete("all good")
    b.store_job("completed", "solo")
    path = b.storage.run_dir("job1", "run-1") / "events.jsonl"
    lines = path.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if '"type":"completeRun"' in line)
    return b, path, number


def set_messages_ref(path: Path, number: int, checkpoint_id: str) -> None:
    """Replace the checkpoint messages of line ``number`` by a reference to ``checkpoint_id``."""
    lines = path.read_text().splitlines()
    data = json.loads(lines[number - 1])
    messages = data["checkpoint"].pop("messages")
    data["checkpoint"]["messagesRef"] = {
        "checkpointId": checkpoint_id,
        "count": len(messages),
        "lastMessageId": messages[-1]["id"],
    }
    lines[number - 1] = json.dumps(data, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")


def outside_checkpoint(folder: Path) -> Path:
    """A checkpoint-shaped file outside the job folder whose only text is :data:`MARKER`."""
    path = folder / "x.json"
    message = {
        "type": "userMessage",
        "id": "m-outside",
        "contents": [{"type": "textPart", "id": "p-outside", "text": MARKER}],
    }
    path.write_text(json.dumps({"id": "x", "messages": [message] * 8}))
    return path


def complete_run_of(outcome: Outcome) -> dict[str, Any]:
    event: dict[str, Any] = next(e for e in outcome.json()["events"] if e["type"] == "completeRun")
    return event


# 1. references stay inside the job folder -----------------------------------------------------


def test_a_valid_messages_ref_is_followed(tmp_path: Path) -> None:
    """Control case: the rewritten line reads back its messages from the checkpoint file."""
    b, path, number = job_with_messages_ref(tmp_path / "perstack")
    checkpoint_id = json.loads(path.read_text().splitlines()[number - 1])["checkpoint"]["id"]
    set_messages_ref(path, number, checkpoint_id)
    result = log(b.root, "--json", "--take", "0")
    assert result.code == 0 and result.err == ""
    assert complete_run_of(result)["checkpoint"]["messages"][-1]["contents"][0]["text"] == (
        "all good"
    )


@pytest.mark.parametrize(
    "reference",
    ["../../../../x", "ABSOLUTE", "..\\..\\..\\..\\x", "x\x00", "", "a" * 129],
    ids=["dot-dot", "absolute", "backslash", "nul", "empty", "too-long"],
)
def test_a_messages_ref_out_of_the_job_folder_is_never_followed(
    tmp_path: Path, reference: str
) -> None:
    outside = outside_checkpoint(tmp_path)
    reference = str(outside.with_suffix("")) if reference == "ABSOLUTE" else reference
    b, path, number = job_with_messages_ref(tmp_path / "perstack")
    set_messages_ref(path, number, reference)
    assert (b.storage.job_dir("job1") / "checkpoints" / "../../../../x.json").is_file()

    result = log(b.root, "--job", "job1", "--json", "--take", "0")
    assert result.code == 0
    assert MARKER not in result.out
    # The event keeps its reference, as when the checkpoint file is missing.
    checkpoint = complete_run_of(result)["checkpoint"]
    assert checkpoint["messagesRef"]["checkpointId"] == reference
    assert "messages" not in checkpoint
    assert f"{path}:{number}" in result.err
    assert result.err.count("\n") == 1

    through_messages = log(
        b.root, "--filter", f'.checkpoint.messages[].contents[].text == "{MARKER}"'
    )
    assert through_messages.code == 0
    assert "No data found" in through_messages.out and MARKER not in through_messages.out


def test_a_checkpoint_file_linked_out_of_the_job_folder_is_never_read(tmp_path: Path) -> None:
    outside = outside_checkpoint(tmp_path)
    b, path, number = job_with_messages_ref(tmp_path / "perstack")
    link = b.storage.job_dir("job1") / "checkpoints" / "cplink.json"
    link.symlink_to(outside)
    set_messages_ref(path, number, "cplink")

    result = log(b.root, "--job", "job1", "--json", "--take", "0")
    assert result.code == 0
    assert MARKER not in result.out
    assert complete_run_of(result)["checkpoint"]["messagesRef"]["checkpointId"] == "cplink"
    assert all(c.get("id") != "x" for c in result.json()["checkpoints"])
    assert f"{path}:{number}" in result.err
    assert f"skipping {link}: it resolves outside the job folder" in result.err

    shown = log(b.root, "--job", "job1", "--checkpoint", "cplink")
    assert shown.code == 2 and MARKER not in shown.out + shown.err


def test_run_folders_and_files_linked_out_of_the_job_folder_are_never_read(
    tmp_path: Path,
) -> None:
    b, _, _ = job_with_messages_ref(tmp_path / "perstack")
    job_dir = b.storage.job_dir("job1")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    event = {"id": "e", "timestamp": 1, "runId": "evil", "type": "retry", "reason": MARKER}
    (elsewhere / "events.jsonl").write_text(json.dumps(event) + "\n")
    (elsewhere / "run-setting.json").write_text(json.dumps({"expertKey": MARKER}))
    (elsewhere / "job.json").write_text(
        json.dumps({"id": "job1", "status": "completed", "coordinatorExpertKey": MARKER})
    )
    # A run folder that is a link, an events file that is a link, an event-less run whose
    # run-setting.json is a link, and a job.json that is a link.
    (job_dir / "runs" / "evil").symlink_to(elsewhere)
    (job_dir / "runs" / "run-2").mkdir()
    (job_dir / "runs" / "run-2" / "events.jsonl").symlink_to(elsewhere / "events.jsonl")
    (job_dir / "runs" / "run-3").mkdir()
    (job_dir / "runs" / "run-3" / "run-setting.json").symlink_to(elsewhere / "run-setting.json")
    (job_dir / "job.json").unlink()
    (job_dir / "job.json").symlink_to(elsewhere / "job.json")

    result = log(b.root, "--job", "job1", "--json", "--take", "0")
    assert result.code == 0
    assert MARKER not in result.out
    runs = {run["runId"]: run for run in result.json()["runs"]}
    assert "evil" not in runs and runs["run-3"]["expertKey"] == "?"
    assert result.json()["job"]["coordinatorExpertKey"] == "solo"
    for linked in (
        job_dir / "runs" / "evil",
        job_dir / "runs" / "run-2" / "events.jsonl",
        job_dir / "runs" / "run-3" / "run-setting.json",
        job_dir / "job.json",
    ):
        assert f"skipping {linked}: it resolves outside the job folder" in result.err
    assert MARKER not in log(b.root).out
    unknown = log(b.root, "--run", "evil")
    assert unknown.code == 2 and MARKER not in unknown.out + unknown.err


# 2. stored control characters are shown, never executed ---------------------------------------


def hostile_job(root: Path, run_id: str = "run-\x1b[2J") -> JobBuilder:
    b = JobBuilder(root)
    segment = b.start(run_id, f"solo{HOSTILE}", f"query {HOSTILE}")
    segment.tools("readTextFile", results={"readTextFile": f"result {HOSTILE}"})
    segment.error(f"Name{HOSTILE}", f"line one\nline two\r{HOSTILE}")
    b.store_job("stoppedByError", "solo")
    # A corrupt line in the same run: its warning names a path holding an escape.
    with (b.storage.run_dir("job1", run_id) / "events.jsonl").open("a") as handle:
        handle.write("{not json\n")
    return b


def run_on_terminal(root: Path, *args: str) -> str:
    terminal = FakeTerminal()
    code = main(["--storage", str(root), *args], stdout=terminal, stderr=FakeTerminal(), tz=UTC)  # type: ignore[arg-type]
    assert code == 0
    return "".join(terminal.parts)


def assert_shown_not_executed(text: str) -> None:
    assert not CONTROLS.search(text), CONTROLS.findall(text)
    assert "\\x1b[31mRED\\x1b[0m" in text
    assert "\\x1b]52;c;ZXZpbA==\\x07" in text
    assert "back\\x08\\x08" in text and "\\x9b2J" in text
    assert "\\u202eevil\\u202c" in text and "\\u2066iso\\u2069" in text
    assert "nul\\x00" in text and "del\\x7f" in text


def test_escapes_are_visible_in_piped_text_output(tmp_path: Path) -> None:
    b = hostile_job(tmp_path / "perstack")
    result = log(b.root, "--take", "0", "--verbose", "--summary")
    assert result.code == 0
    assert_shown_not_executed(result.out)
    # A stored newline does not start a line of its own.
    assert "Message: line one\\nline two\\r\\x1b[31m" in result.out
    assert "\nline two" not in result.out
    assert not CONTROLS.search(result.err)
    assert "run-\\x1b[2J" in result.err


def test_escapes_are_visible_with_no_color_and_with_colour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = hostile_job(tmp_path / "perstack")
    monkeypatch.setenv("NO_COLOR", "1")
    plain = run_on_terminal(b.root, "--take", "0", "--verbose")
    assert_shown_not_executed(plain)
    monkeypatch.delenv("NO_COLOR")
    coloured = run_on_terminal(b.root, "--take", "0", "--verbose")
    assert "\x1b[" in coloured
    # The only escape sequences are the renderer's own colours: without them, the plain text.
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


def test_checkpoint_messages_are_visible(tmp_path: Path) -> None:
    b = hostile_job(tmp_path / "perstack", "run-1")
    checkpoint_id = log(b.root, "--job", "job1", "--json").json()["checkpoints"][-1]["id"]
    result = log(b.root, "--checkpoint", checkpoint_id, "--messages")
    assert result.code == 0
    assert_shown_not_executed(result.out)


def test_json_output_is_exact_and_escapes_every_control_character(tmp_path: Path) -> None:
    b = hostile_job(tmp_path / "perstack")
    for flag in ("--json", "--pretty"):
        result = log(b.root, flag, "--take", "0")
        assert result.code == 0
        assert not CONTROLS.search(result.out)
        events = result.json()["events"]
        stop = next(e for e in events if e["type"] == "stopRunByError")
        assert stop["error"]["message"] == f"line one\nline two\r{HOSTILE}"
        assert result.json()["runs"][0]["runId"] == "run-\x1b[2J"


def test_lone_surrogates_do_not_break_the_output(tmp_path: Path) -> None:
    b = JobBuilder(tmp_path / "perstack")
    b.start("run-1", "solo", "hello").complete("done")
    path = b.storage.run_dir("job1", "run-1") / "events.jsonl"
    with path.open("a") as handle:
        handle.write('{"type":"completeRun","timestamp":99,"stepNumber":9,"text":"a\\ud800b"}\n')
    for args in ((), ("--json",)):
        result = log(b.root, "--take", "0", *args)
        assert result.code == 0
        result.out.encode("utf-8")  # a lone surrogate cannot be written to a UTF-8 stdout
    assert "a\\ud800b" in log(b.root).out
    events = log(b.root, "--json", "--take", "0").json()["events"]
    assert [e["text"] for e in events if e.get("stepNumber") == 9] == ["a\ud800b"]


# 3. nested, huge and out-of-range data is skipped, never crashed on ---------------------------


def simple_job(root: Path) -> tuple[JobBuilder, Path]:
    b = JobBuilder(root)
    segment = b.start("run-1", "solo", "hello")
    segment.tools("readTextFile")
    segment.complete("all good")
    b.store_job("completed", "solo")
    return b, b.storage.run_dir("job1", "run-1") / "events.jsonl"


def insert_line(path: Path, position: int, line: bytes) -> int:
    """Insert ``line`` so that it becomes line ``position`` (1-based); return that number."""
    lines = path.read_bytes().splitlines()
    lines.insert(position - 1, line)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return position


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HEADER = b'{"id":"deep","timestamp":1767225600500,"jobId":"job1","runId":"run-1","type":"retry",'


@pytest.mark.parametrize(
    "line",
    [
        nested(DEEP),
        HEADER + b'"reason":' + nested(DEEP) + b"}",
        b'{"type":"retry","timestamp":5,"x":' + nested(MAX_NESTING) + b"}",
        b'{"type":"retry","timestamp":' + b"9" * 5000 + b"}",
    ],
    ids=["array", "after-a-valid-header", "one-level-too-deep", "5000-digit-number"],
)
def test_a_nested_or_unreadable_event_line_is_skipped_with_a_warning(
    tmp_path: Path, line: bytes
) -> None:
    b, path = simple_job(tmp_path / "perstack")
    count = len(path.read_bytes().splitlines())
    number = insert_line(path, 3, line)
    for args in ((), ("--json",), ("--summary",)):
        result = log(b.root, "--take", "0", *args)
        assert result.code == 0, result.err
        assert result.err.startswith(
            f"perstack log: warning: skipping corrupt event line {path}:{number}: "
        )
        assert result.err.count("\n") == 1
    # A filter decodes only the lines that may match; either way nothing breaks.
    filtered = log(b.root, "--filter", '.reason == "x"')
    assert filtered.code == 0 and "No data found" in filtered.out
    data = log(b.root, "--json", "--take", "0").json()
    assert len(data["events"]) == count
    assert data["events"][-1]["type"] == "completeRun"


def test_nesting_up_to_the_limit_is_read_and_written_back(tmp_path: Path) -> None:
    b, path = simple_job(tmp_path / "perstack")
    inner = MAX_NESTING - 2  # the event object and its "x" array are two levels
    line = b'{"type":"retry","timestamp":1767225600500,"x":[' + nested(inner) + b"]}"
    insert_line(path, 3, line)
    for args in (("--json",), ("--pretty",), ("--verbose",)):
        result = log(b.root, "--take", "0", *args)
        assert result.code == 0 and result.err == ""
    retry = next(e for e in log(b.root, "--json").json()["events"] if e["type"] == "retry")
    assert retry["x"] == [json.loads(nested(inner))]


def test_a_line_over_the_size_limit_is_skipped_unread(tmp_path: Path) -> None:
    b, path = simple_job(tmp_path / "perstack")
    filler = b"a" * (MAX_STORED_BYTES + 1 - len(HEADER) - len(b'"reason":""}'))
    line = HEADER + b'"reason":"' + filler + b'"}'
    assert len(line) == MAX_STORED_BYTES + 1
    number = insert_line(path, 3, line)
    del line, filler
    result = log(b.root, "--json", "--take", "0")
    assert result.code == 0
    assert result.err == (
        f"perstack log: warning: skipping corrupt event line {path}:{number}: the line is "
        f"{MAX_STORED_BYTES + 1:,} bytes, over the limit of {MAX_STORED_BYTES:,}\n"
    )
    assert "retry" not in result.json()["summary"]["types"]


def test_a_nested_checkpoint_file_is_skipped_with_a_warning(tmp_path: Path) -> None:
    b, path = simple_job(tmp_path / "perstack")
    bad = b.storage.job_dir("job1") / "checkpoints" / "deep.json"
    bad.write_bytes(b'{"id":"deep","messages":' + nested(DEEP) + b"}")
    lines = path.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if '"type":"completeRun"' in line)
    set_messages_ref(path, number, "deep")
    result = log(b.root, "--job", "job1", "--json", "--take", "0")
    assert result.code == 0
    assert f"perstack log: warning: skipping unreadable checkpoint file {bad}:1: " in result.err
    assert f"{path}:{number}" in result.err
    assert complete_run_of(result)["checkpoint"]["messagesRef"]["checkpointId"] == "deep"
    shown = log(b.root, "--job", "job1", "--checkpoint", "deep")
    assert shown.code == 2 and f"{bad}:1" in shown.err and "Traceback" not in shown.err


@pytest.mark.parametrize(
    "content",
    [nested(DEEP), b'{"id": "job1", "x": ' + nested(DEEP) + b"}"],
    ids=["array", "in-an-object"],
)
def test_a_nested_job_json_is_skipped_with_a_warning(tmp_path: Path, content: bytes) -> None:
    b, _ = simple_job(tmp_path / "perstack")
    job_json = b.storage.job_dir("job1") / "job.json"
    job_json.write_bytes(content)
    for args in ((), ("--job", "job1")):
        result = log(b.root, *args)
        assert result.code == 0
        assert f"{job_json}:1" in result.err
        assert "Job: job1 (completed)" in result.out


def test_a_nested_run_setting_is_skipped_with_a_warning(tmp_path: Path) -> None:
    b, _ = simple_job(tmp_path / "perstack")
    folder = b.storage.run_dir("job1", "run-2")
    folder.mkdir()
    (folder / "run-setting.json").write_bytes(b'{"expertKey": ' + nested(DEEP) + b"}")
    result = log(b.root, "--json")
    assert result.code == 0
    runs = {run["runId"]: run for run in result.json()["runs"]}
    assert runs["run-2"]["expertKey"] == "?"
    assert (
        f"perstack log: warning: skipping unreadable run setting {folder / 'run-setting.json'}:1: "
        in result.err
    )


def test_documents_over_the_size_limit_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runtime.jobs.store

    b, _ = simple_job(tmp_path / "perstack")
    job_json = b.storage.job_dir("job1") / "job.json"
    monkeypatch.setattr(runtime.jobs.store, "MAX_STORED_BYTES", os.path.getsize(job_json) - 1)
    result = log(b.root, "--job", "job1", "--json")
    assert result.code == 0
    assert f"{job_json}:1: the file is {os.path.getsize(job_json):,} bytes" in result.err
    assert result.json()["job"]["coordinatorExpertKey"] == "solo"


@pytest.mark.parametrize("field", ["text", "reason"])
def test_nested_json_inside_stored_text_is_shown_as_text(tmp_path: Path, field: str) -> None:
    """Tool results and retry reasons are parsed for display; a deep one stays plain text."""
    b, path = simple_job(tmp_path / "perstack")
    text = '{"error": ' + "[" * DEEP + "]" * DEEP + "}"
    event = (
        {"type": "retry", "timestamp": 1767225600500, "stepNumber": 1, "reason": text}
        if field == "reason"
        else {
            "type": "resolveToolResults",
            "timestamp": 1767225600500,
            "stepNumber": 1,
            "toolResults": [{"toolName": "t", "result": [{"type": "textPart", "text": text}]}],
        }
    )
    insert_line(path, 3, json.dumps(event).encode())
    result = log(b.root, "--take", "0")
    assert result.code == 0 and result.err == ""
    assert '{"error": [[[[' in result.out


@pytest.mark.parametrize("timestamp", [10**18, -(10**18)])
def test_timestamps_out_of_range_are_shown_as_unknown(tmp_path: Path, timestamp: int) -> None:
    b, path = simple_job(tmp_path / "perstack")
    insert_line(
        path, 3, json.dumps({"type": "retry", "timestamp": timestamp, "reason": "x"}).encode()
    )
    job_json = b.storage.job_dir("job1") / "job.json"
    job = json.loads(job_json.read_text())
    job["finishedAt"] = timestamp
    job_json.write_text(json.dumps(job))
    result = log(b.root, "--take", "0")
    assert result.code == 0
    assert "Finished: ?" in result.out
    assert re.search(r"\[Step -\] retry\s+\?\?:\?\?:\?\?", result.out)


# the studio's reader follows the same rules ----------------------------------------------------


def test_read_job_events_reads_nothing_outside_and_skips_what_it_cannot_decode(
    tmp_path: Path,
) -> None:
    from runtime.jobs.events import read_job_events

    outside_checkpoint(tmp_path)
    b, path, number = job_with_messages_ref(tmp_path / "perstack")
    job_dir = b.storage.job_dir("job1")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "events.jsonl").write_text(path.read_text().replace("all good", MARKER))
    (job_dir / "runs" / "evil").symlink_to(elsewhere)
    expected = [event.type for event in read_job_events(job_dir)]
    assert expected[-1] == "completeRun" and expected.count("completeRun") == 1

    set_messages_ref(path, number, "../../../../x")
    insert_line(path, 2, nested(DEEP))
    insert_line(path, 3, b'{"type":"bad\xff\xfe"}')
    read = list(read_job_events(job_dir))
    assert [event.type for event in read] == [t for t in expected if t != "completeRun"]
    assert MARKER not in "".join(event.to_json() for event in read)
    assert list(read_job_events(job_dir, run_ids=["../../../../elsewhere", "evil"])) == []
    light = [event.type for event in read_job_events(job_dir, messages=False)]
    assert light == expected
