"""diagnose(): every problem of a perstack.toml with its line, never an exception, fast."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from runtime.config.diagnostics import Diagnostic, diagnose

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "configs"


def read(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def summary(text: str) -> list[tuple[int | None, str, str]]:
    """(line, severity, key) of each diagnostic, in the order returned."""
    return [(d.line, d.severity, d.key) for d in diagnose(text)]


# The invalid corpus --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "invalid/bad_expert_key.toml",
            [(1, "error", 'experts."Writer.v2"'), (4, "error", 'experts."editor@1.0.0"')],
        ),
        (
            "invalid/bad_version.toml",
            [(2, "error", 'experts."writer".version'), (4, "error", 'experts."writer".tags')],
        ),
        ("invalid/http_base_url.toml", [(6, "error", "provider.setting.baseUrl")]),
        (
            "invalid/instruction_typo.toml",
            [
                (1, "error", 'experts."writer".instruction'),
                (3, "warning", 'experts."writer".instrucion'),
            ],
        ),
        ("invalid/missing_instruction.toml", [(6, "error", 'experts."writer".instruction')]),
        ("skills_without_base.toml", [(4, "warning", 'experts."writer".skills')]),
        ("invalid/syntax_error.toml", [(5, "error", "")]),
        (
            "invalid/unknown_skill_type.toml",
            [
                (10, "error", 'experts."writer".skills."search".type'),
                (13, "error", 'experts."writer".skills."notes".type'),
            ],
        ),
    ],
)
def test_invalid_corpus_lines(name: str, expected: list[tuple[int, str, str]]) -> None:
    assert summary(read(name)) == expected


def test_many_problems_are_all_reported_in_line_order() -> None:
    found = diagnose(read("invalid/many_problems.toml"))
    assert [(d.line, d.severity) for d in found] == [
        (1, "error"),  # model = 4
        (2, "error"),  # reasoningBudget
        (3, "error"),  # runtime
        (4, "error"),  # maxSteps = 0
        (6, "error"),  # providerName missing
        (10, "error"),  # empty description
        (12, "error"),  # delegate "Editor" is not a valid key (no second "unknown" error)
        (15, "error"),  # lazyInit = "yes"
        (19, "error"),  # private SSE endpoint
        (25, "error"),  # invalid JSON schema
        (27, "error"),  # bad key
        (27, "error"),  # its missing instruction
        (28, "warning"),  # the typo behind it
    ]
    assert "maximum" in found[1].message


def test_syntax_error_has_line_and_column_and_nothing_else() -> None:
    [found] = diagnose(read("invalid/syntax_error.toml"))
    assert (found.line, found.column, found.severity, found.key) == (5, 15, "error", "")
    assert 'description = "Writes things."' in found.message


@pytest.mark.parametrize(
    "name",
    ["all_skill_types.toml", "every_top_level_field.toml", "minimal.toml", "odd_formatting.toml"],
)
def test_valid_files_have_no_diagnostics(name: str) -> None:
    assert diagnose(read(name)) == []


def test_unknown_keys_are_warnings_with_lines() -> None:
    found = diagnose(read("envpath_after_provider.toml"))
    assert [(d.line, d.column, d.severity, d.key) for d in found] == [
        (6, 1, "warning", "provider.envPath")
    ]
    assert "top-level envPath" in found[0].message


# Across experts ------------------------------------------------------------------------------


def test_delegates_in_typos_file() -> None:
    found = [d for d in diagnose(read("typos.toml")) if ".delegates" in d.key]
    assert [(d.line, d.column, d.severity, d.key) for d in found] == [
        (17, 14, "error", 'experts."writer".delegates[0]'),
        (17, 24, "error", 'experts."writer".delegates[1]'),
        (17, 35, "warning", 'experts."writer".delegates[2]'),
    ]
    assert found[0].message.startswith('unknown delegate "editor"')
    assert 'did you mean "reviewer"?' in found[1].message
    assert "registry" in found[2].message


def test_team_file_cycle_and_registry_delegate() -> None:
    found = diagnose(read("team.toml"))
    assert [(d.line, d.column, d.severity) for d in found] == [
        (25, 43, "warning"),
        (25, 59, "warning"),
    ]
    assert "delegation cycle: game-director → story-writer → game-director" in found[0].message
    assert "@ai-gaming/sound-designer@1.0.0" in found[1].message


TEAM = """\
[experts."a"]
instruction = "A."
delegates = [
  "b",
  "a",       # itself
  "b",       # twice
  "b@1.0.0", # a version of a local expert is fine
]

[experts."b"]
instruction = "B."
delegates = ["c"]

