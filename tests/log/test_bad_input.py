"""Bad input: clear message on stderr, exit 2 (1 when there are no jobs), never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.log.conftest import JobBuilder, RealJobs, log


def caret_under(stderr: str, token: str) -> None:
    """The message ends with the expression and a caret line under ``token``."""
    expression, carets = stderr.rstrip("\n").splitlines()[-2:]
    start = carets.index("^")
    assert expression[start : start + len(token)] == token, (expression, carets)
    assert carets.strip() == "^" * len(token), (expression, carets)


@pytest.mark.parametrize(
    ("step", "message", "token"),
    [
        ("5-2", "the range starts at 5, after its end 2 (write 2-5)", "5-2"),
        (">=x", "'x' is not a step number after '>='", "x"),
        ("<", "the step number is missing after '<'", "<"),
        ("abc", "use N, >N, >=N, <N, <=N or N-M", "a"),
        ("3x", "use N, >N, >=N, <N, <=N or N-M", "x"),
        ("1.5", "use N, >N, >=N, <N, <=N or N-M", "."),
    ],
)
def test_invalid_step(real_jobs: RealJobs, step: str, message: str, token: str) -> None:
    result = log(real_jobs.root, f"--step={step}")
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith(f"perstack log: Invalid --step {step!r}: ")
    assert message in result.err
    assert "Traceback" not in result.err
    if step != "<":
        caret_under(result.err, token)


def test_empty_step(real_jobs: RealJobs) -> None:
    result = log(real_jobs.root, "--step=")
    assert result.code == 2 and "Invalid --step: the value is empty" in result.err


@pytest.mark.parametrize(
    ("expression", "message", "token"),
    [
        ('.toolCalls[].toolName = "x"', "expected an operator (== != > >= < <=), got '='", "="),
        ("toolName == x", "expected a field path starting with '.'", "toolName"),
        (".a..b == 1", "expected a field name after '.', found '.'", "."),
        (".a[x] == 1", "expected '[]' (any element) or '[N]' (element N)", "["),
        (".stepNumber > abc", "'>' compares numbers, but abc is not a number", "abc"),
        ('.stepNumber >= "3"', "'>=' compares numbers, but \"3\" is not a number", '"3"'),
        ('.text == "abc', 'unterminated string: add the closing "', '"abc'),
        (".text == hello world", "unexpected 'world' after the value (quote a string", "world"),
        (".a", "missing operator after the field path", " "),
        (".a ==", "missing value after '=='", " "),
        (".a-b == 1", "unexpected character '-' in the field path", "-"),
        (".a ~= 1", "expected an operator (== != > >= < <=), got '~='", "~="),
        ("[].a == 1", "expected a field path starting with '.'", "[].a"),
        ('.a == "\\q"', "invalid escape in string", '"\\q"'),
    ],
)
def test_invalid_filter(real_jobs: RealJobs, expression: str, message: str, token: str) -> None:
    result = log(real_jobs.root, "--filter", expression)
    assert result.code == 2, result.out
    assert result.out == ""
    assert result.err.startswith("perstack log: Invalid --filter expression: ")
    assert message in result.err
    lines = result.err.rstrip("\n").splitlines()
    assert lines[-2] == f"  --filter {expression}"
    if token.strip():
        caret_under(result.err, token)
    else:  # a missing token: the caret points just past the end
        assert lines[-1].index("^") == len(lines[-2])


def test_empty_filter(real_jobs: RealJobs) -> None:
    result = log(real_jobs.root, "--filter=")
    assert result.code == 2 and "the expression is empty" in result.err


def test_unknown_type_suggests_the_right_one(real_jobs: RealJobs) -> None:
    result = log(real_jobs.root, "--type", "calltools")
    assert result.code == 2
    assert "Unknown event type 'calltools' for --type. Did you mean callTools?" in result.err
    close = log(real_jobs.root, "--type", "completRun")
    assert "Did you mean completeRun" in close.err


def test_a_type_present_in_storage_is_accepted_even_if_unknown(tmp_path: Path) -> None:
    b = JobBuilder(tmp_path / "perstack")
    b.start("run-1", "solo", "hi").complete("ok")
    path = b.storage.run_dir("job1", "run-1") / "events.jsonl"
    with path.open("a") as handle:
        handle.write(
            json.dumps({"type": "futureEvent", "id": "f1", "timestamp": 1, "runId": "run-1"}) + "\n"
        )
    result = log(b.root, "--type", "futureEvent", "--json")
    assert result.code == 0 and [e["type"] for e in result.json()["events"]] == ["futureEvent"]


def test_unknown_job_lists_nearest(real_jobs: RealJobs) -> None:
    prefix = real_jobs.single[:5]
    result = log(real_jobs.root, "--job", prefix)
    assert result.code == 2
    assert result.err == (
        f"perstack log: Job {prefix!r} not found in {real_jobs.root / 'jobs'}. "
        f"Nearest: {real_jobs.single}.\n"
    )
    typo = real_jobs.single[:-1] + ("x" if real_jobs.single[-1] != "x" else "y")
    assert f"Nearest: {real_jobs.single}" in log(real_jobs.root, "--job", typo).err


def test_unknown_job_without_anything_close_lists_existing(real_jobs: RealJobs) -> None:
    result = log(real_jobs.root, "--job", "zz-nothing-like-it")
    assert result.code == 2
    assert "Existing: " in result.err and real_jobs.interactive in result.err


def test_job_id_cannot_escape_storage(real_jobs: RealJobs) -> None:
    result = log(real_jobs.root, "--job", "../jobs/" + real_jobs.single)
    assert result.code == 2 and "not found" in result.err


def test_unknown_run(real_jobs: RealJobs) -> None:
    runs = log(real_jobs.root, "--job", real_jobs.delegation, "--json").json()["runs"]
    run_id = runs[0]["runId"]
    result = log(real_jobs.root, "--job", real_jobs.delegation, "--run", run_id[:6])
    assert result.code == 2
    assert result.err.startswith(
        f"perstack log: Run {run_id[:6]!r} not found in job {real_jobs.delegation}. Nearest: "
    )
    assert run_id in result.err
    anywhere = log(real_jobs.root, "--run", "nope")
    assert anywhere.code == 2 and "Run 'nope' not found in any job." in anywhere.err


def test_unknown_checkpoint(real_jobs: RealJobs) -> None:
    data = log(real_jobs.root, "--job", real_jobs.single, "--json").json()
    checkpoint_id = data["checkpoints"][0]["id"]
    result = log(real_jobs.root, "--job", real_jobs.single, "--checkpoint", checkpoint_id[:4])
    assert result.code == 2
    assert f"Checkpoint {checkpoint_id[:4]!r} not found in job {real_jobs.single}." in result.err
    assert checkpoint_id in result.err


def test_checkpoint_of_another_run_conflicts_with_run(real_jobs: RealJobs) -> None:
    data = log(real_jobs.root, "--job", real_jobs.delegation, "--json").json()
    first, second = data["runs"][0], data["runs"][1]
    checkpoint = next(c for c in data["checkpoints"] if c["runId"] == first["runId"])
    result = log(
        real_jobs.root,
        "--job",
        real_jobs.delegation,
        "--checkpoint",
        checkpoint["id"],
        "--run",
        second["runId"],
    )
    assert result.code == 2
    assert f"belongs to run {first['runId']!r}, not to --run {second['runId']!r}" in result.err


def test_messages_needs_checkpoint(real_jobs: RealJobs) -> None:
    result = log(real_jobs.root, "--messages")
    assert result.code == 2 and "--messages needs --checkpoint" in result.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--take", "-1"], "argument --take: expected a number of at least 0, got -1"),
        (["--take", "x"], "argument --take: expected a whole number, got 'x'"),
        (["--offset=-3"], "argument --offset: expected a number of at least 0, got -3"),
        (["--context", "1.5"], "argument --context: expected a whole number, got '1.5'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_option_values(
    real_jobs: RealJobs, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = log(real_jobs.root, *args)
    assert result.code == 2
    assert message in capsys.readouterr().err  # argparse writes to sys.stderr


@pytest.mark.parametrize("kind", ["missing", "empty", "no-jobs-dir", "empty-jobs-dir"])
def test_no_jobs(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "store"
    if kind != "missing":
        root.mkdir()
    if kind == "empty-jobs-dir":
        (root / "jobs").mkdir()
    result = log(root)
    assert result.code == 0  # as Perstack: nothing to show is not a failure
    assert result.out == "No data found\n"
    assert result.err == f"perstack log: No jobs found in {root}\n"


def test_corrupt_lines_are_skipped_with_a_warning(tmp_path: Path) -> None:
    b = JobBuilder(tmp_path / "perstack")
    segment = b.start("run-1", "solo", "hello")
    segment.tools("readTextFile")
    segment.complete("all good")
    b.store_job("completed", "solo")
    path = b.storage.run_dir("job1", "run-1") / "events.jsonl"
    lines = path.read_bytes().splitlines()
    count = len(lines)
    lines.insert(3, b"{this is not json}")
    lines.insert(5, b'["an", "array"]')
    lines.insert(6, b'{"id": "x", "timestamp": 5}')
    lines.insert(7, b'{"type":"bad\xff\xfe","id":"y","timestamp":"z"}')
    lines.append(lines[-1][:40])  # a torn last write
    path.write_bytes(b"\n".join(lines) + b"\n\n")
    result = log(b.root, "--take", "0")
    assert result.code == 0
    warnings = result.err.splitlines()
    assert warnings == [
        f"perstack log: warning: skipping corrupt event line {path}:4: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        f"perstack log: warning: skipping corrupt event line {path}:6: "
        "expected a JSON object, found list",
        f'perstack log: warning: skipping corrupt event line {path}:7: the object has no "type"',
        f"perstack log: warning: skipping corrupt event line {path}:8: not valid UTF-8",
        warnings[4],
    ]
    assert warnings[4].startswith(
        f"perstack log: warning: skipping corrupt event line {path}:{count + 5}: "
    )
    data = log(b.root, "--json", "--take", "0").json()
    assert len(data["events"]) == count
    assert data["events"][-1]["type"] == "completeRun"
    assert "Result: all good" in result.out


def test_a_line_that_fails_only_when_decoded_is_reported_once(tmp_path: Path) -> None:
    b = JobBuilder(tmp_path / "perstack")
    b.start("run-1", "solo", "hello").complete("done")
    b.store_job("completed", "solo")
    path = b.storage.run_dir("job1", "run-1") / "events.jsonl"
    lines = path.read_text().splitlines()
    # The header is intact but the payload is broken in the middle: found when shown.
    lines[3] = lines[3].replace('"messages":[', '"messages":[,', 1)
    path.write_text("\n".join(lines) + "\n")
    result = log(b.root)
    assert result.code == 0
    assert result.err.count("skipping corrupt event line") == 1
    assert f"{path}:4:" in result.err


def test_missing_job_json_is_reconstructed(tmp_path: Path) -> None:
    b = JobBuilder(tmp_path / "perstack")
    segment = b.start("run-1", "solo", "hello")
    segment.tools("writeTextFile")
    segment.complete("done")
    result = log(b.root)
    assert result.code == 0, result.err
    assert "Job: job1 (completed)\nExpert: solo\nStarted: 2026-01-01 00:00:01\nSteps: 2\n" in (
        result.out
    )
    assert "Usage: 200 tokens" in result.out
    data = log(b.root, "--run", "run-1", "--json").json()
    assert data["job"]["coordinatorExpertKey"] == "solo"


def test_unreadable_job_json_warns_and_falls_back(tmp_path: Path) -> None:
    b = JobBuilder(tmp_path / "perstack")
    b.start("run-1", "solo", "hello").complete("done")
    (b.storage.job_dir("job1") / "job.json").write_text('{"schemaVersion": "99"}')
    result = log(b.root)
    assert result.code == 0
    assert "schema version '99'" in result.err
    assert "Job: job1 (completed)" in result.out


def test_subprocess_no_traceback_and_exit_codes(real_jobs: RealJobs, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "TZ": "UTC", "PERSTACK_STORAGE_PATH": str(real_jobs.root)}
    command = [sys.executable, "-m", "runtime.log.cli"]
    root = str(Path(__file__).resolve().parents[2])
    ok = subprocess.run(
        [*command, "--summary"], capture_output=True, text=True, env=env, cwd=root, check=False
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"(showing latest job)\nStorage: {real_jobs.root}\n")
    bad = subprocess.run(
        [*command, "--filter", ".a === 1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        check=False,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "Invalid --filter expression" in bad.stderr
    empty = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**env, "PERSTACK_STORAGE_PATH": str(tmp_path)},
        cwd=root,
        check=False,
    )
    assert empty.returncode == 0 and empty.stdout == "No data found\n"
    assert empty.stderr == f"perstack log: No jobs found in {tmp_path}\n"
