"""How an MCP stdio skill is launched: packageName and args rules, and when the
@perstack/base skill runs bundled or through perstackBaseSkillCommand (§1.5)."""

from __future__ import annotations

import pytest

from runtime.config.schema import McpStdioSkill
from runtime.errors import SkillError
from runtime.skills.mcp import is_bundled_base, stdio_launch
from tests.runtime.mcp_skill_helpers import PY


def test_package_name_and_args_rules() -> None:
    both = McpStdioSkill(type="mcpStdioSkill", command="npx", package_name="x", args=["y"])
    with pytest.raises(SkillError, match="Skill gh has both packageName and args"):
        stdio_launch("gh", both)
    neither = McpStdioSkill(type="mcpStdioSkill", command="npx")
    with pytest.raises(SkillError, match="Skill gh has no packageName or args"):
        stdio_launch("gh", neither)
    package = McpStdioSkill(type="mcpStdioSkill", command="npx", package_name="@org/server")
    assert stdio_launch("gh", package) == ("npx", ["-y", "@org/server"])
    already = McpStdioSkill(type="mcpStdioSkill", command="npx", args=["-y", "pkg", "--flag"])
    assert stdio_launch("gh", already) == ("npx", ["-y", "pkg", "--flag"])
    uvx = McpStdioSkill(type="mcpStdioSkill", command="uvx", package_name="mcp-server-time")
    assert stdio_launch("time", uvx) == ("uvx", ["mcp-server-time"])


def test_base_skill_transport_choice() -> None:
    unpinned = McpStdioSkill(type="mcpStdioSkill", command="npx", package_name="@perstack/base")
    pinned = McpStdioSkill(
        type="mcpStdioSkill", command="npx", args=["-y", "@perstack/base@0.0.34"]
    )
    assert is_bundled_base("@perstack/base", unpinned, None)
    assert not is_bundled_base("@perstack/base", pinned, None)
    assert stdio_launch("@perstack/base", pinned) == ("npx", ["-y", "@perstack/base@0.0.34"])
    override = [PY, "-m", "runtime.skills.base_server"]
    assert not is_bundled_base("@perstack/base", unpinned, override)
    # Any npx skill whose package is @perstack/base runs the override command (§1.5).
    assert stdio_launch("files", unpinned, override) == (PY, ["-m", "runtime.skills.base_server"])
    assert stdio_launch("@perstack/base", pinned, override)[0] == PY
    other = McpStdioSkill(type="mcpStdioSkill", command="npx", package_name="@org/other")
    assert stdio_launch("x", other, override) == ("npx", ["-y", "@org/other"])