[experts."c"]
instruction = "C."
delegates = ["a", "@org/remote"]
"""


def test_self_duplicate_and_longer_cycle() -> None:
    found = diagnose(TEAM)
    assert [(d.line, d.severity, d.key) for d in found] == [
        (4, "warning", 'experts."a".delegates[0]'),  # the cycle a → b → c → a
        (5, "error", 'experts."a".delegates[1]'),  # itself
        (6, "warning", 'experts."a".delegates[2]'),  # twice
        (16, "warning", 'experts."c".delegates[1]'),  # registry
    ]
    assert "a → b → c → a" in found[0].message
    assert "lists itself" in found[1].message
    assert "listed twice" in found[2].message
    assert found[1].column == 3


def test_two_separate_cycles_get_one_warning_each() -> None:
    text = "".join(
        f'[experts."{a}"]\ninstruction = "x"\ndelegates = ["{b}"]\n\n'
        for a, b in [("a", "b"), ("b", "a"), ("c", "d"), ("d", "e"), ("e", "c")]
    )
    cycles = [d.message for d in diagnose(text) if "cycle" in d.message]
    assert len(cycles) == 2
    assert "a → b → a" in cycles[0]
    assert "c → d → e → c" in cycles[1]


def test_cross_references_are_checked_when_the_schema_fails_too() -> None:
    text = '[experts."a"]\ndelegates = ["ghost"]\n'
    assert summary(text) == [
        (1, "error", 'experts."a".instruction'),
        (2, "error", 'experts."a".delegates[0]'),
    ]


def test_delegate_lines_in_unusual_layouts() -> None:
    dotted = 'experts.a.instruction = "A."\nexperts.a.delegates = [\n  "ghost",\n]\n'
    assert summary(dotted) == [(3, "error", 'experts."a".delegates[0]')]
    inline = '[experts]\na = { instruction = "A.", delegates = ["ghost"] }\n'
    assert summary(inline) == [(2, "error", 'experts."a".delegates[0]')]
    tricky = (
        '[experts."a"]\n'
        'instruction = """\n'
        '[experts."b"]\n'
        'delegates = ["not", "real"]\n'
        '"""\n'
        "delegates = ['ghost'] # literal string\n"
    )
    [found] = diagnose(tricky)
    assert (found.line, found.column, found.key) == (6, 14, 'experts."a".delegates[0]')


# Robustness ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "[[[",
        '"""',
        "experts = 1",
        "[[experts]]\ninstruction = 1",
        '[experts."a"]\ninstruction = "x"\ndelegates = "b"',
        '[experts."a"]\ninstruction = "x"\ndelegates = [1, ["b"], {c = 1}]',
        '[experts."a"]\ninstruction = "x"\nskills = 3',
        "model = 1979-05-27T07:32:00Z",
        "\x00\x01\x02",
        'key = "unterminated',
        "[experts.'a']\ninstruction = '''\nnever closed",
        "a.b.c.d.e.f = 1\n" * 50,
    ],
)
def test_never_raises(text: str) -> None:
    found = diagnose(text)
    assert all(isinstance(item, Diagnostic) for item in found)
    lines = [item.line or 0 for item in found]
    assert lines == sorted(lines)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'model = "m"\nx = ' + "[" * 5000,
            "2:1: error: x: too deeply nested: over the limit of 32 levels of arrays and inline "
            "tables (at column 37)",
        ),
        ("#" * 2_000_000, "error: too large: 2,000,000 bytes, over the limit of 1,048,576 bytes"),
    ],
    ids=["nesting", "size"],
)
def test_a_file_over_a_limit_gives_one_error_and_is_not_parsed(text: str, expected: str) -> None:
    found = diagnose(text)
    assert len(found) == 1
    assert str(found[0]).startswith(expected)


def test_internal_errors_become_a_diagnostic(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("runtime.config.diagnostics.parse_config", broken)
    [found] = diagnose('model = "x"')
    assert found.severity == "error"
    assert "boom" in found.message


def test_str_names_line_column_and_key() -> None:
    item = Diagnostic(3, 5, "warning", 'experts."a".x', "unknown key")
    assert str(item) == '3:5: warning: experts."a".x: unknown key'
    assert str(Diagnostic(None, None, "error", "", "broken")) == "error: broken"


# Speed ---------------------------------------------------------------------------------------


def team_of(count: int, *, registry: bool) -> str:
    parts = ['model = "claude-sonnet-4-5"\n\n[provider]\nproviderName = "anthropic"\n']
    for index in range(count):
        delegates = [f'"expert-{n}"' for n in range(index + 1, min(count, index + 3))]
        if registry:
            delegates.append('"@market/helper"')
        parts.append(
            f'\n# Expert {index}.\n[experts."expert-{index}"]\n'
            f'description = "Part {index}."\n'
            f'instruction = """\nYou are expert {index}.\nDo the work.\n"""\n'
            f"delegates = [{', '.join(delegates)}]\n\n"
            f'[experts."expert-{index}".skills."@perstack/base"]\n'
            'type = "mcpStdioSkill"\ncommand = "npx"\npackageName = "@perstack/base"\n'
            'pick = ["readTextFile", "attemptCompletion"]\n'
        )
    return "".join(parts)


@pytest.mark.parametrize("registry", [False, True], ids=["clean", "with-warnings"])
def test_fifty_experts_fast(registry: bool) -> None:
    text = team_of(50, registry=registry)
    found = diagnose(text)
    assert len(found) == (50 if registry else 0)
    times = []
    for _ in range(7):
        start = time.perf_counter()
        diagnose(text)
        times.append(time.perf_counter() - start)
    # Target 20 ms (benchmarks/reload_50_experts.py prints the figure); the bound here leaves
    # room for a loaded CI machine.
    assert statistics.median(times) < 0.06
