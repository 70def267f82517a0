"""Steps 4 and 5 of the "New team" wizard: create-expert's run, then how perstack.toml changed.

:class:`WizardRunScreen` is the run screen on the built-in ``create-expert`` expert: the live step
tree shows create-expert's own steps and the nested runs of the team it tests. When the run ends,
:class:`TeamDiffScreen` shows how perstack.toml changed since the wizard started the run, to
accept or roll back (the text from before is kept in memory and written back byte for byte).
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Static

from runtime.evals import EvalRun
from studio.keys import bindings
from studio.run_controller import RunOptions
from studio.run_messages import RunCancelled, RunFailed, RunFinished
from studio.screens.evals import scores_since
from studio.screens.run import RunScreen
from studio.widgets.footer import StudioFooter

Outcome = Literal["accepted", "rolled-back"]
"""How the wizard ended: the new perstack.toml kept, or the previous text restored."""

STEP_TITLES = ("Describe", "Model", "Review", "Run", "Changes")


def read_text(path: Path) -> str | None:
    """The file's exact text (no newline translation), or ``None`` when it does not exist."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None


def _expert_tables(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        experts = tomllib.loads(text).get("experts", {})
    except tomllib.TOMLDecodeError:
        return {}
    return experts if isinstance(experts, dict) else {}


def expert_changes(before: str | None, after: str | None) -> tuple[list[str], list[str], list[str]]:
    """Experts added, changed and removed between two perstack.toml texts."""
    old, new = _expert_tables(before), _expert_tables(after)
    added = [key for key in new if key not in old]
    changed = [key for key in new if key in old and new[key] != old[key]]
    removed = [key for key in old if key not in new]
    return added, changed, removed


def coloured_diff(diff: str) -> Text:
    """A unified diff with added lines green, removed lines red and hunk headers cyan."""
    text = Text()
    for line in diff.splitlines(keepends=True):
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        else:
            style = ""
        text.append(line, style=style)
    return text


def step_bar(current: int) -> Text:
    """``1 Describe › 2 Model › …`` with the current step highlighted."""
    text = Text()
    for index, title in enumerate(STEP_TITLES):
        if index:
            text.append("  ›  ", style="dim")
        style = "bold reverse" if index == current else ("" if index < current else "dim")
        text.append(f" {index + 1} {title} ", style=style)
    return text


class WizardRunScreen(RunScreen):
    """Step 4: the run screen on create-expert; when the run ends, the changes open (step 5)."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("wizard-review-changes")

    def __init__(
        self,
        options: RunOptions,
        *,
        config_path: Path,
        before: str | None,
        query: str,
        now: Callable[[], datetime] | None = None,
        model_label: str | None = None,
    ) -> None:
        """Build the screen.

        Args:
            options: create-expert's run options.
            config_path: The perstack.toml create-expert writes.
            before: Its text before the run (``None``: it did not exist).
            query: The query to run at once.
            now: The clock.
            model_label: The model shown before the run reports it.
        """
        super().__init__(options, query=query, now=now, model_label=model_label)
        self.config_path = config_path
        self.before = before
        self.outcome: Outcome | None = None
        self.opened_ms = int(time.time() * 1000)
        """When create-expert started: eval runs since then are its scores."""

    @on(RunFinished)
    @on(RunFailed)
    @on(RunCancelled)
    def _run_ended(self) -> None:
        # The decision waits until the user has seen the outcome; no dialog over a dialog.
        if not isinstance(self.app.screen, TeamDiffScreen):
            self.action_review_changes()

    def action_review_changes(self) -> None:
        """Open the diff of perstack.toml since the wizard started (once the run has ended)."""
        if self.controller.running:
            self.notify("create-expert is still working; Esc cancels it.", severity="warning")
            return
        after = read_text(self.config_path)
        roots = [self.job.runs[root] for root in self.job.roots]
        report = roots[-1].result if roots else ""
        self.app.push_screen(
            TeamDiffScreen(
                self.config_path,
                self.before,
                after,
                report=report,
                scores=scores_since(self.config_path.parent, self.opened_ms),
            ),
            self._decided,
        )

    def action_cancel_run(self) -> None:
        """Cancel create-expert; once it has ended, review the changes instead of leaving."""
        if self.controller.cancel():
            return
        self.action_review_changes()

    def _decided(self, decision: Outcome | None) -> None:
        if decision is None:
            return
        if decision == "rolled-back":
            self.roll_back()
        self.outcome = decision
        # RunScreen is a Screen[None]; the wizard's callback receives the decision.
        self.dismiss(decision)  # type: ignore[arg-type]

    def roll_back(self) -> None:
        """Write back perstack.toml as it was before the run (remove it if there was none)."""
        from runtime.config import save_config

        if self.before is None:
            self.config_path.unlink(missing_ok=True)
        else:
            save_config(self.config_path, self.before)
        self.notify(f"Rolled back {self.config_path.name}.", title="New team")


class TeamDiffScreen(Screen[Outcome | None]):
    """Step 5: how perstack.toml changed; Accept keeps it, Roll back restores the previous text.

    Dismissed with the decision, or ``None`` to go back to the run (decide later with F6).
    """

    CSS_PATH = "wizard.tcss"
    AUTO_FOCUS = "#diff-accept"
    BINDINGS: ClassVar[list[BindingType]] = bindings(
        "wizard-accept", "wizard-roll-back", "wizard-back-to-run"
    )

    def __init__(
        self,
        config_path: Path,
        before: str | None,
        after: str | None,
        *,
        report: str = "",
        scores: Sequence[EvalRun] = (),
    ) -> None:
        """Build the screen.

        Args:
            config_path: The perstack.toml.
            before: Its text before the run (``None``: it did not exist).
            after: Its text now (``None``: it does not exist).
            report: create-expert's final answer (what it built and how it tested it), shown
                here so the decision does not wait for a trip back to the run.
            scores: The eval runs create-expert made of the team (runEvalSet), latest per set.
        """
        from runtime.config import unified_diff

        super().__init__()
        self.config_path = config_path
        self.before = before
        self.after = after
        self.report = report.strip()
        self.scores = list(scores)
        self.diff = unified_diff(before or "", after or "", label=config_path.name)

    def compose(self) -> ComposeResult:
        yield Static(step_bar(4), id="wizard-steps")
        with Vertical(id="diff-body"):
            yield Static(self._summary(), id="diff-summary", markup=False)
            if self.report:
                with VerticalScroll(id="diff-report"):
                    yield Static(self.report, id="diff-report-text", markup=False)
            with VerticalScroll(id="diff-scroll"):
                yield Static(
                    coloured_diff(self.diff) if self.diff else "No changes.",
                    id="diff-text",
                    markup=False,
                )
        with Horizontal(id="wizard-buttons"):
            yield Button("Back to run", id="diff-back")
            yield Button("Roll back", id="diff-roll-back", variant="error", disabled=not self.diff)
            yield Button("Accept", id="diff-accept", variant="success")
        yield StudioFooter()

    def on_mount(self) -> None:
        self.query_one("#diff-scroll").border_title = f"{self.config_path.name} · diff"
        if self.report:
            self.query_one("#diff-report").border_title = "create-expert's report"

    def _summary(self) -> Text:
        if not self.diff:
            return Text(f"create-expert left {self.config_path.name} unchanged.")
        added, changed, removed = expert_changes(self.before, self.after)
        text = Text()
        text.append(f"create-expert changed {self.config_path.name}.", style="bold")
        for label, keys, style in (
            ("New experts", added, "green"),
            ("Changed", changed, "yellow"),
            ("Removed", removed, "red"),
        ):
            if keys:
                text.append(f"\n{label}: ", style="bold")
                text.append(", ".join(keys), style=style)
        for run in self.scores:
            style = "green" if run.failed == 0 else "yellow"
            text.append("\nEval score: ", style="bold")
            text.append(f"{run.passed}/{len(run.cases)} cases of {run.name} passed", style=style)
            failing = [case.name for case in run.cases if not case.passed]
            if failing:
                text.append(f" (failing: {', '.join(failing)})")
            text.append(" · F7 in the editor lists every case", style="dim")
        text.append(
            "\nAccept keeps the file; Roll back restores it as it was before the wizard ran.",
            style="dim",
        )
        return text

    def action_accept(self) -> None:
        """Keep the new perstack.toml."""
        self.dismiss("accepted")

    def action_roll_back(self) -> None:
        """Restore the previous perstack.toml."""
        if self.diff:
            self.dismiss("rolled-back")

    def action_back_to_run(self) -> None:
        """Return to the run screen without deciding."""
        self.dismiss(None)

    @on(Button.Pressed, "#diff-accept")
    def _accept_pressed(self) -> None:
        self.action_accept()

    @on(Button.Pressed, "#diff-roll-back")
    def _roll_back_pressed(self) -> None:
        self.action_roll_back()

    @on(Button.Pressed, "#diff-back")
    def _back_pressed(self) -> None:
        self.action_back_to_run()
