"""Resolving an expert of perstack.toml: the base skill, versions and tags in the key, and
messages that list the defined experts when the key is unknown."""

from __future__ import annotations

import pytest

from runtime.config.resolve import resolve_expert
from runtime.config.schema import BASE_SKILL_NAME, McpStdioSkill, PerstackConfig, default_base_skill
from runtime.errors import UsageError
from tests.runtime.config_helpers import load_fixture


def test_resolve_expert_injects_the_base_skill_when_there_is_no_skills_table() -> None:
    expert = resolve_expert(load_fixture("minimal.toml"), "hello")
    assert expert.key == expert.name == "hello"
    assert expert.version == "1.0.0"
    assert expert.instruction == "Greet the user."
    assert expert.description is None
    assert expert.skills == {BASE_SKILL_NAME: default_base_skill()}
    assert expert.base_skill_injected is True
    assert expert.delegates == ()


def test_resolve_expert_keeps_an_explicit_skills_table() -> None:
    loaded = load_fixture("team.toml")
    expert = resolve_expert(loaded, "@ai-gaming/level-designer")
    assert expert.name == "@ai-gaming/level-designer"
    assert expert.version == "0.3.1"
    assert list(expert.skills) == [BASE_SKILL_NAME]
    base = expert.skills[BASE_SKILL_NAME]
    assert isinstance(base, McpStdioSkill)
    assert base.package_name == BASE_SKILL_NAME
    assert expert.base_skill_injected is False
    director = resolve_expert(loaded.config, "game-director")
    assert director.delegates[0] == "@ai-gaming/level-designer"
    assert director.tags == ("games", "coordinator")


@pytest.mark.parametrize(
    "key", ["story-writer@1.0.0", "story-writer@latest", "@ai-gaming/level-designer@0.3.1"]
)
def test_resolve_expert_strips_a_matching_version_or_a_tag(key: str) -> None:
    assert resolve_expert(load_fixture("team.toml"), key).key == key.rsplit("@", 1)[0]


def test_resolve_expert_refuses_another_version() -> None:
    with pytest.raises(UsageError) as info:
        resolve_expert(load_fixture("team.toml"), "story-writer@2.0.0")
    assert str(info.value) == (
        'Expert "story-writer@2.0.0" not found in perstack.toml: it defines "story-writer" at '
        "version 1.0.0. Use story-writer or story-writer@1.0.0."
    )


def test_unknown_expert_lists_the_defined_ones_and_suggests() -> None:
    loaded = load_fixture("team.toml")
    with pytest.raises(UsageError) as info:
        resolve_expert(loaded, "story-writter")
    assert str(info.value) == (
        'Expert "story-writter" not found in perstack.toml. Defined experts: game-director, '
        '@ai-gaming/level-designer, story-writer. Did you mean "story-writer"?'
    )
    with pytest.raises(UsageError) as info:
        resolve_expert(loaded, "composer")
    assert str(info.value) == (
        'Expert "composer" not found in perstack.toml. Defined experts: game-director, '
        "@ai-gaming/level-designer, story-writer."
    )


def test_unknown_expert_in_an_empty_file() -> None:
    with pytest.raises(UsageError) as info:
        resolve_expert(PerstackConfig(), "writer")
    assert str(info.value) == (
        'Expert "writer" not found in perstack.toml. No experts are defined: add an '
        '[experts."writer"] table with an instruction.'
    )
