"""create-expert, built in: writes a team, validates it, fixes it, runs it nested, reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from runtime import RunSetting, load_config_for, parse_config, run
from runtime.schema.events import PerstackEvent
from runtime.testing import Reply, ScriptedModel, call, reply, scripted_team

COORDINATOR = "You coordinate the ai-gaming team."
DESIGNER = "You design levels as text maps."


def write(key: str, instruction: str, **extra: Any) -> Reply:
    return call(
        "writeExpertDefinition",
        key=key,
        description=f"{key} expert",
        instruction=instruction,
        **extra,
    )


def scripted() -> ScriptedModel:
    script: dict[str, list[Reply]] = {
        "You build teams of micro-agents": [
            # A deliberate mistake: the delegate key misses the team's scope.
            write("ai-gaming", COORDINATOR, delegates=["level-designer"]),
            write("@ai-gaming/level-designer", DESIGNER),
            call("validatePerstackToml"),
            write("ai-gaming", COORDINATOR, delegates=["@ai-gaming/level-designer"]),
            call("validatePerstackToml"),
            call("runExpert", expertKey="ai-gaming", query="Design one level", maxSteps=10),
            call("attemptCompletion"),
            reply("Built ai-gaming with a level designer; tested with one query."),
        ],
        COORDINATOR: [call("level-designer", query="one level"), reply("Level 1 is ready.")],
        DESIGNER: [call("writeTextFile", path="levels/1.txt", text="#S.E#"), reply("saved")],
    }

    return scripted_team(script)


def results(events: list[PerstackEvent], tool: str) -> list[dict[str, Any]]:
    return [
        json.loads(r.result[0].text)
        for e in events
        if e.type == "resolveToolResults"
        for r in e.tool_results
        if r.tool_name == tool
    ]


async def test_create_expert_builds_tests_and_fixes_a_team(tmp_path: Path) -> None:
    assert not (tmp_path / "perstack.toml").exists()
    events: list[PerstackEvent] = []
    loaded = load_config_for("create-expert", None, tmp_path)  # built in: no file needed
    checkpoint = await run(
        RunSetting(
            expert_key="create-expert", query="Form a team named ai-gaming", workspace=tmp_path
        ),
        events.append,
        model=scripted(),
        config=loaded,
    )
    assert checkpoint.status == "completed"
    first, second = results(events, "validatePerstackToml")
    assert first["valid"] is False
    assert any("level-designer" in d["message"] for d in first["diagnostics"])
    assert second["valid"] is True

    summary = results(events, "runExpert")[0]
    assert summary["status"] == "completed"
    assert summary["result"] == "Level 1 is ready."
    assert [(r["expert"], r["depth"], r["status"]) for r in summary["runs"]] == [
        ("ai-gaming", 0, "completed"),
        ("@ai-gaming/level-designer", 1, "completed"),
    ]
    # The tested team's runs are in the same event stream, linked to the runExpert call.
    run_call = next(
        c
        for e in events
        if e.type == "callTools"
        for c in e.tool_calls
        if c.tool_name == "runExpert"
    )
    nested = next(e for e in events if e.type == "startRun" and e.expert_key == "ai-gaming")
    assert nested.initial_checkpoint.delegated_by.tool_call_id == run_call.id
    assert (tmp_path / "levels/1.txt").read_text() == "#S.E#"
    # The nested usage is paid by create-expert's run: 8 own generations + 4 nested.
    assert checkpoint.usage.total_tokens == 12 * 15

    written = parse_config((tmp_path / "perstack.toml").read_text())
    assert set(written.config.experts) == {"ai-gaming", "@ai-gaming/level-designer"}
    assert written.config.experts["ai-gaming"].delegates == ["@ai-gaming/level-designer"]


EXISTING = """# Our team file: keep this comment.
model = "gpt-4.1"

