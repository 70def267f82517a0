"""perstack.lock: ``perstack install`` writes it, runs use it to defer MCP start-up (§7, §18.9).

Real processes throughout: the base skill served over stdio through ``perstackBaseSkillCommand``
and the toy MCP server from ``tests/mcp_servers``.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import re
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import runtime.engine.expert_run
import runtime.engine.runner
from runtime import RunSetting, load_config, run
from runtime.config.resolve import resolve_expert
from runtime.config.schema import McpStdioSkill
from runtime.engine.context import JobContext
from runtime.install import install, main
from runtime.schema.checkpoint import Checkpoint, ExpertRef, Job, Usage
from runtime.schema.events import PerstackEvent, ResolveToolResults, now_ms
from runtime.schema.ids import new_id
from runtime.schema.messages import TextPart
from runtime.skills.lockfile import (
    LockedExpert,
    LockedTool,
    Lockfile,
    dumps_lockfile,
    load_lockfile,
    read_lockfile,
    skill_definition_hash,
)
from runtime.testing import Reply, ScriptedModel, call, calls, reply

PY = sys.executable
TOY = str(Path(__file__).resolve().parents[1] / "mcp_servers" / "toy_server.py")

TOML = f"""
model = "scripted"
perstackBaseSkillCommand = [{json.dumps(PY)}, "-m", "runtime.skills.base_server"]

[experts."agent"]
instruction = '''
Use the toy.
Say "done" when done.'''
delegates = ["helper"]

