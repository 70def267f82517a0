"""Import hygiene: the runtime stays headless and cheap to import (checked in a fresh process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

FORBIDDEN = ("textual", "rich", "studio", "litellm")
HEAVY = ("textual", "rich", "litellm")


@pytest.mark.parametrize(
    "code",
    [
        "import runtime",
        "import runtime.schema.events, runtime.config.loader, runtime.cli",
        "from runtime import run, RunSetting",
        "import runtime.llm.providers",
    ],
)
def test_runtime_imports_no_ui_and_no_litellm(code: str) -> None:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("argv", [["--version"], ["run", "--help"], ["--help"]])
def test_cli_help_loads_nothing_heavy(argv: list[str]) -> None:
    probe = (
        "import sys\nfrom studio.__main__ import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print('LOADED:' + ' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "LOADED:"
