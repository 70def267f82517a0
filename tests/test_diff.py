"""``perstack diff JOB_A [JOB_B]``: two real jobs (scripted model) compared step by step."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from runtime import RunSetting, parse_config, run
from runtime.diff import diff_jobs
from runtime.diff import main as diff_main
from runtime.jobs import Jobs
from runtime.testing import Reply, ScriptedModel, call, fail, reply, scripted_team
from studio.__main__ import main as perstack_main

TEAM = """
[experts."solo"]
instruction = "Work alone."

[experts."lead"]
instruction = "You lead the team."
delegates = ["helper", "checker"]

[experts."helper"]
instruction = "You help the lead."

[experts."checker"]
instruction = "You check the work."
"""


async def job(workspace: Path, job_id: str, expert: str, model: ScriptedModel) -> str:
    config = parse_config(TEAM, path=workspace / "perstack.toml")
    setting = RunSetting(expert_key=expert, query="do it", workspace=workspace, job_id=job_id)
    await run(setting, lambda _: None, model=model, config=config)
    return job_id


async def solo(workspace: Path, job_id: str, *replies: Reply) -> str:
    return await job(workspace, job_id, "solo", ScriptedModel(list(replies)))


def diff(workspace: Path, *args: str, tty: bool = False) -> tuple[int, str, str]:
    out, err = (_Terminal() if tty else io.StringIO()), io.StringIO()
    code = diff_main(list(args), stdout=out, stderr=err, workspace=workspace)
    return code, out.getvalue(), err.getvalue()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def as_json(workspace: Path, *args: str) -> dict[str, Any]:
    code, out, err = diff(workspace, *args, "--json")
    assert code == 0, err
    assert out.count("\n") == 1  # one document on one line
    document: dict[str, Any] = json.loads(out)
    return document


async def test_two_jobs_that_did_the_same_do_not_differ(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    script = [call("readTextFile", path="a.txt"), reply("It says alpha.")]
    await solo(tmp_path, "first", *script)
    await solo(tmp_path, "second", *script)
    code, out, err = diff(tmp_path, "first", "second", "--exit-code")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("- A  job first · solo · completed · 2 steps · 30 tokens")
    assert lines[1].startswith("+ B  job second · solo · completed · 2 steps · 30 tokens")
    assert lines[2].startswith("No differences: the same delegation tree, tool calls, arguments")
    assert lines[3].startswith("0 of 2 steps differ · 30 tokens · ")
    assert "= solo · completed · 2 steps · 30 tok · " in out
    assert '= step 1 · readTextFile(path="a.txt") · 15 tok · ' in out
    assert "≠" not in out and "\x1b" not in out  # not a terminal: no colour
    document = as_json(tmp_path, "first", "second")
    assert document["same"] is True and document["firstDivergence"] is None
    assert document["counts"]["changedSteps"] == 0
    (root,) = document["tree"]
    assert [step["state"] for step in root["steps"]] == ["same", "same"]
    assert root["steps"][0]["a"]["toolCalls"] == [
        {"toolName": "readTextFile", "args": {"path": "a.txt"}}
    ]


async def test_the_first_divergence_is_named_with_the_arguments_results_and_text(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "b.txt").write_text("beta")
    await solo(tmp_path, "ja", call("readTextFile", path="a.txt"), reply("It says alpha."))
    await solo(tmp_path, "jb", call("readTextFile", path="b.txt"), reply("It says beta."))
    code, out, _ = diff(tmp_path, "ja", "jb")
    assert code == 0  # differing is an answer, not a failure
    assert out.splitlines()[2] == (
        'First divergence: solo, step 1: readTextFile path: "a.txt" → "b.txt" (+1 more)'
    )
    assert "2 of 2 steps differ" in out.splitlines()[3]
    block = out[out.index("≠ step 1") :]
    assert block.splitlines()[1:4] == [
        "        readTextFile path",
        '            - "a.txt"',
        '            + "b.txt"',
    ]
    assert "readTextFile result" in block and "alpha" in block and "beta" in block
    assert "            - It says alpha.\n            + It says beta." in out
    assert diff(tmp_path, "ja", "jb", "--exit-code")[0] == 1

    document = as_json(tmp_path, "ja", "jb")
    assert document["same"] is False
    assert document["firstDivergence"] == {
        "path": ["solo"],
        "call": 1,
        "step": {"a": 1, "b": 1},
        "field": "args",
        "text": 'solo, step 1: readTextFile path: "a.txt" → "b.txt" (+1 more)',
    }
    first, second = document["tree"][0]["steps"]
    assert [d["field"] for d in first["differences"]] == ["args", "result"]
    assert first["differences"][0] == {
        "field": "args",
        "label": "readTextFile path",
        "a": "a.txt",
        "b": "b.txt",
    }
    result_a, result_b = first["differences"][1]["a"], first["differences"][1]["b"]
    assert "alpha" in result_a["text"] and "beta" in result_b["text"]
    assert second["differences"] == [
        {"field": "text", "label": "text", "a": "It says alpha.", "b": "It says beta."}
    ]
    assert document["a"]["jobId"] == "ja" and document["b"]["usage"]["totalTokens"] == 30
    assert isinstance(first["a"]["durationMs"], int)


async def test_an_extra_step_is_shown_and_the_steps_after_it_still_pair_up(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    done = reply("Done.")
    await solo(tmp_path, "short", call("readTextFile", path="a.txt"), done)
    await solo(
        tmp_path,
        "long",
        call("readTextFile", path="a.txt"),
        call("listDirectory", path="."),
        done,
    )
    code, out, _ = diff(tmp_path, "short", "long")
    assert code == 0
    assert out.splitlines()[2] == (
        'First divergence: solo, step 2 (only in B): listDirectory(path=".")'
    )
    assert "0 of 3 steps differ · 1 step only in B" in out
    assert '+ step 2 (only in B) · listDirectory(path=".")' in out
    assert "= step 2 (B: 3) · “Done.”" in out  # the final answers pair up
    document = as_json(tmp_path, "short", "long")
    states = [step["state"] for step in document["tree"][0]["steps"]]
    assert states == ["same", "onlyInB", "same"]
    assert document["counts"]["stepsOnlyInB"] == 1


def team(lead: list[Reply], helper: list[Reply], checker: list[Reply]) -> ScriptedModel:
    return scripted_team(
        {"You lead the team": lead, "You help the lead": helper, "You check the work": checker}
    )


async def test_delegates_are_aligned_by_expert_and_call_order(tmp_path: Path) -> None:
    both = [call("helper", query="one"), call("helper", query="two"), reply("lead done")]
    await job(
        tmp_path,
        "two-helps",
        "lead",
        team(both, [reply("h1"), reply("h2")], []),
    )
    checked = [
        call("helper", query="one"),
        call("checker", query="check one"),
        reply("lead done"),
    ]
    await job(tmp_path, "help-and-check", "lead", team(checked, [reply("h1")], [reply("ok")]))
    code, out, _ = diff(tmp_path, "two-helps", "help-and-check")
    assert code == 0
    # The first helper call pairs up and is the same; the second (only in A) and the checker
    # (only in B) are each shown as such, under the step that called them.
    assert out.splitlines()[2] == ("First divergence: lead, step 4: tool calls: helper → checker")
    assert "= helper · completed · 1 step · 15 tok" in out
    assert "- helper [2] · only in A · completed · 1 step" in out
    assert "+ checker · only in B · completed · 1 step" in out
    assert out.index("≠ step 4") < out.index("- helper [2]") < out.index("+ checker · only")
    assert "        checker result\n            - (none)\n            + ok" in out
    document = as_json(tmp_path, "two-helps", "help-and-check")
    (lead,) = document["tree"]
    children = [(c["expertKey"], c["call"], c["state"]) for c in lead["children"]]
    assert children == [("helper", 1, "same"), ("helper", 2, "onlyInA"), ("checker", 1, "onlyInB")]
    assert [c["path"] for c in lead["children"]][2] == ["lead", "checker"]
    assert document["counts"]["runsOnlyInA"] == document["counts"]["runsOnlyInB"] == 1


async def test_a_step_that_failed_differs_by_how_it_ended_and_its_error(tmp_path: Path) -> None:
    await solo(tmp_path, "ok", reply("Fine."))
    await solo(tmp_path, "broken", fail("the key was refused", retryable=False))
    document = as_json(tmp_path, "ok", "broken")
    assert document["differences"] == [
        {"field": "status", "label": "job status", "a": "completed", "b": "stoppedByError"}
    ]
    (step,) = document["tree"][0]["steps"]
    fields = {d["field"]: (d["a"], d["b"]) for d in step["differences"]}
    assert fields["end"] == ("completed", "stopped by error")
    assert fields["error"] == (None, "AuthenticationError: the key was refused")
    assert document["firstDivergence"]["text"].startswith(
        "solo, step 1: ended: completed → stopped by error"
    )


async def test_one_job_is_compared_with_the_job_it_replays(tmp_path: Path) -> None:
    await solo(tmp_path, "origin", reply("First."))
    await solo(tmp_path, "again", reply("Second."))
    jobs = Jobs.for_workspace(tmp_path)
    path = jobs.job_dir("again") / "job.json"
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "origin": {"kind": "replay", "jobId": "origin"}}))
    code, out, _ = diff(tmp_path, "again")
    assert code == 0
    assert out.splitlines()[0].startswith("- A  job origin · solo")
    assert out.splitlines()[1].endswith("· replay of job origin")
    assert "text: First. → Second." in out.splitlines()[2]
    document = as_json(tmp_path, "again")
    assert document["b"]["origin"] == {"kind": "replay", "jobId": "origin"}
    code, _, err = diff(tmp_path, "origin")
    assert code == 2
    assert err == (
        "perstack diff: Job 'origin' is neither a replay nor a fork: name the job to compare "
        "it with (perstack diff JOB_A JOB_B)\n"
    )


async def test_an_unknown_job_is_one_line_naming_it_and_where_it_looked(
    tmp_path: Path,
) -> None:
    await solo(tmp_path, "job-one", reply("Hi."))
    code, out, err = diff(tmp_path, "job-one", "job-onf")
    assert (code, out) == (2, "")
    jobs_dir = tmp_path / "perstack" / "jobs"
    assert err == (
        f"perstack diff: Job 'job-onf' not found in {jobs_dir} (did you mean job-one?)\n"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = diff(empty, "a", "b")
    assert code == 2
    assert err.splitlines() == [
        f"perstack diff: Job 'a' not found in {empty / 'perstack' / 'jobs'} "
        "(no job is stored there)"
    ]


@pytest.mark.parametrize("argv", [[], ["only-one", "two", "three"], ["a", "b", "--colour"]])
def test_bad_arguments_exit_2(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert diff(tmp_path, *argv)[0] == 2
    assert "usage: perstack diff" in capsys.readouterr().err


async def test_colour_only_on_a_terminal_without_no_color(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await solo(tmp_path, "ja", reply("One \x1b[31mred\x1b[0m word."))
    await solo(tmp_path, "jb", reply("Two."))
    monkeypatch.setenv("NO_COLOR", "")  # empty counts as unset
    _, coloured, _ = diff(tmp_path, "ja", "jb", tty=True)
    assert "\x1b[33m≠ \x1b[0m" in coloured  # a differing step's mark, yellow
    # Stored text never reaches the terminal as escape codes, coloured or not.
    assert "One \\x1b[31mred\\x1b[0m word." in coloured
    assert "\x1b[31mred" not in coloured
    monkeypatch.setenv("NO_COLOR", "1")
    _, plain, _ = diff(tmp_path, "ja", "jb", tty=True)
    assert "\x1b" not in plain and "One \\x1b[31mred" in plain


async def test_perstack_diff_is_a_command_and_honours_no_color(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await solo(tmp_path, "ja", reply("A."))
    await solo(tmp_path, "jb", reply("B."))
    monkeypatch.chdir(tmp_path)
    # Empty counts as unset, and is put back after the test: --no-color sets it for the process.
    monkeypatch.setenv("NO_COLOR", "")
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    assert perstack_main(["diff", "ja", "jb", "--no-color"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[2] == "First divergence: solo, step 1: text: A. → B."
    assert "\x1b" not in out


async def test_the_diff_is_read_through_the_jobs_api_only(tmp_path: Path) -> None:
    """Jobs stored without job.json (as Perstack stores them) compare the same."""
    await solo(tmp_path, "ja", reply("Same."))
    await solo(tmp_path, "jb", reply("Same."))
    jobs = Jobs.for_workspace(tmp_path)
    before = diff_jobs(jobs, "ja", "jb")
    (jobs.job_dir("jb") / "job.json").unlink()
    after = diff_jobs(jobs, "ja", "jb")
    assert before.same and after.same
    assert [n.to_dict()["steps"] for _, n in before.walk()] == [
        n.to_dict()["steps"] for _, n in after.walk()
    ]
