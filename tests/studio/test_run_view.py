"""The run screen driven with Pilot through whole runs on a scripted model (no network)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console, RenderableType
from textual.pilot import Pilot
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState

from runtime import MissingApiKeyError
from runtime.jobs import Jobs
from runtime.testing import Reply, ScriptedModel, call, reply, scripted_team
from studio import run_view
from studio.run_app import RunApp, make_run_app
from studio.run_controller import PREWARM_WORKER
from studio.run_messages import RunCancelled, RunEventReceived, RunFailed, RunFinished
from studio.screens import run as run_module
from studio.screens.history import HistoryScreen
from studio.screens.interactive import InteractiveToolModal
from studio.screens.run import RunScreen
from tests.fakellm import FakeLLM, reply_text

SIZE = (120, 40)

CHAIN = """
[experts."lead"]
instruction = "You lead the chain."
delegates = ["mid"]

[experts."mid"]
instruction = "You are the middle link."
delegates = ["leaf"]

[experts."leaf"]
instruction = "You are the last link."

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


def app_for(workspace: Path, expert: str, query: str | None, lm: Any, **kw: Any) -> RunApp:
    (workspace / "perstack.toml").write_text(CHAIN)
    return make_run_app(
        workspace=workspace,
        expert_key=expert,
        query=query,
        language_model=lm,
        cursor_blink=False,
        **kw,
    )


async def until(pilot: Pilot[Any], condition: Callable[[], bool]) -> None:
    """Let the app work until ``condition`` holds (no fixed sleeps)."""
    async with asyncio.timeout(10):
        while not condition():
            await pilot.pause()


def run_screen(pilot: Pilot[Any]) -> RunScreen:
    return next(s for s in pilot.app.screen_stack if isinstance(s, RunScreen))


async def finished(pilot: Pilot[Any], runs: int = 1) -> RunScreen:
    """Wait for ``runs`` runs of the screen to end and the tree to catch up."""
    screen = await screen_ready(pilot)
    await until(pilot, lambda: screen.finished_runs >= runs and not screen.controller.running)
    screen.refresh_tree()
    await pilot.pause()
    return screen


async def screen_ready(pilot: Pilot[Any]) -> RunScreen:
    await until(pilot, lambda: any(isinstance(s, RunScreen) for s in pilot.app.screen_stack))
    return run_screen(pilot)


def shape(screen: RunScreen) -> list[tuple[int, str, str]]:
    return [(depth, node.expert_key, node.status) for depth, node in screen.job.walk()]


async def pick_from_history(pilot: Pilot[Any], screen: RunScreen) -> None:
    """F5, Enter on the newest job, Enter on its newest checkpoint: back on the run screen."""
    app = pilot.app
    await pilot.press("f5")
    await until(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.jobs)
    await pilot.press("enter")
    history = app.screen
    assert isinstance(history, HistoryScreen)
    await until(pilot, lambda: bool(history.checkpoints))
    await pilot.press("enter")
    await until(pilot, lambda: app.screen is screen)


def plain(renderable: RenderableType) -> str:
    """What a detail renderable says, as plain text."""
    console = Console(width=200, color_system=None)
    with console.capture() as captured:
        console.print(renderable)
    return captured.get()


def tree_parent_kind(screen: RunScreen, node_id: str) -> str:
    parent = screen.step_tree.nodes[("run", node_id)].parent
    assert parent is not None and parent.data is not None
    return parent.data[0]


async def test_delegation_chain_nests_runs_under_their_tool_calls(tmp_path: Path) -> None:
    model = scripted_team(
        {
            "the chain": [call("mid", query="pass it on"), reply("lead: all done")],
            "middle link": [call("leaf", query="finish it"), reply("mid: done")],
            "last link": [reply("leaf: done")],
        }
    )
    messages: list[Any] = []
    app = app_for(tmp_path, "lead", "start the chain", model)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        screen = await finished(pilot)
        assert shape(screen) == [(0, "lead", "done"), (1, "mid", "done"), (2, "leaf", "done")]
        for _, node in screen.job.walk()[1:]:
            assert tree_parent_kind(screen, node.node_id) == "call"
        root = screen.job.runs[screen.job.roots[0]]
        label = str(screen.step_tree.nodes[("run", root.node_id)].label)
        assert "lead" in label and "done" in label and "tok" in label
        # Usage rolls up through the whole chain.
        assert screen.job.rollup(root).total_tokens > root.own_usage.total_tokens
        status = str(screen.query_one("#run-status", Static).render())
        assert "lead" in status and "done" in status
    received = [m.event for m in messages if isinstance(m, RunEventReceived)]
    assert "completeRun" in {e.type for e in received}
    assert [m for m in messages if isinstance(m, RunFinished)]


