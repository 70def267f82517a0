"""Snapshots of the run screen: the live step tree, errors, the interactive dialog, history."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

from runtime import PerstackEvent, RunSetting, parse_config, run
from runtime.testing import Reply, ScriptedModel, call, fail, reply
from snapshots.conftest import THEME, fixed_now
from snapshots.helpers import SIZE, wait_until
from studio.demo import DEMO_CONFIG, DEMO_EXPERT, DEMO_QUERY, demo_model
from studio.run_app import RunApp, make_run_app
from studio.screens import run as run_module
from studio.screens.history import HistoryScreen
from studio.screens.interactive import InteractiveToolModal
from studio.screens.run import RunScreen

SOLO = """
[experts."solo"]
instruction = "You work alone."

[experts."asker"]
instruction = "Ask the user before acting."
[experts."asker".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
[experts."asker".skills."ask"]
type = "interactiveSkill"
[experts."asker".skills."ask".tools."askColor"]
description = "Ask the user for a colour"
inputJsonSchema = '{"type": "object", "properties": {"question": {"type": "string"}}}'
"""

STARTED = 1_735_821_000_000
"""2025-01-02 12:30:00 UTC: the start time written into stored jobs."""


def build(workspace: Path, expert: str | None, query: str | None, lm: Any, **kw: Any) -> RunApp:
    if not (workspace / "perstack.toml").exists():
        (workspace / "perstack.toml").write_text(SOLO)
    return make_run_app(
        workspace=workspace,
        expert_key=expert,
        query=query,
        language_model=lm,
        now=fixed_now,
        theme=THEME,
        cursor_blink=False,
        **kw,
    )


def run_screen(pilot: Any) -> RunScreen:
    return next(s for s in pilot.app.screen_stack if isinstance(s, RunScreen))


async def ended(pilot: Any, runs: int = 1) -> None:
    await wait_until(pilot, lambda: any(isinstance(s, RunScreen) for s in pilot.app.screen_stack))
    screen = run_screen(pilot)
    await wait_until(pilot, lambda: screen.finished_runs >= runs)
    screen.refresh_tree()
    await pilot.pause()


def demo_events(workspace: Path, job_id: str) -> list[PerstackEvent]:
    """Run the demo headless and keep its events (ids fixed where the screen shows them)."""
    shutil.copy(DEMO_CONFIG, workspace / "perstack.toml")
    events: list[PerstackEvent] = []
    setting = RunSetting(
        expert_key=DEMO_EXPERT, query=DEMO_QUERY, workspace=workspace, job_id=job_id
    )
    config = parse_config(DEMO_CONFIG.read_text(), path=workspace / "perstack.toml")
    asyncio.run(run(setting, events.append, model=demo_model(), config=config))
    return events


def fix_start(workspace: Path, job_id: str, started: int) -> None:
    path = workspace / "perstack" / "jobs" / job_id / "job.json"
    data = json.loads(path.read_text())
    data["startedAt"] = started
    path.write_text(json.dumps(data))


class TestRunScreen:
    def test_demo_after_parallel_delegation(self, snap_compare, tmp_path: Path) -> None:
        """You should see the demo team's finished job.

        Left, the step tree: "✓ job demo-job done · 3 runs · 105 tok", then "game-studio done ·
        5 steps" (steps counted by number: the delegates' steps 2 and 3 run side by side), its
        step 1 with two delegate calls side by side,
        ✓ level-designer(query=…) holding ✓ @demo/level-designer and ✓ programmer(query=…)
        holding ✓ @demo/programmer, each with a writeTextFile call; then steps 4 and 5 with
        attemptCompletion. Right, the job detail (the query and the team's result) and the
        streamed result of game-studio. The status bar reads "game-studio · demo-scripted (no
        API key) · demo model · step 5 · 105 tok · done"; the query box suggests what to do next
        ("Demo done: ↑/↓ and Enter open a step · F5 history · type a follow-up · Ctrl+Q quits").
        """
        app = make_run_app(
            workspace=tmp_path,
            demo=True,
            job_id="demo-job",
            now=fixed_now,
            theme=THEME,
            cursor_blink=False,
        )
        assert snap_compare(app, terminal_size=SIZE, run_before=ended)

    def test_tree_mid_run(self, snap_compare, tmp_path: Path) -> None:
        """You should see the demo job replayed up to the middle of the delegation.

        game-studio is "◐ delegating" (yellow); under its step 1, the cyan ↳ level-designer
        call holds "◐ @demo/level-designer running", whose writeTextFile call is still running
        (◐), and the ↳ programmer call has not started its run yet. Tokens are rolled up per run.
        The Streaming pane ("Streaming · game-studio") shows the text game-studio streamed with
        its delegation: "I'll have the level designer and the programmer work in parallel."
        """
        source = tmp_path / "source"
        source.mkdir()
        events = demo_events(source, "demo-job")
        first_child_call = next(
            i
            for i, e in enumerate(events)
            if e.type == "callTools" and e.expert_key == "@demo/level-designer"
        )
        prefix = events[: first_child_call + 1]

        async def replay(pilot: Any) -> None:
            screen = run_screen(pilot)
            screen.replay(prefix)
            await pilot.pause()

        # The demo's own perstack.toml: its runs are not made with an older definition.
        shutil.copy(DEMO_CONFIG, tmp_path / "perstack.toml")
        app = build(tmp_path, DEMO_EXPERT, None, None)
        assert snap_compare(app, terminal_size=SIZE, run_before=replay)

    def test_connecting_to_the_provider(self, snap_compare, tmp_path: Path) -> None:
        """You should see a run that has started and waits for the provider's first answer.

        Left, the step tree: the job row "◌ job connecting-job  connecting to openai… · 1 run ·
        0 tok" and under it "◌ solo  connecting to openai… · 1 step · 0 tok" (the ◌ and the
        phase in yellow, where a running run shows ◐ running), then its empty step 1. Right,
        the job detail: the query "hello" and "connecting to openai… · 0 tok". The status bar
        reads "solo · gpt-4.1 · step 1 · 0 tok · connecting to openai…".
        """
        # The scripted provider answers only after the picture is taken.
        model = ScriptedModel([Reply(text="Hello.", delay=30)], model_name="gpt-4.1")

        async def connecting(pilot: Any) -> None:
            await wait_until(
                pilot, lambda: any(isinstance(s, RunScreen) for s in pilot.app.screen_stack)
            )
            screen = run_screen(pilot)
            await wait_until(pilot, lambda: screen.phase == "connecting")
            screen.refresh_tree()
            await pilot.pause()

        app = build(
            tmp_path,
            "solo",
            "hello",
            model,
            provider="openai",
            model="gpt-4.1",
            job_id="connecting-job",
        )
        assert snap_compare(app, terminal_size=SIZE, run_before=connecting)

    def test_error(self, snap_compare, tmp_path: Path) -> None:
        """You should see a failed run with its error in the detail pane.

        The tree shows "✗ solo failed · 2 steps", step 1 with a red ✗ readTextFile call (the
        file does not exist) and step 2. The run is selected: the detail pane says
        "Run solo · failed", the query "read it", and under Error "AuthenticationError: the
        key was refused" in red.
        """
        model = ScriptedModel(
            [call("readTextFile", path="missing.txt"), fail("the key was refused", retryable=False)]
        )

        async def select_run(pilot: Any) -> None:
            await ended(pilot)
            await pilot.press("ctrl+t", "down")
            await pilot.pause()

        app = build(tmp_path, "solo", "read it", model, job_id="failed-job")
        assert snap_compare(app, terminal_size=SIZE, run_before=select_run)

    def test_long_run_with_an_older_definition(
        self, snap_compare, tmp_path: Path, monkeypatch
    ) -> None:
        """You should see a 9-step run whose early steps are folded, marked as made with an
        older definition.

        The run line reads "✓ solo  done · 9 steps · … · older definition" (the last part in
        grey italics). Under it, first a grey "⋯ 5 earlier steps" node (collapsed), then steps
        6 to 9: steps 6 to 8 each with a red ✗ readTextFile call (missing-6.txt …), step 9
        (the final answer) with no call. The run is selected: the detail pane says, in yellow
        italics, "Made with an older definition of solo: perstack.toml has changed since. The
        next run uses the file as saved now.", then the query "read them" and the result
        "All read.". The Streaming pane ("Streaming · solo") shows that answer, streamed.
        """
        monkeypatch.setattr(run_module, "KEEP_STEPS", 3)
        script = [call("readTextFile", path=f"missing-{i}.txt") for i in range(1, 9)]
        model = ScriptedModel([*script, reply("All read.")])

        async def edit_and_select(pilot: Any) -> None:
            await ended(pilot)
            toml = tmp_path / "perstack.toml"
            toml.write_text(toml.read_text().replace("You work alone.", "You work in pairs."))
            screen = run_screen(pilot)
            screen.check_definitions()
            screen.refresh_tree()
            await pilot.press("ctrl+t", "down")
            await pilot.pause()

        app = build(tmp_path, "solo", "read them", model, job_id="long-job")
        assert snap_compare(app, terminal_size=SIZE, run_before=edit_and_select)

    def test_missing_api_key(self, snap_compare, tmp_path: Path, monkeypatch) -> None:
        """You should see the run screen with a red "✗ Missing API key" panel above the query.

        It says "ANTHROPIC_API_KEY is not set. Set it in your environment or add
        ANTHROPIC_API_KEY=... to .env in the workspace." A toast repeats it. The tree is empty
        ("job · waiting for a query"), the status bar ends in "failed", and the app still runs.
        """
        monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
        app = build(
            tmp_path, "solo", "hello", None, provider="anthropic", model="claude-sonnet-4-5"
        )

        async def failed(pilot: Any) -> None:
            await ended(pilot)

        assert snap_compare(app, terminal_size=SIZE, run_before=failed)

    def test_interactive_dialog(self, snap_compare, tmp_path: Path) -> None:
        """You should see the interactive dialog over the run screen.

        Title "? askColor needs your answer", the model's argument "question: Which colour?",
        one input labelled "question (string)" with the placeholder "Which colour?", and the
        buttons Later and Answer. Behind it, the tree shows asker "? waiting for input".
        """
        model = ScriptedModel([call("askColor", question="Which colour?"), reply("Blue it is.")])

        async def asked(pilot: Any) -> None:
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, InteractiveToolModal))
            await pilot.pause()

        app = build(tmp_path, "asker", "paint it", model, job_id="ask-job")
        assert snap_compare(app, terminal_size=SIZE, run_before=asked)


class TestHistory:
    def test_history_screen(self, snap_compare, tmp_path: Path) -> None:
        """You should see the history of two past jobs, newest first.

        Title "Past jobs · 2". Rows: 2025-01-02 12:31:00 solo completed (job solo-job), then
        2025-01-02 12:30:00 game-studio completed (job demo-job), with steps and tokens. The
        hint below says "Enter: the job's checkpoints · Esc: back to the run"; the footer offers
        "esc Back  m Mark  d Diff".
        """
        demo_events(tmp_path, "demo-job")
        fix_start(tmp_path, "demo-job", STARTED)
        config = parse_config(SOLO, path=tmp_path / "perstack.toml")
        asyncio.run(
            run(
                RunSetting(expert_key="solo", query="hi", workspace=tmp_path, job_id="solo-job"),
                model=ScriptedModel([reply("hello")]),
                config=config,
            )
        )
        fix_start(tmp_path, "solo-job", STARTED + 60_000)

        async def history(pilot: Any) -> None:
            await pilot.press("f5")
            await wait_until(
                pilot,
                lambda: isinstance(pilot.app.screen, HistoryScreen) and bool(pilot.app.screen.jobs),
            )
            await pilot.pause()

        app = build(tmp_path, "solo", None, None)
        assert snap_compare(app, terminal_size=SIZE, run_before=history)
