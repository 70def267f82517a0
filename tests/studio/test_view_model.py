"""The step-tree reducer on real event streams: live, replayed from storage, and edge cases."""

from __future__ import annotations

from pathlib import Path

from runtime import RunSetting, parse_config, read_job_events, run
from runtime.schema.events import PerstackEvent
from runtime.testing import ScriptedModel, call, calls, fail, reply
from studio.demo import DEMO_CONFIG, DEMO_EXPERT, DEMO_QUERY, demo_model
from studio.view_model import JobTree


async def demo_events(workspace: Path) -> tuple[list[PerstackEvent], object]:
    events: list[PerstackEvent] = []
    setting = RunSetting(expert_key=DEMO_EXPERT, query=DEMO_QUERY, workspace=workspace)
    config = parse_config(DEMO_CONFIG.read_text(), path=workspace / "perstack.toml")
    checkpoint = await run(setting, events.append, model=demo_model(), config=config)
    return events, checkpoint


async def test_parallel_delegation_tree(tmp_path: Path) -> None:
    events, checkpoint = await demo_events(tmp_path)
    tree = JobTree()
    for event in events:
        tree.apply(event)
    walked = [(depth, node.expert_key, node.status) for depth, node in tree.walk()]
    assert walked == [
        (0, "game-studio", "done"),
        (1, "@demo/level-designer", "done"),
        (1, "@demo/programmer", "done"),
    ]
    root = tree.runs[tree.roots[0]]
    # The coordinator's two segments (before and after delegation) are one node.
    assert len(root.run_ids) == 2
    # Children hang under the tool calls that started them, side by side.
    delegate_calls = root.steps[0].calls
    assert [c.tool_name for c in delegate_calls] == ["level-designer", "programmer"]
    assert all(len(c.child_run_ids) == 1 for c in delegate_calls)
    assert all(c.status == "done" for c in delegate_calls)
    # Roll-ups equal the runtime's own accounting.
    assert tree.rollup(root).total_tokens == checkpoint.usage.total_tokens
    child = tree.runs[delegate_calls[1].child_run_ids[0]]
    assert child.steps[0].calls[0].tool_name == "writeTextFile"
    assert child.result.startswith("Saved src/maze.py")
    assert root.result.startswith("The team built a maze game")
    assert root.steps[-1].reasoning == "Both specialists reported back; summarise their files."


async def test_replay_from_storage_gives_the_same_tree(tmp_path: Path) -> None:
    events, checkpoint = await demo_events(tmp_path)
    live = JobTree()
    for event in events:
        live.apply(event)
    replayed = JobTree()
    job_dir = tmp_path / "perstack" / "jobs" / checkpoint.job_id
    for event in read_job_events(job_dir, messages=False):
        replayed.apply(event)

    def shape(tree: JobTree) -> list[tuple[int, str, str, int, int]]:
        return [
            (d, n.expert_key, n.status, len(n.steps), tree.rollup(n).total_tokens)
            for d, n in tree.walk()
        ]

    assert shape(replayed) == shape(live)


TOML = '[experts."solo"]\ninstruction = "Work alone."\n'


async def test_error_and_follow_up(tmp_path: Path) -> None:
    config = parse_config(TOML, path=tmp_path / "perstack.toml")
    tree = JobTree()
    first = await run(
        RunSetting(expert_key="solo", query="q1", workspace=tmp_path),
        tree.apply,
        model=ScriptedModel(
            [call("readTextFile", path="missing.txt"), fail("boom", retryable=False)]
        ),
        config=config,
    )
    node = tree.runs[tree.roots[0]]
    assert node.status == "failed"
    assert node.error == "AuthenticationError: boom"
    failed_call = node.steps[0].calls[0]
    assert failed_call.status == "failed" and "does not exist" in failed_call.result
    await run(
        RunSetting(expert_key="solo", query="q2", workspace=tmp_path, continue_job=first.job_id),
        tree.apply,
        model=ScriptedModel([reply("second")]),
        config=config,
    )
    # The follow-up goes on with the same run (it was a second root, with only its own tokens).
    (root,) = tree.roots
    node = tree.runs[root]
    assert [n.status for _, n in tree.walk()] == ["done"]
    assert (node.query, node.result, node.error) == ("q1", "second", None)
    assert len(node.run_ids) == 2 and tree.step_count(node) == 3


async def test_streamed_result_accumulates_until_complete(tmp_path: Path) -> None:
    from runtime.schema.events import CompleteStreamingRunResult, StreamRunResult

    config = parse_config(TOML, path=tmp_path / "perstack.toml")
    tree = JobTree()
    events: list[PerstackEvent] = []
    await run(
        RunSetting(expert_key="solo", query="q", workspace=tmp_path),
        events.append,
        model=ScriptedModel([reply("unused")]),
        config=config,
    )
    start = next(e for e in events if e.type == "startRun")
    tree.apply(start)
    node = tree.runs[tree.roots[0]]
    fields = {
        "job_id": start.job_id,
        "run_id": start.run_id,
        "expert_key": "solo",
        "step_number": 1,
    }
    for i in range(1000):
        tree.apply(StreamRunResult(**fields, delta=str(i % 10)))
    assert len(node.streaming_result) == 1000
    # Deltas of a run the tree has never seen are ignored, not kept.
    tree.apply(StreamRunResult(**{**fields, "run_id": "elsewhere"}, delta="x"))
    assert len(tree.runs) == 1
    tree.apply(CompleteStreamingRunResult(**fields, text="final"))
    assert node.streaming_result == "final"


