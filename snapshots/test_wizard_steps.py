"""Snapshots of the "New team" wizard: one per step, on a scripted create-expert, and what
stops it moving on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, TextArea

from snapshots.conftest import THEME, fixed_now
from snapshots.helpers import SIZE, wait_until
from studio.screens.wizard import PROVIDERS, WizardScreen
from studio.screens.wizard_run import TeamDiffScreen, WizardRunScreen
from studio.wizard_app import WizardApp, make_wizard_app
from tests.studio.test_wizard import EXISTING, team_model

DESCRIPTION = "Build a Bun-based CLI indie game playable on Bash for AI."


@pytest.fixture
def wizard_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WizardApp:
    """The wizard on tmp_path/game: OPENAI_API_KEY in the environment, FIREWORKS_API_KEY in .env."""
    for provider in PROVIDERS:
        monkeypatch.delenv(provider.key_env, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    workspace = tmp_path / "game"
    workspace.mkdir()
    (workspace / ".env").write_text("FIREWORKS_API_KEY=fw-test\n")
    (workspace / "perstack.toml").write_text(EXISTING)
    return make_wizard_app(
        workspace=workspace,
        cwd=tmp_path,
        language_model=team_model(),
        now=fixed_now,
        theme=THEME,
        cursor_blink=False,
        job_id="wizard-job",
        exit_on_end=False,
    )


async def described(pilot: Any) -> None:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, WizardScreen))
    screen = pilot.app.screen
    screen.query_one("#wizard-name", Input).value = "ai-gaming"
    screen.query_one("#wizard-description", TextArea).text = DESCRIPTION
    await pilot.pause()


async def on_model_step(pilot: Any) -> None:
    await described(pilot)
    await pilot.press("ctrl+s")
    await pilot.pause()


async def on_review(pilot: Any) -> None:
    await on_model_step(pilot)
    await pilot.press("down", "down")  # fireworks, whose key is in .env
    await pilot.press("ctrl+s")
    await pilot.pause()


async def on_diff(pilot: Any) -> None:
    await on_review(pilot)
    await pilot.press("ctrl+s")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, TeamDiffScreen))
    await pilot.pause()


async def on_finished_tree(pilot: Any) -> None:
    await on_diff(pilot)
    await pilot.press("escape")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, WizardRunScreen))
    pilot.app.screen.refresh_tree()
    await pilot.pause()


class TestWizard:
    def test_describe(self, snap_compare, wizard_app: WizardApp) -> None:
        """You should see step 1 of 5 highlighted in the step bar ("1 Describe").

        Below, "New team" with a one-paragraph explanation, the team name "ai-gaming" (the
        focused field, the first of the step) and the description "Build a Bun-based CLI indie
        game playable on Bash for AI." in a large text area; Cancel and Next buttons bottom right
        (no Back on the first step); the footer shows ^s Next and esc Back.
        """
        assert snap_compare(wizard_app, terminal_size=SIZE, run_before=described)

    def test_provider_and_model(self, snap_compare, wizard_app: WizardApp) -> None:
        """You should see step 2 ("2 Model") with the five providers and their key variables.

        "✓ openai  OPENAI_API_KEY  set in environment" and "✓ fireworks  FIREWORKS_API_KEY  set
        in .env" are marked in green; anthropic, google and deepseek read "not set" (dim).
        openai, the first provider with a key, is highlighted and the Model box holds its default
        "gpt-4.1". Back, Cancel and Next buttons below.
        """
        assert snap_compare(wizard_app, terminal_size=SIZE, run_before=on_model_step)

    def test_review(self, snap_compare, wizard_app: WizardApp) -> None:
        """You should see step 3 ("3 Review"): the exact query for create-expert.

        "Form a team named ai-gaming that does the following." then the description; Provider
        fireworks with "✓ FIREWORKS_API_KEY set in .env" (green); Model
        accounts/fireworks/models/kimi-k2p5; Workspace game; and a dim note that perstack.toml is
        merged into and backed up to perstack.toml.bak. The primary button reads "Start
        create-expert".
        """
        assert snap_compare(wizard_app, terminal_size=SIZE, run_before=on_review)

    def test_run_tree(self, snap_compare, wizard_app: WizardApp) -> None:
        """You should see the run screen after create-expert finished ("Job · create-expert").

        The tree: ✓ job wizard-job done · 3 runs; "✓ create-expert done · 9 steps" (the nested
        run's steps counted once by their numbers) with steps 1-2
        (writeExpertDefinition for ai-gaming and @ai-gaming/level-designer), step 3
        validatePerstackToml, step 4 runExpert holding the nested ✓ ai-gaming run, which holds
        ✓ @ai-gaming/level-designer with its writeTextFile call; then attemptCompletion. The
        status bar reads "create-expert · scripted · … · done"; the footer offers f6 Changes.
        """
        assert snap_compare(wizard_app, terminal_size=SIZE, run_before=on_finished_tree)

    def test_diff(self, snap_compare, wizard_app: WizardApp) -> None:
        """You should see step 5 ("5 Changes"): how perstack.toml changed.

        "create-expert changed perstack.toml." and "New experts: ai-gaming,
        @ai-gaming/level-designer" (green), then "create-expert's report" in a box ("Built
        ai-gaming with a level designer; tested with one query."), then the unified diff: the
        old writer expert as context, the two new [experts."…"] tables as green + lines and the
        @@ hunk header in cyan. Buttons Back to run, Roll back (red) and Accept (green, focused).
        """
        assert snap_compare(wizard_app, terminal_size=SIZE, run_before=on_diff)


class TestWizardRefusals:
    def test_describe_refuses_a_bad_team_name(self, snap_compare, wizard_app: WizardApp) -> None:
        """You should see step 1 ("1 Describe") refusing to move on.

        The team name reads "AI Gaming" (focused) and the description "Build a Bun-based CLI
        indie game playable on Bash for AI."; Ctrl+S was pressed and a red line above the
        buttons says "'AI Gaming' is not a valid team name: use lowercase letters, digits, '-',
        '_'." The step bar still highlights "1 Describe"; only Cancel and Next show.
        """

        async def bad_name(pilot: Any) -> None:
            await described(pilot)
            pilot.app.screen.query_one("#wizard-name", Input).value = "AI Gaming"
            await pilot.press("ctrl+s")
            await pilot.pause()

        assert snap_compare(wizard_app, terminal_size=SIZE, run_before=bad_name)

    def test_no_provider_key_anywhere(self, snap_compare, tmp_path: Path, monkeypatch) -> None:
        """You should see step 2 ("2 Model") in a workspace with no API key at all.

        None of the five providers has a ✓: anthropic, openai, google, fireworks and deepseek
        each show their key variable (ANTHROPIC_API_KEY, OPENAI_API_KEY,
        GOOGLE_GENERATIVE_AI_API_KEY, FIREWORKS_API_KEY, DEEPSEEK_API_KEY) and a dim "not set".
        The first, anthropic, is highlighted and the Model box holds its default
        "claude-sonnet-4-5". Cancel, Back and Next below.
        """
        for provider in PROVIDERS:
            monkeypatch.delenv(provider.key_env, raising=False)
        workspace = tmp_path / "game"
        workspace.mkdir()
        app = make_wizard_app(
            workspace=workspace,
            cwd=tmp_path,
            language_model=team_model(),
            now=fixed_now,
            theme=THEME,
            cursor_blink=False,
            job_id="wizard-job",
            exit_on_end=False,
        )
        assert snap_compare(app, terminal_size=SIZE, run_before=on_model_step)
