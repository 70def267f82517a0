"""Three-way merge of unsaved edits with a change on disk (runtime.config.three_way_merge)."""

from __future__ import annotations

import tomllib

from runtime.config import ConfigDocument, three_way_merge

BASE = """\
# The team.
model = "claude-sonnet-4-5"

[experts."writer"]
# Writes the text.
instruction = "Write."

[experts."editor"]
instruction = "Edit."
"""


def test_edits_to_different_experts_are_both_kept() -> None:
    mine = BASE.replace('"Write."', '"Write well."')
    theirs = BASE.replace('"Edit."', '"Edit hard."')
    outcome = three_way_merge(BASE, mine, theirs)
    assert outcome.conflicts == ()
    assert outcome.text is not None
    data = tomllib.loads(outcome.text)
    assert data["experts"]["writer"]["instruction"] == "Write well."
    assert data["experts"]["editor"]["instruction"] == "Edit hard."
    assert "# Writes the text." in outcome.text and outcome.text.startswith("# The team.")
    assert outcome.theirs == ("experts.editor",)


def test_different_fields_of_one_expert_merge_and_the_same_field_conflicts() -> None:
    form = ConfigDocument.parse(BASE)  # as the studio's expert form edits
    form.set_expert_field("writer", "description", "W")
    mine = form.dumps()
    theirs = BASE.replace('"Write."', '"Write more."')
    outcome = three_way_merge(BASE, mine, theirs)
    assert outcome.text is not None
    writer = tomllib.loads(outcome.text)["experts"]["writer"]
    assert writer == {"instruction": "Write more.", "description": "W"}
    clash = three_way_merge(BASE, BASE.replace('"Write."', '"A"'), theirs)
    assert clash.text is None and clash.conflicts == ("experts.writer.instruction",)


def test_added_deleted_experts_and_top_level_keys() -> None:
    mine = BASE + '\n[experts."critic"]\ninstruction = "Criticise."\n'
    theirs = BASE.replace('model = "claude-sonnet-4-5"', 'model = "gpt-4.1"\nmaxSteps = 10')
    outcome = three_way_merge(BASE, mine, theirs)
    assert outcome.text is not None
    data = tomllib.loads(outcome.text)
    assert (data["model"], data["maxSteps"]) == ("gpt-4.1", 10)
    assert list(data["experts"]) == ["writer", "editor", "critic"]
    form = ConfigDocument.parse(BASE)
    form.delete_expert("editor")
    deleted = form.dumps()
    outcome = three_way_merge(BASE, deleted, theirs)
    assert outcome.text is not None and "editor" not in tomllib.loads(outcome.text)["experts"]
    # Deleted here, changed there: ask.
    changed = BASE.replace('"Edit."', '"Edit more."')
    assert three_way_merge(BASE, deleted, changed).conflicts == ("experts.editor",)


def test_an_unparsable_side_is_a_conflict_on_the_whole_file() -> None:
    assert three_way_merge(BASE, BASE + "[broken", BASE).conflicts == ("the file",)


def test_an_edit_that_is_not_a_key_change_is_never_dropped() -> None:
    """A comment added here would be lost by applying key changes to the disk's text: ask."""
    theirs = BASE.replace('"Edit."', '"Edit hard."')
    outcome = three_way_merge(BASE, "# my note\n" + BASE, theirs)
    assert outcome.text is None and outcome.conflicts == ("comments or layout",)