async def test_demo_shows_parallel_delegates_side_by_side(tmp_path: Path) -> None:
    app = make_run_app(workspace=tmp_path, demo=True, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await finished(pilot)
        assert shape(screen) == [
            (0, "game-studio", "done"),
            (1, "@demo/level-designer", "done"),
            (1, "@demo/programmer", "done"),
        ]
        root = screen.job.runs[screen.job.roots[0]]
        step = root.steps[0]
        step_node = screen.step_tree.nodes[("step", root.node_id, str(step.number))]
        # Both delegate calls sit under the same step, each holding its delegate's run.
        assert [c.data[1:] for c in step_node.children] == [
            (root.node_id, c.call_id) for c in step.calls
        ]
        assert all(len(c.children) == 1 for c in step_node.children)
        status = str(screen.query_one("#run-status", Static).render())
        assert "demo model" in status
        assert (tmp_path / "levels" / "level1.txt").exists()


async def test_interactive_stop_is_answered_in_the_dialog(tmp_path: Path) -> None:
    model = ScriptedModel([call("askColor", question="Which colour?"), reply("Painted it blue.")])
    app = app_for(tmp_path, "asker", "paint it", model)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InteractiveToolModal))
        modal = app.screen
        assert isinstance(modal, InteractiveToolModal)
        assert modal.tool_name == "askColor" and modal.args == {"question": "Which colour?"}
        screen = run_screen(pilot)
        screen.refresh_tree()
        assert shape(screen) == [(0, "asker", "waiting")]
        await pilot.press(*"blue")
        await pilot.press("enter")
        screen = await finished(pilot, runs=2)
        assert shape(screen) == [(0, "asker", "done")]
        assert screen.job.runs[screen.job.roots[0]].result == "Painted it blue."
        answer = model.requests[-1].messages[-1]
        assert answer.type == "toolMessage"
        assert answer.contents[0].contents[0].text == "blue"  # type: ignore[union-attr]


async def test_cancel_keeps_a_checkpoint_and_says_so(tmp_path: Path) -> None:
    model = ScriptedModel([Reply(text="too slow", delay=30)])
    messages: list[Any] = []
    app = app_for(tmp_path, "solo", "take your time", model)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        screen = await screen_ready(pilot)
        await until(pilot, lambda: bool(screen.job.roots) and screen.controller.running)
        await pilot.press("escape")
        await until(pilot, lambda: any(isinstance(m, RunCancelled) for m in messages))
        await until(pilot, lambda: not screen.controller.running)
        screen.refresh_tree()
        assert shape(screen) == [(0, "solo", "cancelled")]
        assert "cancelled" in str(screen.step_tree.nodes[("run", screen.job.roots[0])].label)
        jobs = Jobs.for_workspace(tmp_path).list_jobs()
        assert len(jobs) == 1
        assert Jobs.for_workspace(tmp_path).checkpoints(jobs[0].id)


async def test_follow_up_continues_the_job(tmp_path: Path) -> None:
    model = ScriptedModel([reply("first answer"), reply("second answer")])
    app = app_for(tmp_path, "solo", "q1", model)
    async with app.run_test(size=SIZE) as pilot:
        screen = await finished(pilot)
        job_id = screen.controller.job_id
        query = screen.query_one("#run-query", Input)
        query.focus()
        query.value = "q2"
        await pilot.press("enter")
        screen = await finished(pilot, runs=2)
        # The follow-up goes on with the same run, as perstack log shows it (issue 16, bug 3).
        assert shape(screen) == [(0, "solo", "done")]
        (root,) = screen.job.roots
        assert screen.job.runs[root].queries == ["q1", "q2"]
        assert screen.controller.job_id == job_id
        assert len(Jobs.for_workspace(tmp_path).list_jobs()) == 1


