"""The system prompt's layout: a stable prefix, then the volatile environment at the very end."""

from __future__ import annotations

from datetime import UTC, datetime

from runtime.engine.prompt import DelegateInfo, build_system_prompt

NOON = datetime(2025, 1, 2, 12, 30, 45, tzinfo=UTC)


def test_sections_in_cache_friendly_order() -> None:
    prompt = build_system_prompt(
        instruction="Write poems.",
        now=NOON,
        cwd="/work/space",
        skill_rules=[("@perstack/base", "Never delete files.")],
        delegates=[DelegateInfo(name="editor", description="Edits poems")],
    )
    sections = prompt.split("\n\n---\n\n")
    assert len(sections) == 5
    assert sections[0].startswith("You are Perstack")
    assert sections[1:4] == [
        "Write poems.",
        '"@perstack/base" skill rules:\nNever delete files.',
        "You can hand tasks to the following experts by calling the expert's name as a tool:"
        '\n\nAbout "editor":\nEdits poems',
    ]
    # Date only: no time of day, so the whole prompt is the same all day.
    assert sections[4] == (
        "Environment:\n- Working directory: /work/space\n- Current date: 2025-01-02 (UTC)"
    )
    assert "12:30" not in prompt


def test_only_the_environment_differs_between_runs() -> None:
    morning = build_system_prompt(instruction="Hi.", now=NOON, cwd="/a")
    next_day = build_system_prompt(
        instruction="Hi.", now=datetime(2025, 1, 3, tzinfo=UTC), cwd="/b"
    )
    stable = morning.split("Environment:")[0]
    assert next_day.startswith(stable)
    assert morning != next_day
    assert build_system_prompt(instruction="Hi.", now=NOON.replace(hour=23), cwd="/a") == morning
