"""Loading perstack.toml: the valid fixture files load without warnings and parse as written."""

from __future__ import annotations

import hashlib

import pytest

from runtime.config.resolve import all_expert_keys
from runtime.config.schema import (
    BASE_SKILL_NAME,
    InteractiveSkill,
    McpSseSkill,
    McpStdioSkill,
    McpStreamableHttpSkill,
)
from tests.runtime.config_helpers import CONFIGS, INVALID, VALID, load_fixture


def test_corpus_is_big_enough() -> None:
    assert len(VALID) >= 6
    assert len(INVALID) >= 8


@pytest.mark.parametrize(
    "name",
    [
        "minimal.toml",
        "team.toml",
        "all_skill_types.toml",
        "odd_formatting.toml",
        "every_top_level_field.toml",
    ],
)
def test_clean_files_load_without_warnings(name: str) -> None:
    loaded = load_fixture(name)
    assert loaded.warnings == []
    assert loaded.label == "perstack.toml"
    assert loaded.path == CONFIGS / name
    assert loaded.base_dir == CONFIGS


def test_team_file() -> None:
    loaded = load_fixture("team.toml")
    config = loaded.config
    assert all_expert_keys(loaded) == ["game-director", "@ai-gaming/level-designer", "story-writer"]
    director = config.experts["game-director"]
    assert director.version == "1.2.0"
    assert director.instruction.startswith("You direct a small game studio.\n")
    assert director.delegates == [
        "@ai-gaming/level-designer",
        "story-writer",
        "@ai-gaming/sound-designer@1.0.0",
    ]
    assert config.provider is not None
    assert config.provider.setting.headers == {"X-Team": "games"}
    assert config.env_path == [".env", ".env.production"]
    assert loaded.sha256 == hashlib.sha256(loaded.text.encode()).hexdigest()


def test_every_skill_type_with_all_fields() -> None:
    skills = load_fixture("all_skill_types.toml").config.experts["toolbox"].skills
    assert skills is not None
    assert list(skills) == [BASE_SKILL_NAME, "github", "time", "search", "docs", "ask"]
    github = skills["github"]
    assert isinstance(github, McpStdioSkill)
    assert github.args == ["-y", "@modelcontextprotocol/server-github"]
    assert github.required_env == ["GITHUB_PERSONAL_ACCESS_TOKEN"]
    assert github.allowed_domains == ["api.github.com", "*.githubusercontent.com"]
    assert github.lazy_init is True
    assert github.rule == "Never push to main."
    time = skills["time"]
    assert isinstance(time, McpStdioSkill)
    assert (time.command, time.package_name, time.args) == ("uvx", "mcp-server-time", [])
    search = skills["search"]
    assert isinstance(search, McpSseSkill)
    assert (search.endpoint, search.pick, search.omit) == (
        "https://search.example.com/sse",
        ["search"],
        ["admin"],
    )
    docs = skills["docs"]
    assert isinstance(docs, McpStreamableHttpSkill)
    assert docs.headers == {"Authorization": "Bearer ${DOCS_TOKEN}"}
    ask = skills["ask"]
    assert isinstance(ask, InteractiveSkill)
    assert list(ask.tools) == ["chooseOption", "confirm"]
    assert '"required": ["question", "options"]' in ask.tools["chooseOption"].input_json_schema
    assert ask.tools["confirm"].description is None


def test_odd_formatting_parses_as_written() -> None:
    config = load_fixture("odd_formatting.toml").config
    assert config.model == "gpt-4.1"
    assert config.reasoning_budget == 2048
    assert config.provider is not None
    assert config.provider.setting.project == "proj-2"
    planner = config.experts["planner"]
    assert "[not.a.header]" in planner.instruction
    assert planner.delegates == ["coder", "reviewer"]
    assert planner.skills is not None
    assert list(planner.skills) == [BASE_SKILL_NAME, "shell"]
    reviewer = config.experts["reviewer"].skills
    assert reviewer is not None
    base = reviewer[BASE_SKILL_NAME]
    assert isinstance(base, McpStdioSkill)
    assert base.pick == ["readTextFile", "attemptCompletion"]
