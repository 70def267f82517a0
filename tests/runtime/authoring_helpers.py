"""Shared helpers of the ConfigDocument tests (tests/runtime/test_authoring_*.py): the
corpus of toml files, a commented sample file, and line diffs of an edit."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from runtime.config.authoring import ConfigDocument
from runtime.config.diagnostics import diagnose
from runtime.config.loader import parse_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CORPUS = sorted(
    [
        *(FIXTURES / "configs").glob("*.toml"),
        *(FIXTURES / "configs" / "invalid").glob("*.toml"),
        *(FIXTURES / "roundtrip").glob("*.toml"),
    ]
)
PARSEABLE = [path for path in CORPUS if path.name != "syntax_error.toml"]


def read(path: Path) -> str:
    # newline="": keep CRLF as it is on disk.
    with path.open(encoding="utf-8", newline="") as handle:
        return handle.read()


def changes(old: str, new: str) -> tuple[list[str], list[str]]:
    """(lines removed, lines added), as a line diff sees them."""
    removed, added = [], []
    for line in difflib.ndiff(old.splitlines(), new.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def edited(text: str, change: Any) -> str:
    document = ConfigDocument.parse(text)
    change(document)
    return document.dumps()


def assert_valid(text: str) -> None:
    """The result loads with the runtime's loader, without errors."""
    parse_config(text)
    assert [d for d in diagnose(text) if d.severity == "error"] == []


COMMENTED = """\
# Team file.
model = "claude-sonnet-4-5" # default model

# Provider settings.
[provider]
providerName = "anthropic"

# The lead: plans and delegates.
# Second comment line.
[experts."lead"]
description = "Plans the work." # shown to nobody
instruction = \"\"\"
Plan the work.
Delegate it.
\"\"\"
delegates = ["writer", "reviewer@1.0.0"] # both local

# skills of the lead
[experts."lead".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"

# The writer.
[experts."writer"]
instruction = "Write." # short

# The reviewer, last.
[experts."reviewer"]
instruction = '''
Review.
'''
delegates = [
  "writer", # asks the writer to fix things
]
# trailing comment of the file
"""
