"""What an MCP tool result becomes (§5.9): conversion of MCP content to message parts, and
the output limits (maxResultChars, maxResultBinaryBytes, maxStderrBytes,
maxStderrMessageBytes) that keep huge results and stderr small in events and storage."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from pathlib import Path

import mcp_types as types
import pytest

from runtime import parse_config
from runtime.config.schema import McpSseSkill, McpStdioSkill
from runtime.errors import ConfigError
from runtime.schema.events import PerstackEvent
from runtime.schema.messages import FileInlinePart, ImageInlinePart, TextPart
from runtime.skills.lockfile import skill_definition_hash
from runtime.skills.mcp import McpSkill, OutputLimits, convert_result, limit_result
from runtime.skills.types import ToolOutcome
from runtime.testing import call, reply
from tests.runtime.mcp_skill_helpers import (
    BASE,
    direct_runtime,
    go,
    results,
    stderr_messages,
    text_of,
    toy,
    toy_table,
)


def test_convert_result_rules() -> None:
    png = "iVBORw0KGgo="
    result = types.CallToolResult(
        content=[
            types.TextContent(text="a"),
            types.TextContent(text=""),
            types.ImageContent(data=png, mime_type="image/png"),
            types.EmbeddedResource(resource=types.TextResourceContents(uri="x:a", text="doc")),
            types.EmbeddedResource(
                resource=types.BlobResourceContents(
                    uri="x:b", blob=png, mime_type="application/pdf"
                )
            ),
            types.AudioContent(data=png, mime_type="audio/wav"),
            types.ResourceLink(uri="x:c", name="c"),
        ]
    )
    outcome = convert_result("t", {}, result)
    assert not outcome.is_error
    assert [type(p) for p in outcome.contents] == [
        TextPart,
        TextPart,
        ImageInlinePart,
        TextPart,
        FileInlinePart,
    ]
    texts = [p.text for p in outcome.contents if isinstance(p, TextPart)]
    assert texts == ["a", "Error: No content", "doc"]
    empty = convert_result("lookup", {"q": "é", "n": 1}, types.CallToolResult(content=[]))
    assert empty.contents[0] == TextPart(
        id=empty.contents[0].id, text='Tool lookup returned nothing with arguments: {"q":"é","n":1}'
    )
    flagged = convert_result("t", {}, types.CallToolResult(content=[], is_error=True))
    assert flagged.is_error


class Recorder:
    """Collects a skill runtime's events and wakes whoever waits for one."""

    def __init__(self) -> None:
        self.events: list[PerstackEvent] = []
        self._arrived = asyncio.Event()

    def publish(self, event: PerstackEvent) -> None:
        self.events.append(event)
        self._arrived.set()

    async def stderr_containing(self, skill: str, marker: str) -> list[str]:
        """The skill's stored stderr once a message containing ``marker`` has arrived.

        A tool that writes stderr can answer before the last chunk of its pipe has been read.
        """
        async with asyncio.timeout(10):
            while not any(marker in m for m in stderr_messages(self.events, skill)):
                self._arrived.clear()
                await self._arrived.wait()
        return stderr_messages(self.events, skill)