async def test_each_generation_streams_afresh(tmp_path: Path) -> None:
    config = parse_config(TOML, path=tmp_path / "perstack.toml")
    events: list[PerstackEvent] = []
    model = ScriptedModel(
        [calls(("todo", {"newTodos": ["a"]}), text="First, a todo."), reply("The answer.")]
    )
    await run(
        RunSetting(expert_key="solo", query="q", workspace=tmp_path),
        events.append,
        model=model,
        config=config,
    )
    tree = JobTree()
    node = None
    seen: list[str] = []
    for event in events:
        tree.apply(event)
        node = node or (tree.runs[tree.roots[0]] if tree.roots else None)
        if node is not None and event.type in ("callTools", "startGeneration", "streamRunResult"):
            seen.append(f"{event.type}:{node.streaming_result}")
    assert node is not None
    # The text of step 1 (which ended with tool calls) stays until step 2 starts; step 2's
    # stream does not continue it.
    assert seen[seen.index("callTools:First, a todo.") + 1] == "startGeneration:"
    assert seen[-1] == "streamRunResult:The answer."
    assert node.result == "The answer."


async def test_a_delegate_seen_before_its_call_is_still_nested_under_it(tmp_path: Path) -> None:
    events, _ = await demo_events(tmp_path)
    first_call = next(i for i, e in enumerate(events) if e.type == "callTools")
    child_start = next(
        i for i, e in enumerate(events) if e.type == "startRun" and e.expert_key != DEMO_EXPERT
    )
    # Replay with the first delegate's startRun moved before the coordinator's callTools.
    reordered = list(events)
    reordered.insert(first_call, reordered.pop(child_start))
    tree = JobTree()
    for event in reordered:
        tree.apply(event)
    root = tree.runs[tree.roots[0]]
    assert [len(c.child_run_ids) for c in root.steps[0].calls] == [1, 1]


LONG = """
[experts."lead"]
instruction = "You lead."
delegates = ["helper"]

[experts."helper"]
description = "Helps"
instruction = "You help."
"""


async def long_job(workspace: Path, steps: int) -> list[PerstackEvent]:
    """lead delegates at step 1, then reads ``steps`` files itself."""

    def choose(request: object) -> object:
        system = request.messages[0].contents[0].text  # type: ignore[attr-defined]
        if "You help." in system:
            return reply("helped")
        done = sum(1 for m in request.messages if m.type == "toolMessage")  # type: ignore[attr-defined]
        if done == 0:
            return call("helper", query="help me")
        if done <= steps:
            return call("readTextFile", path=f"missing-{done}.txt")
        return reply("all read")

    events: list[PerstackEvent] = []
    setting = RunSetting(expert_key="lead", query="go", workspace=workspace)
    config = parse_config(LONG, path=workspace / "perstack.toml")
    await run(setting, events.append, model=ScriptedModel(choose), config=config)  # type: ignore[arg-type]
    return events


async def test_keep_steps_drops_old_settled_steps_but_not_their_totals(tmp_path: Path) -> None:
    events = await long_job(tmp_path, 30)
    full, kept = JobTree(), JobTree(keep_steps=5)
    for event in events:
        full.apply(event)
        kept.apply(event)
    lead_full = full.runs[full.roots[0]]
    lead = kept.runs[kept.roots[0]]
    # Steps are numbered job-wide: the helper's run took step 2.
    assert full.step_count(lead_full) == kept.step_count(lead) == 33
    # The delegating step 1 stays (its delegated run hangs under it), plus the newest ones.
    assert [s.number for s in lead.steps] == [1, 29, 30, 31, 32, 33, 34]
    assert lead.dropped_steps == 26
    assert kept.rollup(lead) == full.rollup(lead_full)
    assert [(d, n.expert_key, n.status) for d, n in kept.walk()] == [
        (0, "lead", "done"),
        (1, "helper", "done"),
    ]


async def test_delegates_are_listed_in_call_order_whatever_order_they_started_in(
    tmp_path: Path,
) -> None:
    # Parallel delegates start in either order (and replay in either order when their events
    # share a millisecond): the tree follows the order the coordinator called them.
    events, _ = await demo_events(tmp_path)
    starts = [
        i for i, e in enumerate(events) if e.type == "startRun" and e.expert_key != "game-studio"
    ]
    first, second = starts[0], starts[1]
    swapped = list(events)
    swapped[first], swapped[second] = swapped[second], swapped[first]
    tree = JobTree()
    for event in swapped:
        tree.apply(event)
    assert [n.expert_key for d, n in tree.walk() if d == 1] == [
        "@demo/level-designer",
        "@demo/programmer",
    ]
