"""Running an eval set: each case in a scratch workspace of its own, several at once."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from runtime.config.loader import LoadedConfig
from runtime.errors import PerstackError, UsageError
from runtime.evals.checks import label as check_label
from runtime.evals.checks import parse_verdict, run_check
from runtime.evals.format import Case, EvalSet, Judge
from runtime.evals.results import CaseResult, CheckResult, EvalRun
from runtime.schema.checkpoint import Checkpoint
from runtime.schema.events import now_ms
from runtime.schema.ids import new_id
from runtime.schema.messages import ExpertMessage, first_text
from runtime.schema.setting import RunSetting

RunJob = Callable[..., Awaitable[Checkpoint]]
"""Runs one job: :func:`runtime.run` (``setting, listener, config=...``), with any model bound.

Passed in rather than imported: the engine runs evals too (create-expert's ``runEvalSet``), so
this package sits below it."""

Progress = Callable[[CaseResult, int, int], None]
"""Told of each finished case: its result, how many are done, how many there are."""

JUDGE_QUERY = """Judge whether a task was done well, against a rubric.

The task given to the team:
{query}

The team's final result:
{result}

The rubric:
{rubric}

The working directory holds the files the team left; read them if the rubric is about them.
Answer with PASS or FAIL as the very first word, then one sentence saying why."""


@dataclass
class EvalOptions:
    """How to run an eval set.

    Attributes:
        concurrency: Cases run at once.
        storage_root: Where the cases' jobs are stored (their trees open in the studio).
        replay: An earlier run whose jobs' recordings answer the model calls that still match
            (a case goes on with the model from its first difference).
        keep_workspaces: Leave each case's scratch folder behind (their paths are reported).
    """

    concurrency: int = 4
    storage_root: Path | None = None
    replay: EvalRun | None = None
    keep_workspaces: bool = False


async def run_eval_set(
    eval_set: EvalSet,
    config: LoadedConfig,
    options: EvalOptions,
    run: RunJob,
    progress: Progress | None = None,
) -> EvalRun:
    """Run every case of ``eval_set`` with ``run`` and return the results (in file order).

    Raises:
        UsageError: a case or judge names an expert the config does not have.
    """
    _check_experts(eval_set, config)
    started, clock = now_ms(), time.monotonic()
    limit = asyncio.Semaphore(max(1, options.concurrency))
    done = 0
    total = len(eval_set.cases)

    async def one(case: Case) -> CaseResult:
        nonlocal done
        async with limit:
            try:
                result = await run_case(eval_set, case, config, options, run)
            except Exception as error:  # one case's failure is that case's result, not the run's
                result = failed_case(eval_set, case, error)
        done += 1
        if progress is not None:
            progress(result, done, total)
        return result

    results = await asyncio.gather(*(one(case) for case in eval_set.cases))
    return EvalRun(
        id=new_id(),
        name=eval_set.name,
        eval_file=str(eval_set.path),
        started_at=started,
        duration_ms=round((time.monotonic() - clock) * 1000),
        cases=list(results),
    )


def _check_experts(eval_set: EvalSet, config: LoadedConfig) -> None:
    from runtime.config.builtin import builtin_experts

    known = set(config.config.experts) | set(builtin_experts())
    problems = []
    for case in eval_set.cases:
        wanted = [("expert", eval_set.expert_of(case))]
        wanted += [("judge", check.expert) for check in case.checks if isinstance(check, Judge)]
        for role, key in wanted:
            if key not in known:
                problems.append(
                    f"{eval_set.path}: case {case.name!r}: {role} {key!r} is not an expert of "
                    f"{config.label} (experts: {', '.join(sorted(config.config.experts))})"
                )
    if problems:
        raise UsageError("\n".join(problems))


async def run_case(
    eval_set: EvalSet,
    case: Case,
    config: LoadedConfig,
    options: EvalOptions,
    run: RunJob,
    *,
    job_id: str | None = None,
) -> CaseResult:
    """Run one case in a scratch workspace of its own and check it.

    A run that stops or cannot start is the case's result; what fails before it (the seed
    folder) raises, and :func:`run_eval_set` turns that into the case's result too.

    ``job_id``: the case's job id (its judges' are derived from it), for a caller that may run
    the case again after a crash and must find the same job (see :mod:`runtime.fanout`).
    """
    expert = eval_set.expert_of(case)
    clock = time.monotonic()
    workspace = Path(tempfile.mkdtemp(prefix="perstack-eval-"))
    previous = options.replay.case(case.name) if options.replay is not None else None
    replay_of = previous.job_id if previous is not None else None
    if replay_of and not _stored(options.storage_root, replay_of):
        replay_of = None  # its job was deleted since: this case calls the model
    try:
        _seed(eval_set, case, workspace)
        setting = RunSetting(
            expert_key=expert,
            query=case.query,
            workspace=workspace,
            storage_path=options.storage_root,
            max_steps=case.max_steps,
            job_id=job_id,
            replay_of=replay_of,
            replay_live=True,
        )
        try:
            checkpoint = await run(setting, None, config=config)
        except PerstackError as error:
            return failed_case(eval_set, case, error, started=clock)
        result_text = final_text(checkpoint)

        judged = 0

        async def judge(check: Judge) -> tuple[bool, str, str | None]:
            nonlocal judged
            judged += 1
            earlier = _judge_job(previous, check)
            own = f"{job_id}-judge-{judged}" if job_id else None
            return await _judge(
                check, case, result_text, workspace, config, options, run, earlier, own
            )

        checks = [await run_check(check, workspace, result_text, judge) for check in case.checks]
        completed = checkpoint.status == "completed"
        stopped = None
        if not completed:
            stopped = checkpoint.error.message if checkpoint.error else checkpoint.status
        return CaseResult(
            name=case.name,
            expert=expert,
            passed=completed and all(check.passed for check in checks),
            status=checkpoint.status,
            job_id=checkpoint.job_id,
            checks=checks,
            steps=checkpoint.step_number,
            usage=checkpoint.usage,
            duration_ms=round((time.monotonic() - clock) * 1000),
            error=stopped,
            replayed_from=replay_of,
        )
    finally:
        if not options.keep_workspaces:
            shutil.rmtree(workspace, ignore_errors=True)


def failed_case(
    eval_set: EvalSet, case: Case, error: BaseException, *, started: float | None = None
) -> CaseResult:
    """The result of a case that could not run (a missing seed folder, a broken store...).

    ``started``: when the case started (``time.monotonic()``), for its duration.
    """
    if isinstance(error, PerstackError):
        message = f"{error.title}: {error.message}"
    else:
        message = f"{type(error).__name__}: {error}"
    elapsed = time.monotonic() - started if started is not None else 0.0
    return CaseResult(
        name=case.name,
        expert=eval_set.expert_of(case),
        passed=False,
        status="error",
        error=message,
        duration_ms=round(elapsed * 1000),
    )


def _stored(storage_root: Path | None, job_id: str) -> bool:
    from runtime.jobs.store import Storage, default_storage_root

    storage = Storage(storage_root or default_storage_root(Path.cwd()))
    return storage.job_dir(job_id).is_dir()


def _seed(eval_set: EvalSet, case: Case, workspace: Path) -> None:
    if case.seed:
        source = (eval_set.path.parent / case.seed).resolve()
        if not source.is_dir():
            raise UsageError(
                f"{eval_set.path}: case {case.name!r}: seed folder {source} does not exist"
            )
        shutil.copytree(source, workspace, dirs_exist_ok=True)
    for relative, text in case.files.items():
        path = workspace / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def final_text(checkpoint: Checkpoint) -> str:
    """The final result of a run: the text of its last expert message."""
    for message in reversed(checkpoint.messages):
        if isinstance(message, ExpertMessage):
            return first_text(message) or ""
    return ""


def _judge_job(previous: CaseResult | None, check: Judge) -> str | None:
    if previous is None:
        return None
    label = check_label(check)
    return next((c.job_id for c in previous.checks if c.label == label and c.job_id), None)


async def _judge(
    check: Judge,
    case: Case,
    result_text: str,
    workspace: Path,
    config: LoadedConfig,
    options: EvalOptions,
    run: RunJob,
    replay_of: str | None,
    job_id: str | None,
) -> tuple[bool, str, str | None]:
    setting = RunSetting(
        expert_key=check.expert,
        query=JUDGE_QUERY.format(query=case.query, result=result_text, rubric=check.rubric),
        workspace=workspace,
        storage_path=options.storage_root,
        job_id=job_id,
        replay_of=replay_of,
        replay_live=True,
    )
    try:
        checkpoint = await run(setting, None, config=config)
    except PerstackError as error:
        return False, f"the judge could not run: {error.message}", None
    if checkpoint.status != "completed":
        return False, f"the judge's run ended {checkpoint.status}", checkpoint.job_id
    verdict, why = parse_verdict(final_text(checkpoint))
    if verdict is None:
        return False, f"the judge answered neither PASS nor FAIL: {why}", checkpoint.job_id
    return verdict, "" if verdict else why, checkpoint.job_id


__all__ = [
    "CheckResult",
    "EvalOptions",
    "RunJob",
    "failed_case",
    "final_text",
    "run_case",
    "run_eval_set",
]
