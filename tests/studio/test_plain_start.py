"""`perstack start --no-tui` (and any start without a terminal): the plain-text live view."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fakellm import FakeLLM, reply_text, reply_tool_calls


def start(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "studio", "start", *args],
        cwd=cwd,
        env=environ,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_shows_the_delegation_indented(tmp_path: Path) -> None:
    result = start("--demo", "--no-tui", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Demo: the bundled team on a scripted model (no API key)")
    assert "▶ game-studio [step 1] Make a tiny maze game for the terminal." in lines
    # Delegated runs are indented one level under the coordinator.
    assert "  ▶ @demo/level-designer [step 2] Design the first maze level." in lines
    assert "  ▶ @demo/programmer [step 2] Write a script that prints the maze." in lines
    assert any(line.startswith("✔ game-studio done [step 5, ") for line in lines)
    assert "Run it with: python src/maze.py" in lines
    assert "\x1b[" not in result.stdout  # no colour codes when not on a terminal
    # The two delegates run side by side: each of their tool lines names its expert.
    tool_lines = [line for line in lines if line.startswith("    [") or line.startswith("    →")]
    assert tool_lines and all(line.startswith("    [@demo/") for line in tool_lines)
    assert any(line.startswith("    [@demo/programmer] → writeTextFile(") for line in lines)
    assert any(line.startswith("    [@demo/level-designer] ✓ writeTextFile: ") for line in lines)
    # The coordinator alone: no label.
    assert '  → level-designer(query="Design the first maze level.")' in lines


TOML = """
[experts."asker"]
instruction = "Ask first."
[experts."asker".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
[experts."asker".skills."ask"]
type = "interactiveSkill"
[experts."asker".skills."ask".tools."askName"]
inputJsonSchema = '{"type": "object", "properties": {"q": {"type": "string"}}}'
"""


def test_interactive_question_is_answered_on_stdin(tmp_path: Path, fake_llm: FakeLLM) -> None:
    (tmp_path / "perstack.toml").write_text(TOML)
    fake_llm.script(reply_tool_calls([("askName", {"q": "Your name?"})]), reply_text("Hi Ada"))
    result = start(
        "asker",
        "greet me",
        "--provider",
        "openai",
        "--model",
        "gpt-4.1",
        cwd=tmp_path,
        env=fake_llm.env(),
        stdin="Ada\n",
    )
    assert result.returncode == 0, result.stderr
    assert "? askName asks: {'q': 'Your name?'}" in result.stdout
    assert "▶ asker [step 2] (resumed with your answer)" in result.stdout
    assert result.stdout.rstrip().endswith("Hi Ada")
    tool_messages = [m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert tool_messages[-1]["content"] == "Ada"


def test_without_a_terminal_start_needs_expert_and_query(tmp_path: Path) -> None:
    result = start(cwd=tmp_path)
    assert result.returncode == 2
    assert "perstack start needs EXPERT and QUERY" in result.stderr


def test_start_forks_from_a_checkpoint(tmp_path: Path, fake_llm: FakeLLM) -> None:
    """`perstack start EXPERT QUERY --fork-from CHECKPOINT` without a terminal: a new job."""
    from runtime.jobs import Jobs

    (tmp_path / "perstack.toml").write_text(TOML)
    model = ("--provider", "openai", "--model", "gpt-4.1")
    fake_llm.script(
        reply_tool_calls([("askName", {"q": "Your name?"})]),
        reply_text("Hi Ada"),
    )
    first = start("asker", "greet me", *model, cwd=tmp_path, env=fake_llm.env(), stdin="Ada\n")
    assert first.returncode == 0, first.stderr
    (origin,) = Jobs.for_workspace(tmp_path).list_jobs()
    point = Jobs.for_workspace(tmp_path).checkpoints(origin.id)[-1]  # completed: a follow-up
    fake_llm.script(reply_text("Hello again"))
    forked = start(
        "asker", "and again", *model, "--fork-from", point.id, cwd=tmp_path, env=fake_llm.env()
    )
    assert forked.returncode == 0, forked.stderr
    assert forked.stdout.rstrip().endswith("Hello again")
    jobs = Jobs.for_workspace(tmp_path).list_jobs()
    assert len(jobs) == 2
    assert jobs[0].origin == {"kind": "fork", "jobId": origin.id, "checkpointId": point.id}
