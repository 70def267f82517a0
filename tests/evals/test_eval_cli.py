"""`perstack eval` as a user runs it: a real process and a local fake OpenAI server (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.evals.helpers import EVALS, parse_json, project
from tests.fakellm import FakeLLM
from tests.test_cli_run import perstack


def evaluate(*args: str, cwd: Path, fake: FakeLLM):  # type: ignore[no-untyped-def]
    return perstack("eval", *args, cwd=cwd, env=fake.env())


def test_eval_prints_a_table_stores_results_and_exits_1_on_a_failure(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    evals = project(tmp_path, fake_llm)
    result = evaluate(str(evals), "--concurrency", "3", cwd=tmp_path, fake=fake_llm)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["case", "result", "checks", "steps", "tokens", "cost", "time"]
    rows = {line.split("  ")[0].strip(): line for line in lines[1:4]}
    assert "PASS" in rows["hello"] and "✓✓✓✓" in rows["hello"]
    assert "PASS" in rows["seeded"] and "✓✓" in rows["seeded"]
    assert "FAIL" in rows["wrong text"] and "✗" in rows["wrong text"]
    assert "2/3 cases passed" in result.stdout
    assert "wrong text: ✗ bye.txt contains 'farewell': bye.txt has no 'farewell'" in result.stdout
    # Progress, one line per finished case when stderr is not a terminal.
    assert result.stderr.count("/3] ") == 3
    stored = list((tmp_path / "perstack" / "evals" / "writer-evals").glob("*.json"))
    assert len(stored) == 1
    assert f"results stored in {stored[0]}" in result.stderr
    # Each case ran in its own scratch folder: nothing was written into the project.
    assert not (tmp_path / "hello.txt").exists()
    assert "Traceback" not in result.stderr


def test_json_output_has_every_case_check_and_job(tmp_path: Path, fake_llm: FakeLLM) -> None:
    evals = project(tmp_path, fake_llm)
    result = evaluate(str(evals), "--json", cwd=tmp_path, fake=fake_llm)
    assert result.returncode == 1
    data = parse_json(result.stdout)
    cases = {case["name"]: case for case in data["cases"]}
    assert list(cases) == ["hello", "seeded", "wrong text"]  # file order, whatever finished first
    hello = cases["hello"]
    assert hello["passed"] and hello["status"] == "completed" and hello["steps"] == 2
    assert hello["usage"]["totalTokens"] > 0 and hello["durationMs"] >= 0
    assert [c["passed"] for c in hello["checks"]] == [True, True, True, True]
    job = tmp_path / "perstack" / "jobs" / hello["jobId"] / "job.json"
    assert json.loads(job.read_text())["status"] == "completed"
    judge = cases["seeded"]["checks"][1]
    assert judge["type"] == "judge" and judge["passed"] and judge["jobId"]
    assert (tmp_path / "perstack" / "jobs" / judge["jobId"]).is_dir()
    assert not cases["wrong text"]["passed"]


def test_compare_shows_regressions_and_improvements(tmp_path: Path, fake_llm: FakeLLM) -> None:
    evals = project(tmp_path, fake_llm)
    first = evaluate(str(evals), "--json", cwd=tmp_path, fake=fake_llm)
    first_id = parse_json(first.stdout)["id"]
    # The failing check is fixed; the first case now asks for other text, failing two checks.
    evals.write_text(
        EVALS.replace('text = "farewell"', 'text = "goodbye"').replace(
            "write hello.txt: hello world", "write hello.txt: hello planet"
        )
    )
    second = evaluate(str(evals), "--compare", "last", cwd=tmp_path, fake=fake_llm)
    assert second.returncode == 1
    assert f"Compared with run {first_id}:" in second.stdout
    assert "regressions (1): hello" in second.stdout
    assert "improvements (1): wrong text" in second.stdout
    as_json = evaluate(str(evals), "--json", "--compare", first_id, cwd=tmp_path, fake=fake_llm)
    comparison = parse_json(as_json.stdout)["comparison"]
    assert comparison["previous"] == first_id
    assert comparison["regressions"] == ["hello"]
    assert comparison["improvements"] == ["wrong text"]
    assert comparison["checkChanges"]["hello"] == [
        "-hello.txt contains 'hello world'",
        "-`grep -q world hello.txt` exits 0",
    ]
    missing = evaluate(str(evals), "--compare", "nope", cwd=tmp_path, fake=fake_llm)
    assert missing.returncode == 2
    assert "No run 'nope' of eval set 'writer-evals'" in missing.stderr


def test_replay_evaluates_from_recordings_with_no_model_request(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    evals = project(tmp_path, fake_llm)
    first = evaluate(str(evals), "--json", cwd=tmp_path, fake=fake_llm)
    asked = len(fake_llm.requests)
    assert asked > 0
    again = evaluate(str(evals), "--json", "--replay", cwd=tmp_path, fake=fake_llm)
    assert len(fake_llm.requests) == asked  # judge included: all answered from recordings
    before = {c["name"]: c["passed"] for c in parse_json(first.stdout)["cases"]}
    after = parse_json(again.stdout)["cases"]
    assert {c["name"]: c["passed"] for c in after} == before
    assert all(c["replayedFrom"] for c in after)
    # A changed query no longer matches: that case alone calls the model.
    evals.write_text(EVALS.replace("write bye.txt: goodbye", "write bye.txt: farewell"))
    third = evaluate(str(evals), "--json", "--replay", cwd=tmp_path, fake=fake_llm)
    assert 0 < len(fake_llm.requests) - asked <= 3
    assert all(c["passed"] for c in parse_json(third.stdout)["cases"])
    assert third.returncode == 0


def test_a_bad_eval_file_is_refused_with_file_line_and_key(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    evals = project(tmp_path, fake_llm, EVALS.replace('type = "fileExists"', 'type = "fileThere"'))
    result = evaluate(str(evals), cwd=tmp_path, fake=fake_llm)
    assert result.returncode == 2
    assert f"{evals}:10: cases[0].checks[0].type: unknown check type" in result.stderr
    assert "Traceback" not in result.stderr
    assert fake_llm.requests == []

    evals.write_text(EVALS.replace('expert = "judge"', 'expert = "judje"'))
    result = evaluate(str(evals), cwd=tmp_path, fake=fake_llm)
    assert result.returncode == 2
    assert "case 'seeded': judge 'judje' is not an expert of" in result.stderr

    evals.write_text(EVALS + '\n[[cases]]\nname = "hello"\nquery = "again"\n')
    result = evaluate(str(evals), cwd=tmp_path, fake=fake_llm)
    assert result.returncode == 2
    assert "two cases are named 'hello'" in result.stderr

    result = evaluate(str(tmp_path / "nope.toml"), cwd=tmp_path, fake=fake_llm)
    assert result.returncode == 2
    assert "nope.toml not found" in result.stderr


def test_a_case_that_cannot_start_fails_alone(tmp_path: Path, fake_llm: FakeLLM) -> None:
    evals = project(tmp_path, fake_llm)
    evals.write_text(EVALS + '\n[[cases]]\nname = "no seed"\nquery = "q"\nseed = "missing"\n')
    result = evaluate(str(evals), "--json", cwd=tmp_path, fake=fake_llm)
    assert result.returncode == 1, result.stderr
    cases = {case["name"]: case for case in parse_json(result.stdout)["cases"]}
    assert cases["no seed"]["status"] == "error"
    assert (
        "seed folder" in cases["no seed"]["error"] and "does not exist" in cases["no seed"]["error"]
    )
    assert cases["hello"]["passed"]  # the others ran and were stored
