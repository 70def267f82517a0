"""Structured edits through the forms: experts, the model, skills of each type, pick / omit.

Each edit lands in the editor through the runtime's ConfigDocument; lines the form did not touch
stay byte-identical.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable
from pathlib import Path

from textual.widgets import Checkbox, Input, Select, SelectionList, TextArea

from studio.messages import AnalysisReady
from studio.screens.confirm import ConfirmModal
from studio.screens.expert_form import ExpertFormScreen
from studio.screens.main import MainScreen
from studio.screens.prompt import PromptModal
from studio.screens.skill_form import SkillFormScreen
from studio.widgets.expert_tree import ExpertTree
from tests.studio.helpers import SIZE, Messages, studio, wait_until


def changed(before: str, after: str) -> list[str]:
    """The lines removed (-) and added (+) between two texts."""
    return [
        line
        for line in difflib.ndiff(before.splitlines(), after.splitlines())
        if line.startswith(("- ", "+ "))
    ]


async def ready(app, pilot, messages: Messages) -> MainScreen:
    screen = app.screen
    assert isinstance(screen, MainScreen)
    await messages.wait_for(AnalysisReady, lambda m: m.text == screen.editor.text)
    await wait_until(pilot, lambda: screen.analysis is not None)
    return screen


async def select(pilot, screen: MainScreen, kind: str, expert: str, name: str = "") -> None:
    """Put the tree's cursor on an item and focus the tree."""
    tree = screen.query_one(ExpertTree)
    tree.focus()
    await wait_until(
        pilot,
        lambda: any(
            line.path[-1].data is not None
            and line.path[-1].data.node_key == (kind, expert, name or expert)
            for line in tree._tree_lines
        ),
    )
    for index, line in enumerate(tree._tree_lines):
        data = line.path[-1].data
        if data is not None and data.node_key == (kind, expert, name or expert):
            tree.cursor_line = index
    await pilot.pause()


async def settle(pilot, screen: MainScreen, messages: Messages) -> str:
    await messages.wait_for(AnalysisReady, lambda m: m.text == screen.editor.text)
    await pilot.pause()
    return screen.editor.text


# Experts -------------------------------------------------------------------------------------


async def test_add_expert_with_the_form(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("team.toml")
    before = path.read_text()
    messages = Messages()
    app = studio(path.parent)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = await ready(app, pilot, messages)
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: isinstance(app.screen, ExpertFormScreen))
        form = app.screen
        await pilot.press(*"Sound", "ctrl+s")  # refused: not a valid key, the form stays
        assert app.screen is form
        assert "not a valid expert key" in str(form.query_one("#form-error").render())
        form.query_one("#expert-key", Input).value = "sound-designer"
        form.query_one("#expert-description", Input).value = "Composes the soundtrack."
        form.query_one("#expert-instruction", TextArea).focus()
        await pilot.press(*"Compose", "enter", *"Short")
        delegates = form.query_one("#expert-delegates", SelectionList)
        delegates.select("story-writer")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen)
        after = await settle(pilot, screen, messages)
        data = tomllib.loads(after)["experts"]["sound-designer"]
        assert data == {
            "description": "Composes the soundtrack.",
            "instruction": "Compose\nShort",
            "delegates": ["story-writer"],
        }
        assert after.startswith(before.rstrip("\n"))
        assert screen.dirty
        assert "sound-designer" in screen.query_one(ExpertTree).outline.expert_keys
    assert path.read_text() == before  # applied to the editor only, not saved


async def test_edit_description_instruction_and_delegates(
    config_dir: Callable[[str], Path],
) -> None:
    path = config_dir("team.toml")
    before = path.read_text()
    messages = Messages()
    app = studio(path.parent)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = await ready(app, pilot, messages)
        await select(pilot, screen, "expert", "game-director")
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, ExpertFormScreen))
        form = app.screen
        form.query_one("#expert-description", Input).value = "Runs the game studio."
        instruction = form.query_one("#expert-instruction", TextArea)
        instruction.text = "Direct the studio.\nDelegate every task.\n"
        form.query_one("#expert-delegates", SelectionList).deselect("story-writer")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen)
        after = await settle(pilot, screen, messages)
    director = tomllib.loads(after)["experts"]["game-director"]
    assert director["description"] == "Runs the game studio."
    assert director["instruction"] == "Direct the studio.\nDelegate every task.\n"
    assert director["delegates"] == [
        "@ai-gaming/level-designer",
        "@ai-gaming/sound-designer@1.0.0",
    ]
    # Only the three edited keys changed; everything else is byte-identical.
    removed = [line for line in changed(before, after) if line.startswith("- ")]
    assert all(
        line.startswith(("- description", "- delegates", "- instruction", "- You", "- Split"))
        for line in removed
    ), removed


