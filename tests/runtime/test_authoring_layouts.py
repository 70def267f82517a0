"""ConfigDocument on unusual layouts: experts split across the file, dotted keys and inline
tables, every edit on every corpus expert, and documents over the loader's limits."""

from __future__ import annotations

import tomllib

import pytest

from runtime.config.authoring import ConfigDocument
from runtime.config.schema import EXPERT_NAME_RE
from runtime.errors import ConfigError
from tests.runtime.authoring_helpers import PARSEABLE, changes, edited, read

OUT_OF_ORDER = """\
# The lead.
[experts."a"]
instruction = "A."
delegates = ["b"]

# provider in between
[provider]
providerName = "openai"

# a's skills, later
[experts."a".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"

[experts."b"]
instruction = "B."
"""

DOTTED = """\
model = "x"
experts.a.instruction = "A."
experts.a.delegates = ["b"]
experts.b = { instruction = "B." }

[provider]
providerName = "x"
"""


def test_rename_expert_split_across_the_file() -> None:
    new = edited(OUT_OF_ORDER, lambda d: d.rename_expert("a", "x"))
    assert changes(OUT_OF_ORDER, new) == (
        ['[experts."a"]', '[experts."a".skills."@perstack/base"]'],
        ['[experts."x"]', '[experts."x".skills."@perstack/base"]'],
    )


def test_delete_expert_split_across_the_file() -> None:
    new = edited(OUT_OF_ORDER, lambda d: d.delete_expert("a"))
    assert new == (
        '# provider in between\n[provider]\nproviderName = "openai"\n\n'
        '[experts."b"]\ninstruction = "B."\n'
    )


def test_add_skill_to_expert_split_across_the_file() -> None:
    skill = {"type": "mcpSseSkill", "endpoint": "https://s.example.com/sse"}
    new = edited(OUT_OF_ORDER, lambda d: d.add_skill("a", "s", skill))
    anchor = 'command = "npx"\n'
    block = (
        '\n[experts."a".skills."s"]\ntype = "mcpSseSkill"\nendpoint = "https://s.example.com/sse"\n'
    )
    assert new == OUT_OF_ORDER.replace(anchor, anchor + block)


def test_experts_written_with_dotted_keys_and_inline_tables() -> None:
    assert changes(DOTTED, edited(DOTTED, lambda d: d.rename_expert("a", "x"))) == (
        ['experts.a.instruction = "A."', 'experts.a.delegates = ["b"]'],
        ['experts.x.instruction = "A."', 'experts.x.delegates = ["b"]'],
    )
    assert changes(DOTTED, edited(DOTTED, lambda d: d.delete_expert("b"))) == (
        ['experts.a.delegates = ["b"]', 'experts.b = { instruction = "B." }'],
        ["experts.a.delegates = []"],
    )
    assert changes(
        DOTTED, edited(DOTTED, lambda d: d.set_expert_field("b", "description", "B!"))
    ) == (
        ['experts.b = { instruction = "B." }'],
        ['experts.b = { instruction = "B.", description = "B!" }'],
    )
    assert changes(
        DOTTED, edited(DOTTED, lambda d: d.set_expert_field("a", "description", "A!"))
    ) == ([], ['experts.a.description = "A!"'])


def test_every_operation_on_every_corpus_expert_keeps_the_rest() -> None:
    """A smoke test over the corpus: each edit is verified by the document itself."""
    skill = {"type": "mcpSseSkill", "endpoint": "https://s.example.com/sse"}
    for path in PARSEABLE:
        text = read(path)
        for key in ConfigDocument.parse(text).expert_keys():
            document = ConfigDocument.parse(text)
            document.set_expert_field(key, "instruction", "New\ntext\n")
            document.add_skill(key, "zz-search", skill)
            document.remove_skill(key, "zz-search")
            if EXPERT_NAME_RE.match(key):
                document.rename_expert(key, "zz-renamed")
                document.rename_expert("zz-renamed", key)
            result = document.dumps()
            data = tomllib.loads(result)
            assert data["experts"][key]["instruction"] == "New\ntext\n", path.name
            if "\r\n" in text:  # a CRLF file stays CRLF, new lines included
                assert "\n" not in result.replace("\r\n", ""), path.name


def test_rename_an_expert_that_delegates_to_itself() -> None:
    text = '[experts.a]\ninstruction = "A."\ndelegates = ["a", "b"]\n'
    assert edited(text, lambda d: d.rename_expert("a", "c")) == (
        '[experts.c]\ninstruction = "A."\ndelegates = ["c", "b"]\n'
    )


@pytest.mark.parametrize(
    "text",
    ["x = " + "[" * 1000 + "]" * 1000 + "\n", ".".join(["a"] * 20000) + " = 1\n"],
    ids=["deep-arrays", "deep-dotted-key"],
)
def test_a_document_over_the_limits_is_a_config_error_not_a_crash(text: str) -> None:
    # The studio reparses on every save: this must be as safe as loading the file to run it.
    with pytest.raises(ConfigError, match="perstack.toml:1"):
        ConfigDocument.parse(text)
