"""The results grid of an eval run: one row per case, beside an earlier run's outcome."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from runtime.evals import CaseResult, EvalRun

COLUMNS = ("Case", "Result", "Checks", "Before", "Steps", "Tokens", "Cost", "Time")


def _verdict(passed: bool) -> Text:
    return Text("PASS", style="bold green") if passed else Text("FAIL", style="bold red")


def _before(case: CaseResult, previous: EvalRun | None) -> Text:
    if previous is None:
        return Text("")
    old = previous.case(case.name)
    if old is None:
        return Text("new", style="dim")
    if old.passed == case.passed:
        return Text("PASS" if old.passed else "FAIL", style="dim")
    # A changed outcome is what the comparison is for: said in words, not only in colour.
    if old.passed:
        return Text("PASS ▼ regressed", style="bold red")
    return Text("FAIL ▲ fixed", style="bold green")


class EvalTable(DataTable[Text | str]):
    """Cases of one eval run; Enter on a row posts ``RowSelected`` with the case's name as key."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns(*COLUMNS)

    def show(self, run: EvalRun, previous: EvalRun | None) -> None:
        """Show ``run``'s cases (file order), with ``previous``'s outcome beside each."""
        self.clear()
        for case in run.cases:
            marks = Text()
            for check in case.checks:
                marks.append("✓" if check.passed else "✗", "green" if check.passed else "red")
            cost = case.usage.cost_usd
            self.add_row(
                case.name,
                _verdict(case.passed),
                marks if case.checks else Text("-", style="dim"),
                _before(case, previous),
                str(case.steps),
                f"{case.usage.total_tokens:,}",
                f"${cost:.4f}" if cost is not None else "n/a",
                f"{case.duration_ms / 1000:.1f} s",
                key=case.name,
            )

    def highlighted_case(self, run: EvalRun | None) -> CaseResult | None:
        """The case under the cursor."""
        if run is None or not run.cases or self.cursor_row >= len(run.cases):
            return None
        return run.cases[self.cursor_row]