async def test_rename_expert_updates_delegates(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("team.toml")
    messages = Messages()
    app = studio(path.parent)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = await ready(app, pilot, messages)
        await select(pilot, screen, "expert", "story-writer")
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptModal))
        app.screen.query_one(Input).value = "narrator"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen)
        after = await settle(pilot, screen, messages)
    experts = tomllib.loads(after)["experts"]
    assert "narrator" in experts and "story-writer" not in experts
    assert "narrator" in experts["game-director"]["delegates"]


async def test_delete_expert_asks_first(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("team.toml")
    before = path.read_text()
    messages = Messages()
    app = studio(path.parent)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = await ready(app, pilot, messages)
        await select(pilot, screen, "expert", "story-writer")
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("escape")  # cancelled: nothing changes
        await wait_until(pilot, lambda: app.screen is screen)
        assert screen.editor.text == before
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: app.screen is screen)
        after = await settle(pilot, screen, messages)
    experts = tomllib.loads(after)["experts"]
    assert "story-writer" not in experts
    assert "story-writer" not in experts["game-director"]["delegates"]


async def test_set_and_remove_the_model(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("team.toml")
    before = path.read_text()
    messages = Messages()
    app = studio(path.parent)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = await ready(app, pilot, messages)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptModal))
        app.screen.query_one(Input).value = "gpt-4.1"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen)
        after = await settle(pilot, screen, messages)
        assert changed(before, after) == [
            '- model = "claude-sonnet-4-5"',
            '+ model = "gpt-4.1"',
        ]
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptModal))
        app.screen.query_one(Input).value = ""
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen)
        after = await settle(pilot, screen, messages)
        assert "model" not in tomllib.loads(after)


# Skills --------------------------------------------------------------------------------------


async def open_skill_form(app, pilot, screen: MainScreen, expert: str) -> SkillFormScreen:
    await select(pilot, screen, "expert", expert)
    await pilot.press("s")
    await wait_until(pilot, lambda: isinstance(app.screen, SkillFormScreen))
    form = app.screen
    assert isinstance(form, SkillFormScreen)
    return form