async def test_resume_from_history(tmp_path: Path) -> None:
    first = app_for(tmp_path, "solo", "q1", ScriptedModel([reply("first answer")]))
    async with first.run_test(size=SIZE) as pilot:
        await finished(pilot)
    (job,) = Jobs.for_workspace(tmp_path).list_jobs()
    model = ScriptedModel([reply("resumed answer")])
    app = app_for(tmp_path, "solo", None, model)
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_ready(pilot)
        await pick_from_history(pilot, screen)
        # The stored job is replayed into the tree before anything runs.
        assert shape(screen) == [(0, "solo", "done")]
        assert screen.resume_point is not None
        checkpoint_id = screen.resume_point.checkpoint.id
        await pilot.press(*"again")
        await pilot.press("enter")
        screen = await finished(pilot)
        assert screen.controller.job_id == job.id
        # Resumed from the job's last checkpoint: the run goes on (not a branch).
        assert [(n.queries, n.fork_step) for _, n in screen.job.walk()] == [(["q1", "again"], None)]
        assert len(Jobs.for_workspace(tmp_path).list_jobs()) == 1
        assert checkpoint_id in {c.id for c in Jobs.for_workspace(tmp_path).checkpoints(job.id)}


async def test_runs_made_with_an_older_definition_are_marked(tmp_path: Path) -> None:
    model = scripted_team(
        {
            "the chain": [call("mid", query="pass it on"), reply("lead: done"), reply("again")],
            "middle link": [call("leaf", query="finish it"), reply("mid: done")],
            "last link": [reply("leaf: done")],
        }
    )
    app = app_for(tmp_path, "lead", "start the chain", model)
    toml = tmp_path / "perstack.toml"
    async with app.run_test(size=SIZE) as pilot:
        screen = await finished(pilot)
        screen.check_definitions()
        assert [n.stale for _, n in screen.job.walk()] == [False, False, False]

        # Comments, layout and other experts' edits do not make a run older.
        toml.write_text("# a comment\n" + CHAIN.replace("You work alone.", "You work solo."))
        screen.check_definitions()
        assert [n.stale for _, n in screen.job.walk()] == [False, False, False]

        # The saved file now gives "mid" another instruction: only mid's run is older.
        toml.write_text(CHAIN.replace("You are the middle link.", "You relay work."))
        await until(pilot, lambda: screen.job.walk()[1][1].stale)  # the timer notices
        assert [n.stale for _, n in screen.job.walk()] == [False, True, False]
        screen.refresh_tree()
        mid = screen.job.walk()[1][1]
        assert "older definition" in str(screen.step_tree.nodes[("run", mid.node_id)].label)
        assert "older definition of mid" in plain(screen.view.detail(("run", mid.node_id)))

        # A broken file leaves the marks as they are; a follow-up uses the saved definition.
        toml.write_text("[experts.lead\n")
        screen.check_definitions()
        assert [n.stale for _, n in screen.job.walk()] == [False, True, False]
        toml.write_text(CHAIN.replace("You lead the chain.", "You lead the chain, carefully."))
        screen.check_definitions()
        assert [n.stale for _, n in screen.job.walk()] == [True, False, False]
        query = screen.query_one("#run-query", Input)
        query.focus()
        query.value = "and again"
        await pilot.press("enter")
        screen = await finished(pilot, runs=2)
        screen.check_definitions()
        # The follow-up goes on with lead's run, whose earlier steps the older lead made.
        assert [(n.expert_key, n.stale) for _, n in screen.job.walk()] == [
            ("lead", True),
            ("mid", False),
            ("leaf", False),
        ]


async def test_replayed_job_marks_runs_older_than_the_file(tmp_path: Path) -> None:
    first = app_for(tmp_path, "solo", "q1", ScriptedModel([reply("first answer")]))
    async with first.run_test(size=SIZE) as pilot:
        await finished(pilot)
    app = app_for(tmp_path, "solo", None, ScriptedModel([]))
    (tmp_path / "perstack.toml").write_text(CHAIN.replace("You work alone.", "You pair up."))
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_ready(pilot)
        await pick_from_history(pilot, screen)
        await until(pilot, lambda: screen.job.walk()[0][1].stale)
        (root,) = screen.job.roots
        assert "older definition" in str(screen.step_tree.nodes[("run", root)].label)