def test_limit_result_cuts_text_drops_binary_and_says_so() -> None:
    png = base64.b64encode(b"\x89PNG" + b"\0" * 596).decode()  # 600 bytes decoded
    image = ImageInlinePart(encoded_data=png, mime_type="image/png")
    pdf = FileInlinePart(encoded_data=png, mime_type="application/pdf")
    limits = OutputLimits(result_chars=10, result_binary_bytes=1300)
    small = ToolOutcome(contents=[TextPart(text="0123456789"), image, image])
    assert limit_result(small, limits, "s") is small  # within the limits: untouched
    outcome = ToolOutcome(
        contents=[TextPart(text="abcdef"), image, TextPart(text="ghijkl"), image, pdf, image],
        is_error=True,
    )
    limited = limit_result(outcome, limits, "files")
    assert limited.is_error
    assert [type(p).__name__ for p in limited.contents] == [
        "TextPart",
        "ImageInlinePart",
        "TextPart",
        "ImageInlinePart",
        "TextPart",
    ]
    assert [p.text for p in limited.contents if isinstance(p, TextPart)][:2] == ["abcdef", "ghij"]
    # The cut part keeps its id: it is the same part, shorter.
    assert limited.contents[2].id == outcome.contents[2].id
    note = limited.contents[-1]
    assert isinstance(note, TextPart)
    assert note.text.splitlines() == [
        '[truncated: 12 characters, showing the first 10; raise maxResultChars on skill "files" '
        "to see more]",
        "[omitted: 2 images or files (application/pdf, image/png, 1,200 bytes), over the limit "
        "of 1,300 bytes of images and files per result; raise maxResultBinaryBytes on skill "
        '"files" to receive them]',
    ]
    many = ToolOutcome(contents=[TextPart(text="x") for _ in range(1005)])
    bounded = limit_result(many, OutputLimits(), "chatty")
    assert len(bounded.contents) == 1001
    assert bounded.contents[-1].text == (  # type: ignore[union-attr]
        "[omitted: 5 more content parts; at most 1,000 parts of a result are shown]"
    )


def test_limit_keys_are_known_validated_and_leave_the_lockfile_entry_alone() -> None:
    toml = f"""
[experts."agent"]
instruction = "x"
{BASE}
[experts."agent".skills."toy"]
type = "mcpStdioSkill"
command = "python"
args = ["server.py"]
maxResultChars = 5000
maxResultBinaryBytes = 100000
maxStderrBytes = 20000
maxStderrMessageBytes = 1000

[experts."agent".skills."remote"]
type = "mcpSseSkill"
endpoint = "https://example.com/sse"
maxResultChars = 5000
maxStderrBytes = 20000
"""
    loaded = parse_config(toml)
    assert [str(w) for w in loaded.warnings] == [
        'perstack.toml:23 experts."agent".skills."remote".maxStderrBytes: unknown key (ignored; '
        "maxStderrBytes applies to mcpStdioSkill skills only)"
    ]
    skills = loaded.config.experts["agent"].skills
    stdio, remote = skills["toy"], skills["remote"]
    assert isinstance(stdio, McpStdioSkill) and isinstance(remote, McpSseSkill)
    assert OutputLimits.of(stdio) == OutputLimits(5000, 100_000, 20_000, 1000)
    assert OutputLimits.of(remote) == OutputLimits(result_chars=5000)
    for bad in ("0", '"big"', "1.5"):
        with pytest.raises(ConfigError, match="maxResultChars"):
            parse_config(toml.replace("maxResultChars = 5000", f"maxResultChars = {bad}", 1))
    # Limits decide neither the server nor its tools: perstack.lock stays valid when they change.
    plain = McpStdioSkill(type="mcpStdioSkill", command="python", args=["server.py"])
    assert skill_definition_hash("toy", stdio) == skill_definition_hash("toy", plain)