# The writer stays as it is.
[experts."writer"]
instruction = \"\"\"
Write well.
\"\"\"
"""


async def test_merge_into_an_existing_file_keeps_comments_and_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "perstack.toml"
    path.write_text(EXISTING)
    model = ScriptedModel(
        [
            write("reviewer", "Review the writer's work."),
            call("attemptCompletion"),
            reply("Added reviewer."),
        ]
    )
    await run(
        RunSetting(expert_key="create-expert", query="add a reviewer", workspace=tmp_path),
        model=model,
        config=load_config_for("create-expert", None, tmp_path),
    )
    text = path.read_text()
    assert text.startswith(EXISTING)  # everything that was there is byte-identical
    assert '[experts."reviewer"]' in text or "[experts.reviewer]" in text
    assert (tmp_path / "perstack.toml.bak").read_text() == EXISTING


def test_create_expert_resolves_in_an_empty_directory(tmp_path: Path, fake_llm: Any) -> None:
    from tests.fakellm import reply_text

    fake_llm.script(reply_text("What team would you like?"))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(fake_llm.env())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "studio",
            "run",
            "create-expert",
            "hello",
            "--provider",
            "openai",
            "--model",
            "gpt-4.1",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    last = json.loads(result.stdout.splitlines()[-2])
    assert last["type"] == "completeRun" and last["expertKey"] == "create-expert"
    tools = {t["function"]["name"] for t in fake_llm.requests[0]["tools"]}
    assert {"validatePerstackToml", "writeExpertDefinition", "runExpert", "writeTextFile"} <= tools


async def test_improving_an_existing_expert_edits_only_that_expert(tmp_path: Path) -> None:
    path = tmp_path / "perstack.toml"
    path.write_text(EXISTING + '\n[experts."editor"]\ninstruction = "Edit."\n')
    model = ScriptedModel(
        [
            write("writer", "Write well, in short sentences."),
            call("attemptCompletion"),
            reply("Improved writer."),
        ]
    )
    await run(
        RunSetting(
            expert_key="create-expert", query="Improve the expert writer", workspace=tmp_path
        ),
        model=model,
        config=load_config_for("create-expert", None, tmp_path),
    )
    written = parse_config(path.read_text())
    assert written.config.experts["writer"].instruction == "Write well, in short sentences."
    assert written.config.experts["editor"].instruction == "Edit."
    text = path.read_text()
    assert text.startswith("# Our team file: keep this comment.\n")
    assert "# The writer stays as it is.\n" in text


def eval_scoring_team() -> ScriptedModel:
    """create-expert writes a team and an eval set of two cases, and scores it: one passes (the
    designer writes levels/1.txt), one fails (it writes levels/1.txt again, not levels/2.txt)."""
    cases = [
        {
            "name": "one level",
            "query": "Design one level",
            "checks": [{"type": "fileExists", "path": "levels/1.txt"}],
        },
        {
            "name": "two levels",
            "query": "Design two levels",
            "checks": [
                {"type": "fileExists", "path": "levels/2.txt"},
                {"type": "resultContains", "text": "ready"},
            ],
        },
    ]
    return scripted_team(
        {
            "You build teams of micro-agents": [
                write("ai-gaming", COORDINATOR, delegates=["@ai-gaming/level-designer"]),
                write("@ai-gaming/level-designer", DESIGNER),
                call("writeEvalSet", expert="ai-gaming", cases=cases),
                call("runEvalSet", concurrency=1),
                call("attemptCompletion"),
                reply("1 of 2 cases pass."),
            ],
            COORDINATOR: [
                call("level-designer", query="one level"),
                reply("Level 1 is ready."),
                call("level-designer", query="two levels"),
                reply("Levels are ready."),
            ],
            DESIGNER: [
                call("writeTextFile", path="levels/1.txt", text="#S.E#"),
                reply("saved"),
                call("writeTextFile", path="levels/1.txt", text="#S..E#"),  # not levels/2
                reply("saved"),
            ],
        }
    )


async def test_create_expert_writes_an_eval_set_and_scores_the_team(tmp_path: Path) -> None:
    """Issue 17 item 5: the team it builds is tested against an eval set, and the score kept."""
    model = eval_scoring_team()
    events: list[PerstackEvent] = []
    checkpoint = await run(
        RunSetting(expert_key="create-expert", query="Form ai-gaming", workspace=tmp_path),
        events.append,
        model=model,
        config=load_config_for("create-expert", None, tmp_path),
    )
    assert checkpoint.status == "completed", checkpoint.error
    written = results(events, "writeEvalSet")[0]
    assert written["cases"] == 2 and "+[[cases]]" in written["diff"]
    assert (tmp_path / "evals.toml").read_text().startswith("# Eval set: run it with")

    score = results(events, "runEvalSet")[0]
    assert (score["passed"], score["failed"]) == (1, 1)
    failing = next(case for case in score["cases"] if case["name"] == "two levels")
    assert failing["failures"] == ["levels/2.txt exists: levels/2.txt is missing"]
    # Each case ran in a scratch workspace of its own, as a job of its own, and the score is
    # stored where perstack eval --compare and the studio find it.
    assert not (tmp_path / "levels").exists()
    assert all((tmp_path / "perstack" / "jobs" / case["jobId"]).is_dir() for case in score["cases"])
    stored = list((tmp_path / "perstack" / "evals" / "evals").glob("*.json"))
    assert [json.loads(path.read_text())["id"] for path in stored] == [score["evalRunId"]]
