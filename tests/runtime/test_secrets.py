"""The run's secrets stay out of tool results, the conversation, events and storage."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from runtime import RunSetting, parse_config, run
from runtime.config.env import env_file_paths
from runtime.engine.context import JobContext
from runtime.engine.secrets import Redactor, is_secret_name, secret_names
from runtime.schema.checkpoint import Job
from runtime.schema.events import PerstackEvent, ResolveToolResults, SkillStderr, now_ms
from runtime.schema.messages import ImageInlinePart, TextPart
from runtime.skills.types import ToolOutcome
from runtime.testing import ScriptedModel, call, reply

TOY = str(Path(__file__).resolve().parents[1] / "mcp_servers" / "toy_server.py")

API_KEY = "sk-live-abcdefghijklmnop0123"
STATION = "wx-station-0042-private"
SHORT = "abc123"


def test_secret_names_are_recognised_by_their_shape() -> None:
    for name in (
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SESSION_TOKEN",
        "GITHUB_TOKEN",
        "DB_PASSWORD",
        "CLIENT_SECRET_VALUE",
        "stripe_key",
        "GH_PAT",
    ):
        assert is_secret_name(name), name
    for name in ("PATH", "HOME", "MAX_TOKENS", "KEYBOARD_LAYOUT", "LANG", "PROVIDER"):
        assert not is_secret_name(name), name


def test_mcp_skill_variables_count_as_secrets_whatever_their_names() -> None:
    config = parse_config(
        """
