"""The "New team" wizard under Pilot, end to end on a scripted create-expert (no network)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static, TextArea

from runtime import GenerationRequest
from runtime.testing import Reply, ScriptedModel, call, reply
from studio.run_messages import RunEventReceived, RunFinished
from studio.screens.wizard import PROVIDERS, FoundKey, WizardScreen, detect_keys, team_query
from studio.screens.wizard_run import TeamDiffScreen, WizardRunScreen
from studio.wizard_app import WizardApp, make_wizard_app

SIZE = (120, 40)
COORDINATOR = "You coordinate the ai-gaming team."
DESIGNER = "You design levels as text maps."
EXISTING = (
    '# Our team file: keep this comment (café).\n[experts."writer"]\ninstruction = "Write."\n'
)
NO_KEYS = {"PATH": "/usr/bin"}


def write(key: str, instruction: str, **extra: Any) -> Reply:
    return call(
        "writeExpertDefinition",
        key=key,
        description=f"{key} expert",
        instruction=instruction,
        **extra,
    )


def team_model() -> ScriptedModel:
    """create-expert writes a two-expert team, validates it, runs it and completes."""
    script: dict[str, list[Reply]] = {
        "You build teams of micro-agents": [
            write("ai-gaming", COORDINATOR, delegates=["@ai-gaming/level-designer"]),
            write("@ai-gaming/level-designer", DESIGNER),
            call("validatePerstackToml"),
            call("runExpert", expertKey="ai-gaming", query="Design one level", maxSteps=10),
            call("attemptCompletion"),
            reply("Built ai-gaming with a level designer; tested with one query."),
        ],
        COORDINATOR: [call("level-designer", query="one level"), reply("Level 1 is ready.")],
        DESIGNER: [call("writeTextFile", path="levels/1.txt", text="#S.E#"), reply("saved")],
    }

    def choose(request: GenerationRequest) -> Reply:
        system = request.messages[0].contents[0].text  # type: ignore[union-attr]
        for marker, queue in script.items():
            if marker in system and queue:
                return queue.pop(0)
        raise AssertionError(f"no script left for {system[-60:]!r}")

    return ScriptedModel(choose)


def app_for(workspace: Path, **kw: Any) -> WizardApp:
    return make_wizard_app(
        workspace=workspace,
        language_model=team_model(),
        environ=kw.pop("environ", NO_KEYS),
        cursor_blink=False,
        exit_on_end=False,
        **kw,
    )


async def until(pilot: Pilot[Any], condition: Callable[[], bool]) -> None:
    """Let the app work until ``condition`` holds (no fixed sleeps)."""
    async with asyncio.timeout(10):
        while not condition():
            await pilot.pause()


def wizard(pilot: Pilot[Any]) -> WizardScreen:
    return next(s for s in pilot.app.screen_stack if isinstance(s, WizardScreen))


async def to_review(pilot: Pilot[Any], name: str = "ai-gaming") -> WizardScreen:
    """Fill step 1, accept the detected provider on step 2, stop on the review."""
    await until(pilot, lambda: isinstance(pilot.app.screen, WizardScreen))
    screen = wizard(pilot)
    screen.query_one("#wizard-name", Input).value = name
    screen.query_one("#wizard-description", TextArea).text = "Build a CLI game for AI."
    await pilot.press("ctrl+s")
    assert screen.step == 1
    await pilot.press("ctrl+s")
    assert screen.step == 2
    return screen


async def run_to_diff(pilot: Pilot[Any]) -> TeamDiffScreen:
    await to_review(pilot)
    await pilot.press("ctrl+s")
    await until(pilot, lambda: isinstance(pilot.app.screen, TeamDiffScreen))
    assert isinstance(pilot.app.screen, TeamDiffScreen)
    return pilot.app.screen


def test_detect_keys_reads_environment_and_env_files(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FIREWORKS_API_KEY=fw-1\nOPENAI_API_KEY=\n")
    (tmp_path / ".env.local").write_text("DEEPSEEK_API_KEY=ds-1\n")
    found = detect_keys(tmp_path, {"ANTHROPIC_API_KEY": "sk-1", "GOOGLE_API_KEY": "g"})
    assert found == {
        "anthropic": FoundKey("ANTHROPIC_API_KEY", "environment"),
        "google": FoundKey("GOOGLE_API_KEY", "environment"),
        "fireworks": FoundKey("FIREWORKS_API_KEY", ".env"),
        "deepseek": FoundKey("DEEPSEEK_API_KEY", ".env.local"),
    }


def test_team_query_names_the_team() -> None:
    assert team_query(" Build a game. ", "ai-gaming") == (
        "Form a team named ai-gaming that does the following.\n\nBuild a game."
    )
    assert team_query("Build a game.").startswith("Form a team that does")


async def test_detected_key_from_dotenv_picks_provider_and_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (env for provider in PROVIDERS for env in provider.key_envs):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("FIREWORKS_API_KEY=fw-test\n")
    app = make_wizard_app(workspace=tmp_path, cursor_blink=False, exit_on_end=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_review(pilot)
        assert screen.keys["fireworks"] == FoundKey("FIREWORKS_API_KEY", ".env")
        assert screen.provider.name == "fireworks"
        assert screen.model == "accounts/fireworks/models/kimi-k2p5"
        review = str(screen.query_one("#wizard-review", Static).render())
        assert "✓ FIREWORKS_API_KEY set in .env" in review
        assert "Form a team named ai-gaming" in review
        # Back to the model step: choosing another provider swaps in its default model.
        await pilot.press("escape")
        options = screen.query_one("#wizard-providers", OptionList)
        options.highlighted = 1  # openai
        await pilot.pause()
        assert screen.provider.name == "openai" and screen.model == "gpt-4.1"
        # A model the user typed is kept when the provider changes.
        screen.query_one("#wizard-model", Input).value = "gpt-5"
        options.highlighted = 0
        await pilot.pause()
        assert screen.model == "gpt-5"


async def test_describe_starts_in_the_team_name_field(tmp_path: Path) -> None:
    """The first field of the step has the focus (it was the description below it)."""
    async with app_for(tmp_path).run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(pilot.app.screen, WizardScreen))
        await pilot.press(*"ai-gaming")
        assert wizard(pilot).query_one("#wizard-name", Input).value == "ai-gaming"


async def test_steps_validate_before_moving_on(tmp_path: Path) -> None:
    async with app_for(tmp_path).run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(pilot.app.screen, WizardScreen))
        screen = wizard(pilot)
        await pilot.press("ctrl+s")
        assert screen.step == 0
        assert "Describe what the team" in str(screen.query_one("#wizard-error", Static).render())
        screen.query_one("#wizard-description", TextArea).text = "Build a game."
        screen.query_one("#wizard-name", Input).value = "Bad Name"
        await pilot.press("ctrl+s")
        assert screen.step == 0
        assert "not a valid team name" in str(screen.query_one("#wizard-error", Static).render())
        # Escape on the first step closes the wizard without touching anything.
        await pilot.press("escape")
        app = pilot.app
        assert isinstance(app, WizardApp)
        await until(pilot, lambda: app.ended)
        assert app.outcome is None
    assert not (tmp_path / "perstack.toml").exists()


async def test_accept_keeps_the_new_team(tmp_path: Path) -> None:
    config = tmp_path / "perstack.toml"
    config.write_bytes(EXISTING.encode())
    messages: list[Any] = []
    app = app_for(tmp_path, job_id="wizard-job")
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        diff = await run_to_diff(pilot)
        # The run: create-expert finished, and the tested team ran nested in the same job.
        run_screen = next(s for s in app.screen_stack if isinstance(s, WizardRunScreen))
        assert run_screen.options.expert_key == "create-expert"
        assert run_screen.controller.checkpoint is not None
        assert run_screen.controller.checkpoint.status == "completed"
        # Messages bubble from the screen to the app: the hook sees each one there too.
        finished = {id(m) for m in messages if isinstance(m, RunFinished)}
        assert len(finished) == 1
        started = {
            m.event.expert_key  # type: ignore[union-attr]
            for m in messages
            if isinstance(m, RunEventReceived) and m.event.type == "startRun"
        }
        assert started == {"create-expert", "ai-gaming", "@ai-gaming/level-designer"}
        events = [m.event for m in messages if isinstance(m, RunEventReceived)]
        assert {event.job_id for event in events} == {"wizard-job"}
        assert run_screen.job.runs  # the tree holds the nested runs
        # The diff: the two new experts, coloured; the old content is context.
        summary = str(diff.query_one("#diff-summary", Static).render())
        assert "New experts: ai-gaming, @ai-gaming/level-designer" in summary
        assert '+[experts."ai-gaming"]' in diff.diff
        assert '+[experts."@ai-gaming/level-designer"]' in diff.diff
        # create-expert's report is on the same screen as the decision (issue 16, item 7: it
        # showed only after "Back to run").
        report = str(diff.query_one("#diff-report-text", Static).render())
        assert report == diff.report and "tested" in report
        assert (tmp_path / "perstack.toml.bak").read_bytes() == EXISTING.encode()
        after = config.read_bytes()
        await pilot.click("#diff-accept")
        await until(pilot, lambda: app.ended)
        assert app.outcome == "accepted"
    assert config.read_bytes() == after
    assert config.read_bytes().startswith(EXISTING.encode())


async def test_roll_back_restores_the_file_byte_for_byte(tmp_path: Path) -> None:
    config = tmp_path / "perstack.toml"
    original = EXISTING.encode() + b"# no newline at the end"
    config.write_bytes(original)
    app = app_for(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        diff = await run_to_diff(pilot)
        assert config.read_bytes() != original
        # Back to the tree first, then F6 brings the changes back.
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(pilot.app.screen, WizardRunScreen))
        assert diff.diff
        await pilot.press("f6")
        await until(pilot, lambda: isinstance(pilot.app.screen, TeamDiffScreen))
        await pilot.press("r")
        await until(pilot, lambda: app.ended)
        assert app.outcome == "rolled-back"
    assert config.read_bytes() == original


async def test_roll_back_removes_a_file_the_wizard_created(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        diff = await run_to_diff(pilot)
        assert "perstack.toml does not exist yet" not in diff.diff
        assert (tmp_path / "perstack.toml").exists()
        await pilot.click("#diff-roll-back")
        await until(pilot, lambda: app.ended)
    assert not (tmp_path / "perstack.toml").exists()


async def test_the_changes_step_shows_the_eval_score(tmp_path: Path) -> None:
    """Issue 17 item 5: create-expert scores the team on an eval set; the wizard shows it."""
    from tests.runtime.test_create_expert import eval_scoring_team

    app = make_wizard_app(
        workspace=tmp_path,
        language_model=eval_scoring_team(),
        environ=NO_KEYS,
        cursor_blink=False,
        exit_on_end=False,
    )
    async with app.run_test(size=SIZE) as pilot:
        diff = await run_to_diff(pilot)
        summary = str(diff.query_one("#diff-summary", Static).render())
        assert "Eval score: 1/2 cases of evals passed (failing: two levels)" in summary