async def test_default_limits_and_raising_them_per_skill(tmp_path: Path) -> None:
    recorder = Recorder()
    runtime = dataclasses.replace(direct_runtime(tmp_path)[0], publish=recorder.publish)
    default = McpSkill("toy", toy(), runtime)
    raised = McpSkill("roomy", toy(max_result_chars=200_000, max_stderr_bytes=300_000), runtime)
    small = McpSkill("tight", toy(max_stderr_bytes=50_000), runtime)
    async with asyncio.timeout(30):
        try:
            await asyncio.gather(default.start(), raised.start(), small.start())
            capped = await default.call("big", {"size": 150_000, "parts": 3})
            assert len(capped.contents) == 3  # two whole parts of 50,000, then the note
            assert text_of(capped).endswith(
                "0123456789[truncated: 150,000 characters, showing the first 100,000; raise "
                'maxResultChars on skill "toy" to see more]'
            )
            whole = await raised.call("big", {"size": 150_000, "parts": 3})
            assert len(text_of(whole)) == 150_000 and len(whole.contents) == 3
            # 6 MiB of images: the default 5 MiB keeps the first two of three.
            images = await default.call("images", {"count": 3, "size": 2 * 1024 * 1024})
            kinds = [type(p).__name__ for p in images.contents]
            assert kinds == ["ImageInlinePart", "ImageInlinePart", "TextPart", "TextPart"]
            assert "[omitted: 1 image or file (image/png, 2,097,152 bytes)" in text_of(images)
            # 200 kB of stderr: stored in full under the default 1 MiB, in events of at most
            # 16 KiB split at line ends; a skill with a smaller total gets one notice.
            for skill in (default, raised, small):
                assert text_of(await skill.call("spew", {"size": 200_000})) == "spewed"
            stored = await recorder.stderr_containing("tight", "[stderr truncated")
            notice = (
                '[stderr truncated: skill "tight" wrote more than 50,000 bytes of stderr in this '
                'run; the rest is not stored. Raise maxStderrBytes on skill "tight" to keep more]'
            )
            assert stored[-1] == notice
            assert sum(len(m.encode()) for m in stored[:-1]) <= 50_000
            # stderr is one pipe, read in order: once "the end" is stored, so is the spew.
            await default.call("shout", {"text": "the end"})
            await raised.call("shout", {"text": "the end"})
            for name in ("toy", "roomy"):
                messages = await recorder.stderr_containing(name, "the end")
                lines = "\n".join(messages).splitlines()
                assert lines.count("e" * 999) == 200
                assert all(len(m.encode()) <= 16 * 1024 for m in messages)
        finally:
            await asyncio.gather(default.close(), raised.close(), small.close())


async def test_huge_results_and_stderr_stay_small_in_events_and_storage(tmp_path: Path) -> None:
    toml = (
        'model = "scripted"\n[experts."agent"]\ninstruction = "x"\n'
        + BASE
        + toy_table(
            "agent",
            "toy",
            "maxResultChars = 20000",
            "maxResultBinaryBytes = 50000",
            "maxStderrBytes = 65536",
            "maxStderrMessageBytes = 4096",
        )
    )
    five_mb = 5_000_000
    checkpoint, events, model = await go(
        tmp_path,
        toml,
        [
            call("big", size=five_mb),
            call("images", count=3, size=20_000),
            call("spew", size=five_mb, long=100_000),
            reply("done"),
        ],
    )
    assert checkpoint.status == "completed"
    found = results(events)
    big_text = found[0][1]
    assert big_text.startswith("0123456789")
    assert big_text.endswith(
        "[truncated: 5,000,000 characters, showing the first 20,000; raise maxResultChars on "
        'skill "toy" to see more]'
    )
    assert len(big_text) < 20_200
    assert "[omitted: 1 image or file (image/png, 20,000 bytes)" in found[1][1]
    # What the model was sent next is the bounded result.
    prompt = json.dumps([m.to_dict() for m in model.requests[1].messages])
    assert "[truncated: 5,000,000 characters" in prompt and len(prompt) < 30_000
    stored = stderr_messages(events, "toy")
    notices = [m for m in stored if m.startswith("[stderr truncated")]
    assert len(notices) == 1 and stored[-1] == notices[0]
    assert sum(len(m.encode()) for m in stored[:-1]) <= 65536
    assert all(len(m.encode()) <= 4096 + 200 for m in stored)
    # Every event the run emitted (what `perstack run` prints) and everything it stored is
    # small; without limits each would hold the 5 MB result several times over.
    emitted = sum(len(event.to_json()) for event in events)
    assert emitted < 1_500_000
    on_disk = sum(f.stat().st_size for f in (tmp_path / "perstack").rglob("*") if f.is_file())
    assert on_disk < 1_000_000