async def test_add_a_skill_of_each_type(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("team.toml")
    messages = Messages()
    app = studio(path.parent)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = await ready(app, pilot, messages)

        # stdio, on an expert without skills: @perstack/base comes along.
        form = await open_skill_form(app, pilot, screen, "story-writer")
        assert "is added too" in str(form.query_one("#skill-base-note").render())
        form.query_one("#skill-name", Input).value = "github"
        form.query_one("#skill-command", Input).value = "npx"
        await pilot.press("ctrl+s")  # refused: neither a package nor arguments
        assert app.screen is form
        assert "exactly one" in str(form.query_one("#form-error").render())
        form.query_one("#skill-args", Input).value = "-y @modelcontextprotocol/server-github"
        form.query_one("#skill-env", Input).value = "GITHUB_TOKEN"
        form.query_one("#skill-pick", Input).value = "list_issues, create_issue"
        form.query_one("#skill-lazy", Checkbox).value = True
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen)
        await settle(pilot, screen, messages)

        # SSE
        form = await open_skill_form(app, pilot, screen, "story-writer")
        form.query_one("#skill-type", Select).value = "mcpSseSkill"
        await pilot.pause()
        form.query_one("#skill-name", Input).value = "search"
        form.query_one("#skill-endpoint", Input).value = "https://192.168.1.10/sse"
        await pilot.press("ctrl+s")  # refused by the document's schema check, said in the form
        assert app.screen is form
        assert "public HTTPS URL" in str(form.query_one("#form-error").render())
        form.query_one("#skill-endpoint", Input).value = "https://search.example.com/sse"
        form.query_one("#skill-omit", Input).value = "admin"
        form.query_one("#skill-rule", Input).value = "Cite sources."
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen)
        await settle(pilot, screen, messages)

        # Streamable HTTP
        form = await open_skill_form(app, pilot, screen, "story-writer")
        form.query_one("#skill-type", Select).value = "mcpStreamableHttpSkill"
        await pilot.pause()
        form.query_one("#skill-name", Input).value = "docs"
        form.query_one("#skill-endpoint", Input).value = "https://docs.example.com/mcp"
        form.query_one("#skill-headers", Input).value = "Authorization: Bearer ${DOCS_TOKEN}"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen)
        await settle(pilot, screen, messages)

        # Interactive
        form = await open_skill_form(app, pilot, screen, "story-writer")
        form.query_one("#skill-type", Select).value = "interactiveSkill"
        await pilot.pause()
        form.query_one("#skill-name", Input).value = "ask"
        form.query_one("#skill-tool-name", Input).value = "askUser"
        form.query_one("#skill-tool-description", Input).value = "Ask the user"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen)
        after = await settle(pilot, screen, messages)

        # The team's delegation cycle is a warning; the new skills add no problem.
        assert [item.severity for item in screen.problems.diagnostics] == ["warning"] * len(
            screen.problems.diagnostics
        )
    skills = tomllib.loads(after)["experts"]["story-writer"]["skills"]
    assert list(skills) == ["@perstack/base", "github", "search", "docs", "ask"]
    assert skills["@perstack/base"] == {
        "type": "mcpStdioSkill",
        "command": "npx",
        "packageName": "@perstack/base",
    }
    assert skills["github"] == {
        "type": "mcpStdioSkill",
        "command": "npx",
        "args": ["-y", "@modelcontextprotocol/server-github"],
        "requiredEnv": ["GITHUB_TOKEN"],
        "lazyInit": True,
        "pick": ["list_issues", "create_issue"],
    }
    assert skills["search"] == {
        "type": "mcpSseSkill",
        "endpoint": "https://search.example.com/sse",
        "omit": ["admin"],
        "rule": "Cite sources.",
    }
    assert skills["docs"] == {
        "type": "mcpStreamableHttpSkill",
        "endpoint": "https://docs.example.com/mcp",
        "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"},
    }
    assert skills["ask"]["type"] == "interactiveSkill"
    assert skills["ask"]["tools"]["askUser"]["description"] == "Ask the user"


async def test_edit_pick_and_omit(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("team.toml")
    before = path.read_text()
    messages = Messages()
    app = studio(path.parent)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = await ready(app, pilot, messages)
        await select(pilot, screen, "skill", "@ai-gaming/level-designer", "@perstack/base")
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, SkillFormScreen))
        form = app.screen
        assert form.query_one("#skill-pick", Input).value == (
            "readTextFile, writeTextFile, attemptCompletion"
        )
        form.query_one("#skill-pick", Input).value = "readTextFile, attemptCompletion"
        form.query_one("#skill-omit", Input).value = "exec"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen)
        after = await settle(pilot, screen, messages)
    base = tomllib.loads(after)["experts"]["@ai-gaming/level-designer"]["skills"]["@perstack/base"]
    assert base["pick"] == ["readTextFile", "attemptCompletion"]
    assert base["omit"] == ["exec"]
    removed = [line for line in changed(before, after) if line.startswith("- ")]
    assert removed == ['- pick = ["readTextFile", "writeTextFile", "attemptCompletion"]']


async def test_remove_a_skill(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("all_skill_types.toml")
    messages = Messages()
    app = studio(path.parent)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = await ready(app, pilot, messages)
        await select(pilot, screen, "skill", "toolbox", "search")
        await pilot.press("delete")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: app.screen is screen)
        after = await settle(pilot, screen, messages)
    skills = tomllib.loads(after)["experts"]["toolbox"]["skills"]
    assert "search" not in skills
    assert list(skills) == ["@perstack/base", "github", "time", "docs", "ask"]


async def test_delete_on_a_delegate_removes_it(config_dir: Callable[[str], Path]) -> None:
    path = config_dir("team.toml")
    before = path.read_text()
    messages = Messages()
    app = studio(path.parent)
    async with app.run_test(size=SIZE, message_hook=messages) as pilot:
        screen = await ready(app, pilot, messages)
        await select(pilot, screen, "delegate", "story-writer", "game-director")
        await pilot.press("d")
        await wait_until(pilot, lambda: screen.editor.text != before)
        after = await settle(pilot, screen, messages)
    assert changed(before, after) == ['- delegates = ["game-director"]']
