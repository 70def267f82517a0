"""The eval-set format, its JSON schema and its checks (issue 17 item 3)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest

from runtime import UsageError
from runtime.evals import eval_set_schema, load_eval_set
from runtime.evals.checks import parse_verdict, run_check
from runtime.evals.format import Exec, FileMatches

DOCS = Path(__file__).parents[2] / "docs"


def test_the_schema_in_docs_is_the_one_the_loader_uses() -> None:
    stored = json.loads((DOCS / "eval-set.schema.json").read_text())
    assert stored == eval_set_schema(), "regenerate docs/eval-set.schema.json"


def test_the_example_in_the_docs_is_valid(tmp_path: Path) -> None:
    text = (DOCS / "evals.md").read_text()
    example = re.search(r"```toml\n(.*?)```", text, re.S)
    assert example is not None
    jsonschema.validate(tomllib.loads(example.group(1)), eval_set_schema())
    path = tmp_path / "evals.toml"
    path.write_text(example.group(1))
    loaded = load_eval_set(path)
    assert loaded.name == "writer"
    assert [loaded.expert_of(case) for case in loaded.cases] == ["writer", "writer"]
    assert [check.type for check in loaded.cases[1].checks] == ["exec", "resultMatches"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '[[cases]]\nname = "a"\nquery = "q"\nexpert = "x"\nquerry = 1\n',
            ":5: cases[0].querry: unknown key",
        ),
        (
            '[[cases]]\nname = "a"\nquery = "q"\nexpert = "x"\n[[cases.checks]]\n'
            'type = "fileMatches"\npath = "a"\npattern = "("\n',
            ":8: cases[0].checks[0].pattern: not a valid regular expression",
        ),
        (
            '[[cases]]\nname = "a"\nquery = "q"\nexpert = "x"\n[[cases.checks]]\n'
            'type = "fileExists"\npath = "/etc/passwd"\n',
            ":7: cases[0].checks[0].path: must be a path inside the workspace",
        ),
        ('[[cases]]\nname = "a"\nquery = "q"\n', ":1: cases[0] ('a') names no expert"),
        ("[eval]\n", "cases: Field required"),
        ("cases = [", "not valid TOML"),
    ],
)
def test_mistakes_name_the_file_line_and_key(tmp_path: Path, body: str, expected: str) -> None:
    path = tmp_path / "evals.toml"
    path.write_text(body)
    with pytest.raises(UsageError) as raised:
        load_eval_set(path)
    assert str(path) in raised.value.message
    assert expected in raised.value.message


@pytest.mark.parametrize(
    ("answer", "verdict", "why"),
    [
        ("PASS: all good", True, "all good"),
        ("**FAIL** - the file is empty", False, "the file is empty"),
        ("pass", True, ""),
        ("I think it passes", None, "I think it passes"),
    ],
)
def test_judge_verdicts(answer: str, verdict: bool | None, why: str) -> None:
    assert parse_verdict(answer) == (verdict, why)


async def test_an_exec_check_that_hangs_is_killed_at_its_timeout(tmp_path: Path) -> None:
    async def no_judge(_check: object) -> tuple[bool, str, str | None]:
        raise AssertionError("not a judge check")

    check = Exec(type="exec", command="sleep 30", timeout=0.2)
    result = await run_check(check, tmp_path, "", no_judge)  # type: ignore[arg-type]
    assert not result.passed and result.detail == "timed out after 0.2 s"
    failing = Exec(type="exec", command="echo nope; exit 3")
    result = await run_check(failing, tmp_path, "", no_judge)  # type: ignore[arg-type]
    assert result.detail == "exit 3: nope"
    missing = FileMatches(type="fileMatches", path="a.txt", pattern="x")
    result = await run_check(missing, tmp_path, "", no_judge)  # type: ignore[arg-type]
    assert result.detail == "a.txt is missing" and result.label == "a.txt matches /x/"


async def test_a_cancelled_exec_check_takes_its_command_down(tmp_path: Path) -> None:
    import asyncio
    import os

    async def no_judge(_check: object) -> tuple[bool, str, str | None]:
        raise AssertionError("not a judge check")

    check = Exec(type="exec", command="echo $$ > pid; exec sleep 30", timeout=60)
    task = asyncio.create_task(run_check(check, tmp_path, "", no_judge))  # type: ignore[arg-type]
    pid_file = tmp_path / "pid"
    async with asyncio.timeout(10):  # the shell has written its pid: the command is running
        while True:
            if pid_file.is_file() and pid_file.read_text().strip():
                break
            await asyncio.sleep(0.01)
    pid = int(pid_file.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(10):  # killed with its group, not left running
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            await asyncio.sleep(0.01)


def test_two_judges_of_a_case_have_labels_of_their_own() -> None:
    from runtime.evals.checks import label
    from runtime.evals.format import Judge

    first = Judge(type="judge", expert="critic", rubric="The level is solvable.")
    second = Judge(type="judge", expert="critic", rubric="The level is fun.")
    assert label(first) == "judged by critic: 'The level is solvable.'"
    assert label(first) != label(second)  # --compare and --replay tell them apart