[experts."a"]
instruction = "x"
[experts."a".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
[experts."a".skills."weather"]
type = "mcpStdioSkill"
command = "weather-server"
requiredEnv = ["WEATHER_ID"]
[experts."b"]
instruction = "y"
[experts."b".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
[experts."b".skills."remote"]
type = "mcpStreamableHttpSkill"
endpoint = "https://mcp.example.com/mcp"
headers = { Authorization = "Bearer ${REMOTE_BEARER}", X-Team = "${TEAM_ID}" }
"""
    ).config
    assert secret_names(config) == {"WEATHER_ID", "REMOTE_BEARER", "TEAM_ID"}
    env = {"WEATHER_ID": STATION, "UNRELATED": "plain-value-1234", "TEAM_ID": "team-0001-x"}
    redactor = Redactor.for_run(env, config)
    assert redactor.redact(f"{STATION} plain-value-1234 team-0001-x") == (
        "*** plain-value-1234 ***"
    )


def test_short_values_are_never_redacted() -> None:
    redactor = Redactor.for_run({"SHORT_TOKEN": SHORT, "SERVICE_API_KEY": API_KEY})
    assert redactor.redact(f"{SHORT} {API_KEY}") == f"{SHORT} ***"
    assert not Redactor.for_run({"SHORT_TOKEN": SHORT})


def test_values_are_found_inside_json_and_longest_first() -> None:
    quoted = 'pa"ss\\word-1234'
    redactor = Redactor([quoted, API_KEY, API_KEY + "-extended"])
    assert redactor.redact(json.dumps({"v": quoted})) == '{"v": "***"}'
    assert redactor.redact(f"{API_KEY}-extended {API_KEY}") == "*** ***"
    text = "nothing to hide"
    assert redactor.redact(text) is text


def test_redact_outcome_touches_only_text_parts() -> None:
    redactor = Redactor([API_KEY])
    image = ImageInlinePart(encoded_data="aGk=", mime_type="image/png")
    outcome = ToolOutcome(contents=[TextPart(text=f"key={API_KEY}"), image], is_error=True)
    redacted = redactor.redact_outcome(outcome)
    text, kept = redacted.contents
    assert isinstance(text, TextPart) and text.text == "key=***"
    assert kept is image
    assert redacted.is_error
    clean = ToolOutcome(contents=[TextPart(text="fine")])
    assert redactor.redact_outcome(clean) is clean


def test_env_file_paths_resolve_like_load_env(tmp_path: Path) -> None:
    assert env_file_paths(None, tmp_path) == (tmp_path / ".env", tmp_path / ".env.local")
    home = Path("~").expanduser()
    assert env_file_paths(["keys/prod.env", "~/k.env", "/abs/x"], tmp_path) == (
        tmp_path / "keys/prod.env",
        home / "k.env",
        Path("/abs/x"),
    )


def test_skill_stderr_is_redacted_before_it_is_stored_or_emitted(tmp_path: Path) -> None:
    events: list[PerstackEvent] = []
    job = JobContext(
        job=Job(id="job", status="running", coordinator_expert_key="a", started_at=now_ms()),
        model=ScriptedModel([]),
        workspace=tmp_path,
        max_steps=10,
        max_retries=0,
        timeout_ms=60_000,
        reasoning_budget="low",
        retry_base_delay_ms=0,
        env={},
        storage=None,
        listener=events.append,
        redactor=Redactor([API_KEY]),
    )
    job.publish(SkillStderr(job_id="job", run_id="r", skill_name="s", message=f"key {API_KEY}"))
    assert isinstance(events[0], SkillStderr)
    assert events[0].message == "key ***"


TOML = f"""
model = "scripted"

[experts."agent"]
instruction = "Use your tools."

[experts."agent".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"

[experts."agent".skills."toy"]
type = "mcpStdioSkill"
command = {json.dumps(sys.executable)}
args = [{json.dumps(TOY)}]
requiredEnv = ["WEATHER_ID"]
pick = ["environment"]
"""


async def test_secrets_never_reach_the_model_or_the_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SERVICE_API_KEY", "WEATHER_ID", "SHORT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text(
        f"SERVICE_API_KEY={API_KEY}\nWEATHER_ID={STATION}\nSHORT_TOKEN={SHORT}\n",
        encoding="utf-8",
    )
    events: list[PerstackEvent] = []
    model = ScriptedModel(
        [
            # exec has the user's rights: it can print .env. Its output is redacted.
            call("exec", command="cat", args=[".env"], env={}, cwd=".", stdout=True, stderr=True),
            call("readTextFile", path=".env"),
            # An MCP server's result carries its requiredEnv value.
            call("environment"),
            call("attemptCompletion"),
            reply("Done."),
        ]
    )
    setting = RunSetting(expert_key="agent", query="go", workspace=tmp_path, retry_base_delay_ms=0)
    async with asyncio.timeout(30):
        checkpoint = await run(
            setting,
            events.append,
            model=model,
            config=parse_config(TOML, path=tmp_path / "perstack.toml"),
        )
    assert checkpoint.status == "completed"
    results = {
        result.tool_name: "".join(p.text for p in result.result if isinstance(p, TextPart))
        for event in events
        if isinstance(event, ResolveToolResults)
        for result in event.tool_results
    }
    cat = json.loads(results["exec"])["output"]
    assert "SERVICE_API_KEY=***" in cat and "WEATHER_ID=***" in cat
    assert f"SHORT_TOKEN={SHORT}" in cat  # too short to be worth redacting
    assert json.loads(results["readTextFile"])["message"] == (
        "Refused: .env holds secrets (API keys); the base skill does not read or change env files."
    )
    assert json.loads(results["environment"])["WEATHER_ID"] == "***"
    # Nothing the model was sent holds a secret...
    sent = repr(model.requests)  # every message of every request, texts included
    assert API_KEY not in sent and STATION not in sent
    # ...and no file of the job does: checkpoints, events, job.json, run settings.
    storage = tmp_path / "perstack"
    files = [p for p in storage.rglob("*") if p.is_file()]
    assert len(files) >= 4
    for path in files:
        data = path.read_bytes()
        assert API_KEY.encode() not in data, path
        assert STATION.encode() not in data, path
    assert any(b"WEATHER_ID=***" in p.read_bytes() for p in files)
    assert (tmp_path / ".env").read_text(encoding="utf-8").startswith("SERVICE_API_KEY=sk-")


async def test_a_custom_env_file_reads_as_empty_in_the_sandbox(tmp_path: Path) -> None:
    from runtime.sandbox import find_bwrap

    if find_bwrap() is None:
        pytest.skip("bubblewrap cannot create a sandbox on this machine")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets/keys.env").write_text(f"SERVICE_API_KEY={API_KEY}\n", encoding="utf-8")
    events: list[PerstackEvent] = []
    script = "wc -c < secrets/keys.env"
    async with asyncio.timeout(30):
        checkpoint = await run(
            RunSetting(
                expert_key="box",
                query="q",
                workspace=tmp_path,
                sandbox=True,
                env_path=["secrets/keys.env"],
            ),
            events.append,
            model=ScriptedModel(
                [
                    call(
                        "exec",
                        command="sh",
                        args=["-c", script],
                        env={},
                        cwd=".",
                        stdout=True,
                        stderr=True,
                    ),
                    reply("done"),
                ]
            ),
            config=parse_config('[experts."box"]\ninstruction = "x"\n', path=tmp_path / "p.toml"),
        )
    assert checkpoint.status == "completed"
    result = next(e for e in events if isinstance(e, ResolveToolResults)).tool_results[0]
    part = result.result[0]
    assert isinstance(part, TextPart)
    # Empty, not merely redacted: the sandboxed command never sees the file's content.
    assert json.loads(part.text)["output"].strip() == "0"


def test_a_secret_cut_off_at_the_end_of_a_text_is_redacted_too() -> None:
    # MCP results are cut at maxResultChars before redaction: the cut may fall inside a key.
    redactor = Redactor(["sk-live-0123456789abcdef"])
    assert redactor.redact("key: sk-live-0123456") == "key: ***"
    assert redactor.redact("ends with sk-live") == "ends with sk-live", "7 characters: too short"
    assert redactor.redact("nothing here") == "nothing here"