async def test_old_steps_leave_memory_and_come_back_from_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_module, "KEEP_STEPS", 4)
    script = [call("readTextFile", path=f"missing-{i}.txt") for i in range(1, 13)]
    app = app_for(tmp_path, "solo", "read them all", ScriptedModel([*script, reply("done")]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await finished(pilot)
        (root_id,) = screen.job.roots
        node = screen.job.runs[root_id]
        # Trimmed as each step ends: the last step (13) came after the last trim.
        assert node.dropped_steps == 8 and [s.number for s in node.steps] == [9, 10, 11, 12, 13]
        run_node = screen.step_tree.nodes[("run", root_id)]
        assert "13 steps" in str(run_node.label)
        earlier = run_node.children[0]
        assert str(earlier.label) == "⋯ 8 earlier steps"
        assert [c.data for c in run_node.children[1:]] == [
            ("step", root_id, str(n)) for n in (9, 10, 11, 12, 13)
        ]
        assert ("step", root_id, "1") not in screen.step_tree.nodes

        earlier.expand()
        await until(pilot, lambda: len(earlier.children) == 8)
        assert [str(c.label).split()[:2] for c in earlier.children] == [
            ["step", str(n)] for n in range(1, 9)
        ]
        first_call = earlier.children[0].children[0]
        assert "readTextFile" in str(first_call.label)
        assert first_call.data is not None
        assert "missing-1.txt" in plain(screen.view.detail(first_call.data))

        earlier.collapse()
        await until(pilot, lambda: not earlier.children)
        assert root_id not in screen.view.earlier


async def test_history_reads_jobs_from_perstack_storage_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = tmp_path / "elsewhere"
    monkeypatch.setenv("PERSTACK_STORAGE_PATH", str(storage))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    app = app_for(workspace, "solo", "q1", ScriptedModel([reply("first answer")]))
    async with app.run_test(size=SIZE) as pilot:
        await finished(pilot)
    assert (storage / "jobs").is_dir() and not (workspace / "perstack").exists()
    assert [job.expert_key for job in Jobs.for_workspace(workspace).list_jobs()] == ["solo"]


async def test_missing_api_key_is_shown_in_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    messages: list[Any] = []
    app = app_for(tmp_path, "solo", "hello", None, provider="anthropic", model="claude-sonnet-4-5")
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        screen = await screen_ready(pilot)
        await until(pilot, lambda: screen.error is not None)
        assert isinstance(screen.error, MissingApiKeyError)
        panel = screen.query_one("#run-error", Static)
        assert panel.display
        text = str(panel.render())
        assert "ANTHROPIC_API_KEY" in text and ".env" in text
        assert app.is_running
        assert [m for m in messages if isinstance(m, RunFailed)]


class GatedModel(ScriptedModel):
    """A scripted model whose n-th reply waits until the test sets ``gates[n]``."""

    def __init__(self, replies: list[Reply], gates: list[asyncio.Event], **kw: Any) -> None:
        super().__init__(replies, **kw)
        self.gates = gates

    async def stream(self, request: Any) -> Any:
        gate = self.gates[len(self.requests)] if len(self.requests) < len(self.gates) else None
        if gate is not None:
            await gate.wait()
        async for chunk in super().stream(request):
            yield chunk


def labels(screen: RunScreen) -> tuple[str, str, str]:
    """The job row, the newest root's run row (or "") and the status bar, as plain text."""
    screen.refresh_tree()
    job = str(screen.step_tree.nodes[("job",)].label)
    run = ""
    if screen.job.roots:
        run = str(screen.step_tree.nodes[("run", screen.job.roots[-1])].label)
    return job, run, str(screen.query_one("#run-status", Static).render())


async def test_a_run_says_it_is_connecting_until_the_model_answers(tmp_path: Path) -> None:
    first_reply, second_reply = asyncio.Event(), asyncio.Event()
    model = GatedModel(
        [call("todo", newTodos=["look"]), reply("All done.")], [first_reply, second_reply]
    )
    app = app_for(tmp_path, "solo", None, model, provider="openai")
    async with app.run_test(size=SIZE) as pilot:
        screen = await screen_ready(pilot)
        assert "waiting for a query" in labels(screen)[0]
        await pilot.press(*"hello", "enter")
        # At once, before the model is asked anything: the run has started.
        assert screen.phase is not None
        job, _, status = labels(screen)
        assert "waiting for a query" not in job
        assert screen.view.phase_text() in job and status.endswith(screen.view.phase_text())

        # The first generation is requested; the provider has not answered yet.
        await until(pilot, lambda: screen.phase == "connecting")
        job, run, status = labels(screen)
        assert "◌" in job and "connecting to openai…" in job
        assert run.startswith("◌ solo") and "connecting to openai…" in run
        assert "running" not in run
        assert status.endswith("connecting to openai…")

        # The first output (a tool call) ends it, while the run goes on (step 2 is gated).
        first_reply.set()
        await until(
            pilot,
            lambda: bool(screen.job.roots and screen.job.runs[screen.job.roots[0]].steps[0].calls),
        )
        assert screen.phase is None and screen.controller.running
        job, run, status = labels(screen)
        assert "connecting" not in job + run + status
        assert "running" in run and status.endswith("running")

        second_reply.set()
        screen = await finished(pilot)
        assert shape(screen) == [(0, "solo", "done")]
        assert "connecting" not in "".join(labels(screen))


async def test_a_follow_up_connects_on_the_row_of_the_run_it_goes_on_with(tmp_path: Path) -> None:
    gate = asyncio.Event()
    model = GatedModel([reply("first"), reply("second")], [asyncio.Event(), gate])
    model.gates[0].set()
    app = app_for(tmp_path, "solo", "q1", model)
    async with app.run_test(size=SIZE) as pilot:
        screen = await finished(pilot)
        await pilot.press(*"q2", "enter")
        assert screen.phase is not None
        await until(pilot, lambda: screen.phase == "connecting")
        job, run, _ = labels(screen)
        # No provider named in perstack.toml or the options: the label stays generic. The
        # follow-up goes on with the run of q1 (one row), which connects again.
        assert "connecting to the model…" in job and "connecting to the model…" in run
        (root,) = screen.job.roots
        assert screen.job.runs[root].queries == ["q1", "q2"]
        gate.set()
        screen = await finished(pilot, runs=2)
        assert "connecting" not in "".join(labels(screen))


def warm_ups(messages: list[Any]) -> list[WorkerState]:
    """The last state of each model-client warm-up worker, in start order."""
    states: dict[Worker[Any], WorkerState] = {}
    for message in messages:
        if isinstance(message, Worker.StateChanged) and message.worker.name == PREWARM_WORKER:
            states[message.worker] = message.state
    return list(states.values())


async def test_the_model_client_loads_once_when_the_screen_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_llm: FakeLLM
) -> None:
    for name, value in fake_llm.env().items():
        monkeypatch.setenv(name, value)
    fake_llm.script(reply_text("Hello from the fake."))
    messages: list[Any] = []
    app = app_for(tmp_path, "solo", None, None, provider="openai", model="gpt-4.1")
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        screen = await screen_ready(pilot)
        # Before any query: the warm-up runs as soon as the screen has loaded perstack.toml.
        await until(pilot, lambda: warm_ups(messages) == [WorkerState.SUCCESS])
        # Saved again with an expert's edit: the model settings are the same, so is the client.
        toml = tmp_path / "perstack.toml"
        toml.write_text(toml.read_text().replace("You work alone.", "You work on your own."))
        screen.check_definitions()
        await pilot.press(*"hi", "enter")
        screen = await finished(pilot)
        assert shape(screen) == [(0, "solo", "done")]
        assert screen.job.runs[screen.job.roots[0]].result == "Hello from the fake."
        assert len(fake_llm.requests) == 1
        assert warm_ups(messages) == [WorkerState.SUCCESS]

        # Other model settings in the file: the next run may need another client.
        toml.write_text('[provider]\nproviderName = "openai"\n' + toml.read_text())
        screen.check_definitions()
        await until(pilot, lambda: warm_ups(messages) == [WorkerState.SUCCESS] * 2)


async def test_an_injected_model_needs_no_warm_up(tmp_path: Path) -> None:
    messages: list[Any] = []
    app = app_for(tmp_path, "solo", "q1", ScriptedModel([reply("done")]), provider="openai")
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        screen = await finished(pilot)
        assert shape(screen) == [(0, "solo", "done")]
        (tmp_path / "perstack.toml").write_text('model = "gpt-4.1"\n' + CHAIN)
        screen.check_definitions()
        assert warm_ups(messages) == []


async def test_cached_input_tokens_show_in_the_roll_ups(tmp_path: Path) -> None:
    from runtime import Usage

    usage = Usage(input_tokens=1200, output_tokens=30, total_tokens=1230, cached_input_tokens=1000)
    model = ScriptedModel([reply("cached answer", usage=usage)])
    app = app_for(tmp_path, "solo", "q1", model)
    async with app.run_test(size=SIZE) as pilot:
        screen = await finished(pilot)
        root = screen.job.roots[0]
        assert run_view.usage_text(screen.job.rollup(screen.job.runs[root])) == (
            "1,230 tok (1,000 cached)"
        )
        assert "1,230 tok (1,000 cached)" in str(screen.query_one("#run-status", Static).render())
