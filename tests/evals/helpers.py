"""A team, an eval set and a fake provider that answers any number of cases at once (its replies
depend on the request, not on the order requests arrive in)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fakellm import FakeLLM, Reply, reply_text, reply_tool_calls

TEAM = """
model = "gpt-4.1"
[provider]
providerName = "openai"

[experts."writer"]
description = "Writes files"
instruction = "You write the file the user asks for."

[experts."judge"]
description = "Judges results"
instruction = "You judge results against a rubric."
"""

EVALS = """
[eval]
name = "writer-evals"
expert = "writer"

[[cases]]
name = "hello"
query = "write hello.txt: hello world"
[[cases.checks]]
type = "fileExists"
path = "hello.txt"
[[cases.checks]]
type = "fileContains"
path = "hello.txt"
text = "hello world"
[[cases.checks]]
type = "exec"
command = "grep -q world hello.txt"
[[cases.checks]]
type = "resultMatches"
pattern = "wrote hello\\\\.txt"

[[cases]]
name = "seeded"
query = "write copy.txt: seeded"
[cases.files]
"input/names.txt" = "Ada"
[[cases.checks]]
type = "exec"
command = "test -f input/names.txt && test -f copy.txt"
[[cases.checks]]
type = "judge"
expert = "judge"
rubric = "copy.txt exists"

[[cases]]
name = "wrong text"
query = "write bye.txt: goodbye"
[[cases.checks]]
type = "fileContains"
path = "bye.txt"
text = "farewell"
"""


def _user_text(body: dict[str, Any]) -> str:
    for message in body["messages"]:
        if message["role"] == "user":
            content = message["content"]
            return content if isinstance(content, str) else " ".join(p["text"] for p in content)
    return ""


def answer(body: dict[str, Any]) -> Reply:
    """The writer writes ``NAME: TEXT`` into NAME; the judge passes whatever it is shown."""
    query = _user_text(body)
    tool_results = sum(message["role"] == "tool" for message in body["messages"])
    if query.startswith("Judge whether"):
        if body.get("tools"):
            return reply_tool_calls([("attemptCompletion", {})])
        return reply_text("PASS: copy.txt is there")
    name, _, text = query.removeprefix("write ").partition(": ")
    if not body.get("tools"):
        return reply_text(f"wrote {name}")
    if tool_results == 0:
        return reply_tool_calls([("writeTextFile", {"path": name, "text": text})])
    return reply_tool_calls([("attemptCompletion", {})])


def project(root: Path, fake: FakeLLM, evals: str = EVALS) -> Path:
    """A project folder with the team and the eval set; ``fake`` answers every case."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "perstack.toml").write_text(TEAM)
    (root / "evals.toml").write_text(evals)
    fake.default = answer
    return root / "evals.toml"


def parse_json(stdout: str) -> dict[str, Any]:
    data = json.loads(stdout)
    assert isinstance(data, dict)
    return data