[experts."agent".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
pick = ["readTextFile", "attemptCompletion"]

[experts."agent".skills."toy"]
type = "mcpStdioSkill"
command = {json.dumps(PY)}
args = [{json.dumps(TOY)}]
omit = ["crash", "hang"]

[experts."agent".skills."ask"]
type = "interactiveSkill"
[experts."agent".skills."ask".tools."askUser"]
inputJsonSchema = '{{"type": "object", "properties": {{"q": {{"type": "string"}}}}}}'

[experts."helper"]
description = "Helps"
instruction = "Help."
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with perstack.toml and the perstack.lock that install wrote for it."""
    project = tmp_path_factory.mktemp("installed")
    (project / "perstack.toml").write_text(TOML)
    out, progress = io.StringIO(), io.StringIO()
    asyncio.run(install(cwd=project, out=out, progress=progress))
    (project / "install-output.txt").write_text(out.getvalue())
    (project / "install-progress.txt").write_text(progress.getvalue())
    return project


def test_install_names_the_servers_it_starts_and_how_long_they_took(installed: Path) -> None:
    progress = (installed / "install-progress.txt").read_text().splitlines()
    # Each expert's servers start together; a server shared with an earlier expert is not
    # started again (the helper's base skill has another definition, so it is).
    assert progress[0::2] == [
        "  starting 2 MCP servers: @perstack/base, toy...",
        "  starting 1 MCP server: @perstack/base...",
    ]
    assert all(re.fullmatch(r"  started in \d+\.\d s", line) for line in progress[1::2])
    assert len(progress) == 4


@pytest.fixture
def project(installed: Path, tmp_path: Path) -> Path:
    """A private copy of the installed project (tests may edit it)."""
    copy = tmp_path / "project"
    shutil.copytree(installed, copy)
    return copy


def index_of(events: list[PerstackEvent], kind: str, skill: str | None = None) -> int:
    for position, event in enumerate(events):
        if event.type == kind and (skill is None or getattr(event, "skill_name", None) == skill):
            return position
    raise AssertionError(f"no {kind} event for {skill}")


def skill_types(events: list[PerstackEvent], skill: str) -> list[str]:
    return [e.type for e in events if getattr(e, "skill_name", None) == skill]


async def run_agent(
    workspace: Path, replies: list[Reply], lockfile: Lockfile | None
) -> tuple[Checkpoint, list[PerstackEvent], ScriptedModel]:
    """Run "agent" through the runner's expert loop with ``lockfile`` on the job context.

    Equivalent to ``runtime.run`` once run() puts ``load_lockfile(loaded)`` on its JobContext
    (see the test below that goes through run() itself).
    """
    loaded = load_config(None, workspace)
    expert = resolve_expert(loaded, "agent")
    events: list[PerstackEvent] = []
    model = ScriptedModel(replies)
    job = Job(id=new_id(), status="running", coordinator_expert_key="agent", started_at=now_ms())
    context = JobContext(
        job=job,
        model=model,
        workspace=workspace,
        max_steps=20,
        max_retries=0,
        timeout_ms=60_000,
        reasoning_budget="low",
        retry_base_delay_ms=0,
        env={"PATH": "/usr/bin:/bin"},
        storage=None,
        listener=events.append,
        expert_keys=["agent", "helper"],
        lockfile=lockfile,
    )
    run_id = new_id()
    start = Checkpoint(
        id=new_id(),
        job_id=job.id,
        run_id=run_id,
        status="init",
        step_number=1,
        messages=[],
        expert=ExpertRef(key=expert.key, name=expert.name, version=expert.version),
        usage=Usage(),
    )
    async with asyncio.timeout(30):
        final = await runtime.engine.expert_run.run_expert(
            context, loaded, expert, start, "go", run_id=run_id, coordinator=True
        )
    return final, events, model


def echo_result(events: list[PerstackEvent]) -> str:
    for event in events:
        if isinstance(event, ResolveToolResults):
            for result in event.tool_results:
                if result.tool_name == "echo":
                    assert not result.is_error
                    return "".join(p.text for p in result.result if isinstance(p, TextPart))
    raise AssertionError("no echo result")


# perstack install ------------------------------------------------------------------------------


def test_install_writes_perstack_lock(installed: Path) -> None:
    output = (installed / "install-output.txt").read_text().splitlines()
    assert output[:3] == [
        "Resolving experts...",
        "Found 2 expert(s)",
        "Collecting tool definitions for agent...",
    ]
    assert output[3].startswith("  Found ") and output[3].endswith(" tool(s)")
    assert output[4:6] == ["Collecting tool definitions for helper...", "  Found 17 tool(s)"]
    assert output[6] == f"Generated {installed / 'perstack.lock'}"
    data = tomllib.loads((installed / "perstack.lock").read_text())
    assert data["version"] == "1"
    assert data["configPath"] == "perstack.toml"
    assert isinstance(data["generatedAt"], int)
    agent = data["experts"]["agent"]
    assert agent["key"] == agent["name"] == "agent"
    assert agent["version"] == "1.0.0"
    assert agent["instruction"] == 'Use the toy.\nSay "done" when done.'
    assert agent["delegates"] == ["helper"]
    assert set(agent["skills"]) == {"@perstack/base", "toy", "ask"}
    by_skill: dict[str, set[str]] = {}
    for tool in agent["toolDefinitions"]:
        assert set(tool) >= {"skillName", "name", "description", "inputSchema"}
        by_skill.setdefault(tool["skillName"], set()).add(tool["name"])
    # Recorded before pick/omit, so editing pick never makes the entry stale.
    assert {"readTextFile", "writeTextFile", "exec"} <= by_skill["@perstack/base"]
    assert {"echo", "crash", "hang", "mixed"} <= by_skill["toy"]
    assert by_skill["ask"] == {"askUser"}
    assert "helper" not in {tool["name"] for tool in agent["toolDefinitions"]}  # no delegates
    assert len(output) == 7 and output[3] == f"  Found {len(agent['toolDefinitions'])} tool(s)"
    assert set(agent["skillHashes"]) == {"@perstack/base", "toy", "ask"}
    lockfile = read_lockfile(installed / "perstack.lock")
    assert set(lockfile.experts) == {"agent", "helper"}
    # The helper's injected base skill (npx -y @perstack/base) was rewritten too.
    helper_skills = {t.skill_name for t in lockfile.experts["helper"].tool_definitions}
    assert helper_skills == {"@perstack/base"}


def perstack_schema_problems(data: dict[str, Any]) -> list[str]:
    """What Perstack's lockfileSchema (packages/core/src/schemas/lockfile.ts, zod) would refuse.

    A refusal there makes Perstack ignore the whole file, silently.
    """
    problems: list[str] = []

    def need(where: str, table: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> None:
        if not isinstance(table.get(key), kind):
            problems.append(f"{where}.{key} missing or not {kind}")

    need("", data, "version", str)
    need("", data, "generatedAt", int)
    need("", data, "configPath", str)
    for key, expert in data["experts"].items():
        where = f"experts.{key}"
        for field in ("key", "name", "version", "instruction"):
            need(where, expert, field, str)
        for field in ("delegates", "tags", "toolDefinitions"):
            need(where, expert, field, list)
        need(where, expert, "skills", dict)
        for name, skill in expert["skills"].items():
            at = f"{where}.skills.{name}"
            need(at, skill, "name", str)
            kind = skill.get("type")
            if kind == "mcpStdioSkill":
                need(at, skill, "command", str)
            elif kind == "mcpSseSkill":
                need(at, skill, "endpoint", str)
            elif kind == "interactiveSkill":
                need(at, skill, "tools", dict)
                for tool, spec in skill["tools"].items():
                    need(f"{at}.tools.{tool}", spec, "inputJsonSchema", str)
            else:
                problems.append(f"{at}.type {kind!r} is not one of Perstack's skill types")
        for index, tool in enumerate(expert["toolDefinitions"]):
            need(f"{where}.toolDefinitions[{index}]", tool, "skillName", str)
            need(f"{where}.toolDefinitions[{index}]", tool, "name", str)
            need(f"{where}.toolDefinitions[{index}]", tool, "inputSchema", dict)
    return problems


def test_the_lockfile_passes_perstack_s_schema_and_perstack_s_lockfile_reads_here(
    installed: Path,
) -> None:
    data = tomllib.loads((installed / "perstack.lock").read_text())
    assert perstack_schema_problems(data) == []
    assert data["experts"]["agent"]["skills"]["toy"]["name"] == "toy"
    # A lockfile Perstack wrote: the same tables without our skillHashes.
    for expert in data["experts"].values():
        del expert["skillHashes"]
    import tomlkit

    perstack_lock = installed / "perstack-written.lock"
    perstack_lock.write_text(tomlkit.dumps(data))
    lockfile = read_lockfile(perstack_lock)
    assert set(lockfile.experts) == {"agent", "helper"}
    assert lockfile.experts["agent"].tool_definitions
    assert lockfile.experts["agent"].skill_hashes == {}


def test_install_command_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([]) == 2
    assert "perstack.toml" in capsys.readouterr().err

    (tmp_path / "perstack.toml").write_text(
        '[experts."a"]\ninstruction = "x"\ndelegates = ["ghost"]\n'
    )
    assert main([]) == 2
    assert 'Delegate expert "ghost" not found' in capsys.readouterr().err

    (tmp_path / "perstack.toml").write_text(
        '[experts."a"]\ninstruction = "x"\n'
        '[experts."a".skills."@perstack/base"]\ntype = "mcpStdioSkill"\ncommand = "npx"\n'
        'packageName = "@perstack/base"\n'
        '[experts."a".skills."tool"]\ntype = "mcpStdioSkill"\ncommand = "perstack-missing-cmd"\n'
        'args = ["serve"]\n'
    )
    assert main(["--config", "perstack.toml"]) == 1
    captured = capsys.readouterr()
    assert '"tool"' in captured.err and "perstack-missing-cmd" in captured.err
    assert "Collecting tool definitions for a..." in captured.out
    assert not (tmp_path / "perstack.lock").exists()


# Runs with a lockfile --------------------------------------------------------------------------


async def test_first_model_call_comes_before_any_server_starts(project: Path) -> None:
    lockfile = load_lockfile(load_config(None, project))
    assert lockfile is not None
    checkpoint, events, model = await run_agent(
        project,
        # Two calls at once to the deferred skill: it starts once, both are answered.
        [calls(("echo", {"text": "hi"}), ("structured", {})), reply("done")],
        lockfile,
    )
    assert checkpoint.status == "completed"
    first_generation = index_of(events, "startGeneration")
    assert index_of(events, "skillStarting", "toy") > first_generation
    assert index_of(events, "skillConnected", "toy") > first_generation
    assert echo_result(events) == "hi"
    # The recorded tools were offered, with the current pick/omit applied.
    offered = {tool.name for tool in model.requests[0].tools}
    assert {"readTextFile", "attemptCompletion", "echo", "mixed", "askUser", "helper"} <= offered
    assert not offered & {"crash", "hang", "writeTextFile"}
    # A recorded skill that is never called never starts.
    assert skill_types(events, "@perstack/base") == []
    assert [t for t in skill_types(events, "toy") if t != "skillStderr"] == [
        "skillStarting",
        "skillConnected",
        "skillDisconnected",
    ]


async def test_stale_entry_is_reported_then_started_live(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    toml = (project / "perstack.toml").read_text()
    (project / "perstack.toml").write_text(
        toml.replace(f"args = [{json.dumps(TOY)}]", f'args = [{json.dumps(TOY)}, "--name", "v2"]')
    )
    lockfile = load_lockfile(load_config(None, project))
    assert lockfile is not None
    checkpoint, events, _ = await run_agent(
        project, [call("echo", text="x"), reply("ok")], lockfile
    )
    assert checkpoint.status == "completed"
    warning = "\n".join(r.getMessage() for r in caplog.records if r.name == "runtime")
    assert 'perstack.lock has no up-to-date entry for skill "toy"' in warning
    assert "@perstack/base" not in warning  # unchanged skills stay deferred
    first_generation = index_of(events, "startGeneration")
    assert index_of(events, "skillConnected", "toy") < first_generation
    assert skill_types(events, "@perstack/base") == []


def _run_loads_lockfile() -> bool:
    return "load_lockfile" in inspect.getsource(runtime.engine.runner)


@pytest.mark.skipif(
    not _run_loads_lockfile(), reason="runtime.run does not pass load_lockfile(loaded) yet"
)
async def test_run_uses_the_lockfile(project: Path) -> None:
    events: list[PerstackEvent] = []
    async with asyncio.timeout(30):
        checkpoint = await run(
            RunSetting(expert_key="agent", query="go", workspace=project, retry_base_delay_ms=0),
            events.append,
            model=ScriptedModel([call("echo", text="hi"), reply("done")]),
            config=load_config(None, project),
        )
    assert checkpoint.status == "completed"
    assert index_of(events, "skillStarting", "toy") > index_of(events, "startGeneration")
    assert echo_result(events) == "hi"


# The file itself -------------------------------------------------------------------------------


def test_unreadable_or_invalid_lockfile_is_ignored_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text('[experts."a"]\ninstruction = "x"\n')
    loaded = load_config(None, tmp_path)
    warnings: list[str] = []
    assert load_lockfile(loaded, warn=warnings.append) is None
    assert warnings == []  # no lockfile is normal
    (tmp_path / "perstack.lock").write_text("this is = = not toml")
    assert load_lockfile(loaded, warn=warnings.append) is None
    (tmp_path / "perstack.lock").write_text('version = "2"\ngeneratedAt = 1\nconfigPath = "x"\n')
    assert load_lockfile(loaded, warn=warnings.append) is None
    assert len(warnings) == 2
    assert all(w.startswith("perstack.lock is ignored") for w in warnings)
    assert "version" in warnings[1]


def test_definition_hash_tracks_what_decides_the_server() -> None:
    def skill(**fields: Any) -> McpStdioSkill:
        return McpStdioSkill(
            **{"type": "mcpStdioSkill", "command": "uvx", "args": ["srv"], **fields}
        )

    reference = skill_definition_hash("s", skill())
    for same in (
        skill(pick=["a"]),
        skill(omit=["b"]),
        skill(rule="be nice"),
        skill(description="d"),
        skill(lazy_init=True),
    ):
        assert skill_definition_hash("s", same) == reference
    for other in (skill(args=["srv", "--x"]), skill(command="npx"), skill(required_env=["TOKEN"])):
        assert skill_definition_hash("s", other) != reference
    base = McpStdioSkill(type="mcpStdioSkill", command="npx", package_name="@perstack/base")
    bundled = skill_definition_hash("@perstack/base", base)
    assert skill_definition_hash("@perstack/base", base, ["python", "-m", "x"]) != bundled


def test_toml_round_trip_keeps_schemas_and_instructions() -> None:
    schema = {
        "type": "object",
        "properties": {
            "q": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "n": {"type": "integer", "enum": [1, 2, 3], "description": 'a "quoted" \\ value'},
        },
        "required": ["q"],
    }
    instruction = 'Line one.\nA """triple""" quote and a \\ backslash.\n'
    lockfile = Lockfile(
        version="1",
        generated_at=123,
        config_path="perstack.toml",
        experts={
            "@org/writer": LockedExpert(
                key="@org/writer",
                name="@org/writer",
                version="1.2.3",
                instruction=instruction,
                tool_definitions=[
                    LockedTool(skill_name="s", name="t", description="", input_schema=schema)
                ],
                skill_hashes={"s": "abc"},
            )
        },
    )
    parsed = Lockfile.model_validate(tomllib.loads(dumps_lockfile(lockfile)))
    entry = parsed.experts["@org/writer"]
    assert entry.instruction == instruction
    expected = json.loads(json.dumps(schema))
    del expected["properties"]["q"]["default"]  # TOML has no null
    assert entry.tool_definitions[0].input_schema == expected
    assert entry.skill_hashes == {"s": "abc"}
