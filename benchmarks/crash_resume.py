"""SIGKILL a delegating run at random moments, continue each: the target of issue "Trust".

Target: over ≥ 100 random kill moments, 100 % of the continuations complete, 0 completed steps
are redone, 0 files under perstack/ are corrupt.

Scenario (``perstack.toml`` in a fresh temp workspace per case, storage on, FakeLLM in-process):

* ``lead`` (the coordinator, ``delegates = ["helper", "writer"]``) asks both delegates at once in
  its first reply (two parallel tool calls, call ids ``call_p<phase>_<delegate>``; each query
  names its call id as ``[lineage <id>]``), then answers text once their results are in.
* ``helper`` appends one line per step to ``helper.log`` (3 steps of ``appendTextFile``),
  ``writer`` to ``writer.log`` (2 steps), each then answers text. A line is
  ``<expert> step <k> [<lineage>]``: the evidence that step k of that delegation ran. The files
  are created empty before the run, so every execution of a step leaves one more line.
* The fake answers by expert (from the system prompt) and by progress (the number of assistant
  messages in the request), never from a queue: a continuation that asks again gets the same
  answer. Every reply is delayed 0–80 ms (seeded per case, expert and step), so the kills land at
  varied moments. Uninterrupted, the job makes 9 model requests.

For each of ``--runs`` cases (seeded from ``--seed`` and the case number) one kill moment is
drawn, mixing four kinds:

* ``time``: SIGKILL ``t`` seconds after the process started, ``t`` uniform in [0, 0.9 × the wall
  time of an uninterrupted reference run];
* ``request``: SIGKILL 0–100 ms after the fake received model request #n (n uniform in 1..9);
* ``line``: SIGKILL as soon as stdout line #m arrived (m uniform over the reference run's lines),
  i.e. just after the runtime stored and printed that event;
* ``event``: SIGKILL as soon as the n-th event of one type and expert arrived (drawn uniformly
  from the reference run's events, text deltas left out): the same landmarks as ``line``, found
  by name whatever the interleaving of the parallel delegates.

Each kill is then placed by what was stored at that moment: before the first checkpoint, while
the delegates run, both delegates done but lead not resumed, lead's final step, after lead's
completeRun (then the continuation is a new turn of a completed job).

The kill goes to the run's process group (``start_new_session``). A moment is redrawn, in a fresh
workspace (up to 5 times per case; both counts are reported), when the kill missed (the run had
already exited) or came before the job existed (no ``perstack/jobs/<id>/`` yet, the interpreter
still starting: nothing is stored, so ``--continue`` must refuse with "No jobs found", exit 2,
and store nothing; that is checked). So every case is a kill of a live job. Then
``perstack run lead "go on" --continue`` runs once, not killed, against a new FakeLLM (so the
requests before and after the kill cannot mix) and must complete; a lead that starts over must
still be asked the job's first query.

Checks per case (definitions are printed with the figures):

* completed: the continuation exits 0, its last run event is lead's ``completeRun``, job.json
  says ``completed``, lead's last request carries both delegates' results, and every step line
  of the delegations it used is in the evidence files;
* completed steps redone: see DEFINITIONS below (model requests after the continue compared with
  the checkpoints stored before the kill, and evidence lines written twice);
* duplicate step numbers: two stored checkpoints of one run lineage (same expert and same
  ``delegatedBy.toolCallId``) with the same step number, as ``step_numbers`` in
  tests/test_crash_resume.py;
* corrupt files, checked right after the kill and after the continuation: every ``*.json`` under
  perstack/ parses (job.json and checkpoints also load with the runtime's models), job.lock is
  empty or JSON, every events.jsonl line parses except a torn last line (no newline, not JSON),
  which is counted apart (readers skip it). Leftover ``.*.tmp`` files of interrupted atomic
  writes are counted apart too (readers never look at them).

    .venv/bin/python benchmarks/crash_resume.py [--runs N] [--seed S] [--json]
        [--only 3,17] [--keep DIR] [--verbose]

Exit status 1 when a case crashed the harness (or the uninterrupted reference run failed its
checks); a missed target is reported, not an exit status.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crash_harness.outcome import (  # noqa: E402
    CaseResult,
    Moment,
    Reference,
    classify,
    draw_moment,
    event_key,
    print_report,
    summarize,
)
from crash_harness.team import (  # noqa: E402
    CONTINUE_QUERY,
    EVIDENCE_RE,
    LEAD,
    LEAD_GENERATIONS,
    MAX_ATTEMPTS,
    QUERY,
    STEPS,
    TIMEOUT,
    TOTAL_REQUESTS,
    Asked,
    Launch,
    check_integrity,
    child_env,
    duplicate_steps,
    evidence,
    evidence_line,
    make_reply,
    new_workspace,
    parse_request,
    progress,
    read_checkpoints,
    run_command,
    stored_tool_results,
    tmp_checkpoints,
)

from tests.fakellm import (  # noqa: E402
    FakeLLM,
)

# One case ---------------------------------------------------------------------------------------


def first_run(
    case_seed: str, moment: Moment | None, workspace: Path
) -> tuple[Launch, FakeLLM, list[Asked]]:
    """Start the job; kill it at ``moment`` (None: let it finish)."""
    holder: list[Launch] = []
    fake_box: list[FakeLLM] = []

    def on_request(number: int) -> None:
        if moment is None or moment.kind != "request" or number != int(moment.value):
            return
        launch, fake = holder[0], fake_box[0]
        timer = threading.Timer(moment.extra, lambda: launch.kill(requests=len(fake.requests)))
        timer.daemon = True
        timer.start()

    seen: Counter[str] = Counter()

    def on_line(count: int, line: str) -> None:
        if moment is None:
            return
        if moment.kind == "line" and count == int(moment.value):
            holder[0].kill(requests=len(fake_box[0].requests))
        elif moment.kind == "event" and (key := event_key(line)) is not None:
            seen[key] += 1
            if key == moment.event and seen[key] == int(moment.value):
                holder[0].kill(requests=len(fake_box[0].requests))

    fake = FakeLLM(default=make_reply(case_seed, 1, on_request))
    fake_box.append(fake)
    launch = Launch(run_command(), workspace, child_env(fake), holder=holder, on_line=on_line)
    timer = None
    if moment is not None and moment.kind == "time":
        timer = threading.Timer(moment.value, lambda: launch.kill(requests=len(fake.requests)))
        timer.daemon = True
        timer.start()
    launch.wait()
    if timer is not None:
        timer.cancel()
    fake.close()
    return launch, fake, [parse_request(body) for body in list(fake.requests)]


def check_nothing_to_continue(workspace: Path, result: CaseResult) -> None:
    """A job killed before it existed: ``--continue`` must refuse, and store nothing."""
    fake = FakeLLM(default=make_reply(result.seed, 2, lambda _n: None))
    resumed = Launch(run_command("--continue", query=CONTINUE_QUERY), workspace, child_env(fake))
    resumed.wait()
    fake.close()
    jobs = list((workspace / "perstack" / "jobs").glob("*"))
    if resumed.returncode != 2 or "No jobs found" not in resumed.stderr or jobs or fake.requests:
        result.problems.append(
            f"killed before its job existed, --continue exit {resumed.returncode} "
            f"({resumed.stderr[-300:].strip()!r}), {len(jobs)} jobs, {len(fake.requests)} "
            "requests: expected exit 2 'No jobs found', no job, no request"
        )


def last_events(launch: Launch, count: int | None, n: int = 3) -> str:
    events = launch.events()[: count if count is not None else len(launch.lines)]
    tail = [
        f"{e.get('type')}:{e.get('expertKey')}@{e.get('stepNumber')}"
        if e.get("expertKey")
        else str(e.get("type"))
        for e in events[-n:]
    ]
    return " → ".join(tail) or "(no stdout yet)"


def run_case(
    case: int, seed: int, reference: Reference, keep: Path | None, verbose: bool
) -> CaseResult:
    case_seed = f"{seed}:{case}"
    rng = random.Random(case_seed)
    result = CaseResult(case=case, seed=case_seed)
    started = time.monotonic()
    workspace = Path()
    launch: Launch | None = None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        moment = draw_moment(rng, reference)
        workspace = new_workspace()
        launch, _fake, _asked = first_run(case_seed, moment, workspace)
        result.attempts = attempt
        result.kind, result.moment = moment.kind, moment.describe()
        if launch.returncode == -signal.SIGKILL and launch.kill_time is not None:
            if any(p.is_dir() for p in (workspace / "perstack" / "jobs").glob("*")):
                result.landed = True
                break
            # Killed before the job existed: nothing is stored, so there is nothing to continue.
            result.before_job += 1
            check_nothing_to_continue(workspace, result)
        elif launch.returncode != 0:
            result.problems.append(
                f"the first run ended with exit {launch.returncode} before the kill: "
                f"{launch.stderr[-400:].strip()}"
            )
            break
        else:
            result.missed += 1  # the run had finished before the kill
        if attempt == MAX_ATTEMPTS:
            result.problems.append(f"no kill landed on a live job in {MAX_ATTEMPTS} attempts")
            break
        shutil.rmtree(workspace, ignore_errors=True)
    assert launch is not None
    result.kill_wall = launch.wall
    result.moment += f" (landed {launch.kill_time:.3f} s)" if launch.kill_time is not None else ""

    # What the kill left.
    before = read_checkpoints(workspace)
    done_before = progress(before)
    lines_before = evidence(workspace)
    integrity_before = check_integrity(workspace)
    results_before = stored_tool_results(workspace)
    tmp_before = tmp_checkpoints(workspace)
    # The runtime rebuilds the step after a lineage's latest checkpoint from its stored
    # callTools/resolveToolResults events: such a step is done too, and asking for it again
    # would be a redo.
    # (also a delegate's first step, from its startRun and those events).
    lineages = {f"{name}:call_p1_{name}" for name in STEPS} | set(done_before)
    for lineage in lineages:
        done = done_before.get(lineage, 0)
        call_id = lineage.partition(":")[2]
        if call_id and f"{call_id}_s{done + 1}_p1" in results_before:
            done_before[lineage] = done + 1
    result.where, result.detail = classify(before, launch.kill_request_count or 0)
    result.detail += f"; last stdout: {last_events(launch, launch.kill_line_count)}"

    # The continuation.
    fake = FakeLLM(default=make_reply(case_seed, 2, lambda _n: None))
    resumed = Launch(run_command("--continue", query=CONTINUE_QUERY), workspace, child_env(fake))
    resumed.wait()
    fake.close()
    asked = [parse_request(body) for body in list(fake.requests)]
    result.continue_wall = resumed.wall

    after = read_checkpoints(workspace)
    lines_after = evidence(workspace)
    integrity_after = check_integrity(workspace)

    # Completed?
    problems = result.problems
    events = resumed.events()
    if resumed.timed_out:
        problems.append(f"continuation hung ({TIMEOUT:.0f} s)")
    elif resumed.returncode != 0:
        problems.append(f"continuation exit {resumed.returncode}: {resumed.stderr[-600:].strip()}")
    run_events = [e for e in events if e.get("expertKey")]
    last = run_events[-1] if run_events else {}
    if (last.get("type"), last.get("expertKey")) != ("completeRun", LEAD):
        problems.append(f"last run event is {last.get('type')}:{last.get('expertKey')}")
    jobs = list((workspace / "perstack" / "jobs").glob("*/job.json"))
    statuses = []
    for path in jobs:
        try:
            statuses.append(json.loads(path.read_text()).get("status"))
        except ValueError:
            statuses.append("<unreadable>")
    if statuses != ["completed"]:
        problems.append(f"job.json statuses {statuses}, expected ['completed']")
    lead_requests = [a for a in asked if a.expert == LEAD]
    used: dict[str, str] = {}
    if lead_requests:
        final = lead_requests[-1]
        for name in STEPS:
            found = [
                m.group(1)
                for text in final.tool_texts
                if (m := re.fullmatch(rf"{name} done \[lineage ([A-Za-z0-9_]+)\]", text.strip()))
            ]
            if len(found) != 1:
                problems.append(f"lead's last request lacks {name}'s result: {final.tool_texts}")
            else:
                used[name] = found[0]
    else:
        problems.append("lead made no request after the continue")
    for name, call_id in used.items():
        for step in range(1, STEPS[name] + 1):
            if lines_after[evidence_line(name, step, call_id)] == 0:
                problems.append(f"{name} step {step} [{call_id}] never ran (evidence missing)")
    for a in asked:
        if a.expert == LEAD and a.assistants == 0 and not any(QUERY in u for u in a.users):
            problems.append(f"lead restarted without its query {QUERY!r}: users {a.users}")
    if any(a.expert == "?" or a.lineage.endswith(":?") for a in asked):
        problems.append("a request the fake could not attribute")
    result.completed = not problems

    # Redone steps.
    redone: dict[tuple[str, int], str] = {}
    for a in asked:
        step = a.assistants + 1
        if step <= done_before.get(a.lineage, 0):
            redone[(a.lineage, step)] = "checkpointed (generation asked again)"
    for line, count in lines_after.items():
        match = EVIDENCE_RE.match(line)
        if count <= 1 or not match:
            continue
        name, step, call_id = match.group(1), int(match.group(2)), match.group(3)
        lineage = f"{name}:{call_id}"
        if lines_before[line] >= 1 and count > lines_before[line]:
            if step <= done_before.get(lineage, 0):
                redone.setdefault((lineage, step), "checkpointed (tool ran again)")
            else:
                notes = []
                if f"{call_id}_s{step}_p1" in results_before:
                    notes.append("its result was in a stored resolveToolResults event")
                if tmp_before.get(lineage, 0) >= step:
                    notes.append("its checkpoint was whole in a .tmp file, not yet renamed")
                redone.setdefault(
                    (lineage, step),
                    "effect-only (tool ran before the kill, no checkpoint"
                    + "".join(f"; {note}" for note in notes)
                    + ")",
                )
        else:
            result.repeated_elsewhere += count - 1
            where = "before the kill" if lines_before[line] > 1 else "within the continuation"
            problems.append(f"evidence line {line!r} written {count} times ({where})")
    result.redone = [f"{lineage} step {step}: {how}" for (lineage, step), how in redone.items()]
    result.redone_checkpointed = sum(how.startswith("checkpointed") for how in redone.values())
    result.redone_effect_only = sum(how.startswith("effect-only") for how in redone.values())

    # Requests beyond what the stored checkpoints leave to do.
    expected = 0
    lead_done = done_before.get(LEAD, 0)
    expected += 1 if lead_done >= LEAD_GENERATIONS else LEAD_GENERATIONS - lead_done
    for name, call_id in used.items():
        expected += STEPS[name] + 1 - done_before.get(f"{name}:{call_id}", 0)
    result.extra_requests = len(asked) - expected
    if result.extra_requests < 0:
        problems.append(f"{-result.extra_requests} fewer requests than the steps left")
        result.completed = False

    result.duplicate_steps = duplicate_steps(after)
    result.corrupt = sorted(set(integrity_before.corrupt) | set(integrity_after.corrupt))
    result.torn = len(set(integrity_before.torn) | set(integrity_after.torn))
    result.tmp = len(set(integrity_before.tmp) | set(integrity_after.tmp))
    result.case_wall = time.monotonic() - started

    clean = (
        result.completed
        and not result.redone
        and not result.duplicate_steps
        and not result.corrupt
        and not result.repeated_elsewhere
    )
    if verbose or not clean:
        result.detail += (
            f"; continuation: {len(asked)} requests "
            f"({', '.join(f'{a.lineage}#{a.assistants + 1}' for a in asked)})"
        )
    if keep is not None and not clean:
        target = keep / f"case-{case:03d}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(workspace, target, symlinks=True)
        (target / "stdout-killed.jsonl").write_text("".join(launch.lines))
        (target / "stdout-continue.jsonl").write_text("".join(resumed.lines))
        (target / "stderr-continue.txt").write_text(resumed.stderr)
        result.workspace = str(target)
    shutil.rmtree(workspace, ignore_errors=True)
    return result


def reference_run() -> Reference:
    """One uninterrupted run: the time and line scales of the kill moments, and a sanity check."""
    workspace = new_workspace()
    try:
        launch, _fake, asked = first_run("reference", None, workspace)
        if launch.returncode != 0:
            raise RuntimeError(f"reference run exit {launch.returncode}: {launch.stderr[-800:]}")
        events = launch.events()
        run_events = [e for e in events if e.get("expertKey")]
        if (run_events[-1].get("type"), run_events[-1].get("expertKey")) != ("completeRun", LEAD):
            raise RuntimeError("reference run did not end with lead's completeRun")
        if len(asked) != TOTAL_REQUESTS:
            raise RuntimeError(f"reference run made {len(asked)} requests, not {TOTAL_REQUESTS}")
        lines = evidence(workspace)
        wanted = {
            evidence_line(name, step, f"call_p1_{name}")
            for name, steps in STEPS.items()
            for step in range(1, steps + 1)
        }
        if set(lines) != wanted or any(count != 1 for count in lines.values()):
            raise RuntimeError(f"reference run evidence is {dict(lines)}")
        checkpoints = read_checkpoints(workspace)
        if duplicate_steps(checkpoints) or check_integrity(workspace).corrupt:
            raise RuntimeError("reference run: duplicate step numbers or corrupt files")
        keys = [key for line in launch.lines if (key := event_key(line)) is not None]
        return Reference(
            wall=launch.wall, lines=len(launch.lines), requests=len(asked), events=keys
        )
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="kill moments (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the moments (default 0)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument(
        "--only", help="comma-separated case numbers to run (reproduce a case of a larger run)"
    )
    parser.add_argument("--keep", type=Path, help="copy the workspace of off-target cases here")
    parser.add_argument("--verbose", action="store_true", help="print every case")
    args = parser.parse_args()

    cases = [int(c) for c in args.only.split(",") if c.strip()] if args.only else range(args.runs)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    try:
        reference = reference_run()
    except Exception as exc:
        print(f"reference run FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"reference run ok: {reference.wall:.3f} s, {reference.lines} stdout lines")
    results: list[CaseResult] = []
    crashes: list[str] = []
    for case in cases:
        try:
            result = run_case(case, args.seed, reference, args.keep, args.verbose)
        except Exception:
            crashes.append(f"case {case}: {traceback.format_exc()}")
            print(f"case {case}: HARNESS CRASH\n{crashes[-1]}", file=sys.stderr, flush=True)
            continue
        results.append(result)
        off = (
            not result.completed
            or result.redone
            or result.duplicate_steps
            or result.corrupt
            or result.repeated_elsewhere
        )
        mark = "ok" if not off else "OFF"
        if args.verbose or off:
            print(f"case {case:3d} {mark}: {result.moment}; {result.where}", flush=True)
            if args.verbose:
                print(f"    {result.detail}", flush=True)
        elif (case + 1) % 10 == 0:
            print(f"case {case:3d} ok ({len(results)} done)", flush=True)

    summary = summarize(results)
    print_report(summary, results, reference, args.seed)
    if crashes:
        print()
        print(f"{len(crashes)} case(s) crashed the harness:")
        for crash in crashes:
            print(f"  {crash.splitlines()[0]}")
    if args.json:
        print()
        print(
            json.dumps(
                {
                    "seed": args.seed,
                    "reference": asdict(reference),
                    "summary": summary,
                    "cases": [asdict(r) for r in results],
                    "harness_crashes": crashes,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
