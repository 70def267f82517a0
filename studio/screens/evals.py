"""The Evals view: the eval sets of the folder, their latest scores against an earlier run.

An eval set is found as ``evals.toml``, ``*.evals.toml`` or ``evals/*.toml`` beside perstack.toml.
The grid shows the set's latest stored run (what ``perstack eval`` and create-expert's
``runEvalSet`` stored), each case beside its outcome in an earlier run, regressions and fixes
said in words. ``r`` runs the set on the team in perstack.toml, as ``perstack eval`` does; Enter
opens a case's job in the run view, with its delegation tree.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.worker import Worker

from runtime import LanguageModel, PerstackError, load_config_for, run
from runtime.evals import (
    CaseResult,
    EvalOptions,
    EvalRun,
    EvalSet,
    load_eval_set,
    run_eval_set,
    store_eval_run,
    stored_eval_runs,
)
from runtime.jobs import Jobs
from studio.keys import bindings
from studio.messages import forward_worker_failure
from studio.screens.history import format_time
from studio.widgets.eval_table import EvalTable
from studio.widgets.footer import StudioFooter

NO_SETS = (
    "No eval set in this folder yet. An eval set is a TOML file of cases (a query for the team) "
    "and checks (files it must write, text its result must hold, a command that must pass): "
    "create-expert writes one as evals.toml for the team it builds, or write your own "
    "(docs/evals.md), then press r here or run perstack eval evals.toml."
)


def eval_set_files(folder: Path) -> list[Path]:
    """The eval sets beside perstack.toml, by name."""
    found = {folder / "evals.toml", *folder.glob("*.evals.toml"), *folder.glob("evals/*.toml")}
    return sorted(path for path in found if path.is_file())


def scores_since(folder: Path, since_ms: int) -> list[EvalRun]:
    """The latest run of each eval set of ``folder`` that ran since ``since_ms`` (by set name)."""
    root = Jobs.for_workspace(folder).root
    found = []
    for path in eval_set_files(folder):
        try:
            name = load_eval_set(path).name
        except PerstackError:
            continue
        runs = [run for run in stored_eval_runs(root, name) if run.started_at >= since_ms]
        if runs:
            found.append(runs[-1])
    return found


class EvalsScreen(Screen[None]):
    """Scores of the folder's eval sets; run one; open a case's job."""

    CSS_PATH = "evals.tcss"
    BINDINGS: ClassVar[list[BindingType]] = bindings(
        "evals-run", "evals-older", "evals-newer", "evals-next-set", "evals-back"
    )

    def __init__(
        self,
        folder: Path,
        *,
        config_path: Path | None = None,
        now: Callable[[], datetime],
        language_model: LanguageModel | None = None,
    ) -> None:
        """Show the eval sets of ``folder`` (perstack.toml's).

        Args:
            folder: Where perstack.toml and the eval sets are.
            config_path: perstack.toml (default: found from the eval set's folder).
            now: The clock (times of runs; snapshots fix it).
            language_model: A model to use instead of the provider's (the demo, tests).
        """
        super().__init__()
        self.folder = folder
        self.config_path = config_path
        self.now = now
        self.language_model = language_model
        self.sets = eval_set_files(folder)
        self.set_index = 0
        self.eval_set: EvalSet | None = None
        self.runs: list[EvalRun] = []
        self.compared_back = 1
        """Which earlier run the latest is compared with: 1 the one before it, 2 the one before
        that..."""
        self.running = False

    @property
    def storage_root(self) -> Path:
        """Where jobs and eval results are stored."""
        return Jobs.for_workspace(self.folder).root

    @property
    def table(self) -> EvalTable:
        """The results grid."""
        return self.query_one("#evals-table", EvalTable)

    @property
    def latest(self) -> EvalRun | None:
        """The run shown."""
        return self.runs[-1] if self.runs else None

    @property
    def previous(self) -> EvalRun | None:
        """The earlier run it is compared with."""
        index = len(self.runs) - 1 - self.compared_back
        return self.runs[index] if 0 <= index < len(self.runs) - 1 else None

    def compose(self) -> ComposeResult:
        with Vertical(id="evals-body"):
            yield Static("Evals", id="evals-title")
            yield Static("", id="evals-summary")
            yield EvalTable(id="evals-table")
            yield Static("", id="evals-detail")
        yield StudioFooter()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        forward_worker_failure(self, event)

    def on_mount(self) -> None:
        self._load_set()

    # showing -----------------------------------------------------------------------------------

    def _load_set(self) -> None:
        self.eval_set, self.runs, self.compared_back = None, [], 1
        if not self.sets:
            self._title("Evals · no eval set")
            self._summary(NO_SETS)
            self.table.display = False
            return
        path = self.sets[self.set_index]
        others = f" · Tab: next of {len(self.sets)} sets" if len(self.sets) > 1 else ""
        try:
            self.eval_set = load_eval_set(path)
        except PerstackError as error:
            self._title(f"Evals · {path.name}{others}")
            self._summary(f"This eval set has problems; fix them and press r:\n{error.message}")
            self.table.display = False
            return
        self._title(
            f"Evals · {self.eval_set.name} ({path.name}, {len(self.eval_set.cases)} cases){others}"
        )
        self.runs = stored_eval_runs(self.storage_root, self.eval_set.name)
        self._show()

    def _show(self) -> None:
        latest = self.latest
        if latest is None:
            self.table.display = False
            self._summary("Not run yet: press r to run every case on the team in perstack.toml.")
            return
        self.table.display = True
        previous = self.previous
        self.table.show(latest, previous)
        compared = (
            f" · compared with the run of {format_time(previous.started_at, self.now)} "
            f"({previous.passed}/{len(previous.cases)}; [ older, ] newer)"
            if previous is not None
            else " · no earlier run to compare with"
        )
        self._summary(
            f"{latest.passed}/{len(latest.cases)} cases passed · run of "
            f"{format_time(latest.started_at, self.now)}, {latest.duration_ms / 1000:.1f} s"
            f"{compared}"
        )
        self.table.focus()
        self._detail(self.table.highlighted_case(latest))

    def _title(self, text: str) -> None:
        self.query_one("#evals-title", Static).update(text)

    def _summary(self, text: str) -> None:
        self.query_one("#evals-summary", Static).update(text)

    def _detail(self, case: CaseResult | None) -> None:
        lines: list[str] = []
        if case is not None:
            lines.append(f"{case.name}: {case.status}, job {case.job_id or '-'} (Enter opens it)")
            lines += [
                f"  ✗ {check.label}: {check.detail}" for check in case.checks if not check.passed
            ]
            if case.error:
                lines.append(f"  {case.error}")
        self.query_one("#evals-detail", Static).update("\n".join(lines))

    @on(DataTable.RowHighlighted, "#evals-table")
    def _highlighted(self) -> None:
        self._detail(self.table.highlighted_case(self.latest))

    # actions -----------------------------------------------------------------------------------

    def action_back(self) -> None:
        """Close the view."""
        if self.running:
            self.notify("The eval set is still running; it stops if you leave.", severity="warning")
        self.dismiss(None)

    def action_older(self) -> None:
        """Compare with an older run."""
        if len(self.runs) - 1 - (self.compared_back + 1) >= 0:
            self.compared_back += 1
            self._show()

    def action_newer(self) -> None:
        """Compare with a more recent earlier run."""
        if self.compared_back > 1:
            self.compared_back -= 1
            self._show()

    def action_next_set(self) -> None:
        """Show the folder's next eval set."""
        if len(self.sets) > 1 and not self.running:
            self.set_index = (self.set_index + 1) % len(self.sets)
            self._load_set()

    def action_run_evals(self) -> None:
        """Run the eval set (reloaded from disk) on the team in perstack.toml."""
        if self.running:
            self.notify("The eval set is already running.")
            return
        if not self.sets:
            self.notify(
                "There is no eval set to run here (see the text above).", severity="warning"
            )
            return
        self._run_set(self.sets[self.set_index])

    @work(exclusive=True, group="evals", exit_on_error=False)
    async def _run_set(self, path: Path) -> None:
        self.running = True
        try:
            eval_set = load_eval_set(path)
            first = eval_set.expert_of(eval_set.cases[0])
            config = str(self.config_path) if self.config_path else None
            loaded = load_config_for(first, config, self.folder)
            total = len(eval_set.cases)
            self._summary(f"Running {total} cases…")
            passed = failed = 0

            def progress(case: CaseResult, done: int, _total: int) -> None:
                nonlocal passed, failed
                passed += case.passed
                failed += not case.passed
                self._summary(
                    f"Running: {done}/{total} cases done · {passed} passed · {failed} failed"
                )

            runner = partial(run, model=self.language_model)
            options = EvalOptions(storage_root=self.storage_root)
            result = await run_eval_set(eval_set, loaded, options, runner, progress)
            store_eval_run(self.storage_root, result)
        except PerstackError as error:
            self._summary(f"The eval set could not run: {error.message}")
            self.notify(error.message, title=error.title, severity="error")
            return
        finally:
            self.running = False
        self.notify(f"{result.passed}/{len(result.cases)} cases passed.", title="Evals")
        self._load_set()

    @on(DataTable.RowSelected, "#evals-table")
    async def _open_case(self, event: DataTable.RowSelected) -> None:
        case = self.latest.case(str(event.row_key.value)) if self.latest else None
        if case is None or case.job_id is None:
            self.notify("This case has no job to open (its run did not start).")
            return
        from studio.run_controller import RunOptions
        from studio.screens.history import stored_events
        from studio.screens.run import RunScreen

        options = RunOptions(
            workspace=self.folder,
            expert_key=case.expert,
            config_path=str(self.config_path) if self.config_path else None,
            language_model=self.language_model,
        )
        screen = RunScreen(options, now=self.now)
        await self.app.push_screen(screen)
        screen.load_job(case.job_id, stored_events(self.folder, case.job_id))
