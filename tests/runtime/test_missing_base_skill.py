"""A skills table without @perstack/base: the file loads, only that expert refuses to run.

Perstack accepts such a file and fails the expert when it runs ("Base skill is not defined");
the other experts of the file run. The loader and the studio's Problems list warn about it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime import ConfigError, RunSetting, parse_config, run
from runtime.testing import ScriptedModel, call, reply

TOML = """\
[experts."lead"]
instruction = "Delegate."
delegates = ["writer"]

[experts."writer"]
instruction = "Write."

[experts."writer".skills."github"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@modelcontextprotocol/server-github"

[experts."ok"]
instruction = "Fine."
"""


def test_the_file_loads_with_a_warning_on_that_expert(tmp_path: Path) -> None:
    loaded = parse_config(TOML, path=tmp_path / "perstack.toml")
    (warning,) = [w for w in loaded.warnings if "Base skill is not defined" in str(w)]
    assert str(warning).startswith(
        'perstack.toml:8 experts."writer".skills: has no "@perstack/base"'
    )


async def test_other_experts_run_and_that_one_is_refused(tmp_path: Path) -> None:
    config = parse_config(TOML, path=tmp_path / "perstack.toml")
    done = await run(
        RunSetting(expert_key="ok", query="go", workspace=tmp_path),
        model=ScriptedModel([reply("done")]),
        config=config,
    )
    assert done.status == "completed"
    with pytest.raises(ConfigError, match=r'^Base skill is not defined: expert "writer"'):
        await run(
            RunSetting(expert_key="writer", query="go", workspace=tmp_path, job_id="refused"),
            model=ScriptedModel([reply("never")]),
            config=config,
        )
    assert not (tmp_path / "perstack" / "jobs" / "refused").exists()  # nothing stored


async def test_a_delegate_without_it_fails_when_called(tmp_path: Path) -> None:
    """The delegate is refused; its parent gets the refusal as a failed tool result and goes on."""
    config = parse_config(TOML, path=tmp_path / "perstack.toml")
    done = await run(
        RunSetting(expert_key="lead", query="go", workspace=tmp_path),
        model=ScriptedModel([call("writer", query="write"), reply("done")]),
        config=config,
    )
    assert done.status == "completed"
    (result,) = [
        part
        for message in done.messages
        if message.type == "toolMessage"
        for part in message.contents
        if part.tool_name == "writer"
    ]
    assert result.is_error
    text = "".join(c.text for c in result.contents if c.type == "textPart")
    assert 'Base skill is not defined: expert "writer"' in text


def test_the_studio_lists_it_as_a_warning() -> None:
    from studio.session import analyse

    analysis = analyse(TOML)
    (problem,) = [d for d in analysis.diagnostics if "Base skill is not defined" in d.message]
    assert problem.severity == "warning" and problem.line == 8
    assert "writer" not in analysis.problem_experts
