"""The "New team" wizard: describe a team, pick a model, review, run create-expert, keep or undo.

Steps 1 to 3 live in :class:`WizardScreen` (one step shown at a time). Confirming pushes
:class:`WizardRunScreen`, the run screen on the built-in ``create-expert`` expert: the live step
tree shows create-expert's own steps and the nested runs of the team it tests. When the run ends,
:class:`TeamDiffScreen` shows how perstack.toml changed since the wizard started the run, to
accept or roll back (the text from before is kept in memory and written back byte for byte).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    Button,
    ContentSwitcher,
    Footer,
    Input,
    Label,
    OptionList,
    Static,
    TextArea,
)
from textual.widgets.option_list import Option

from runtime import PROVIDER_DEFAULT_MODELS, provider_key_names, provider_key_status
from studio.run_controller import RunOptions
from studio.run_messages import RunCancelled, RunFailed, RunFinished
from studio.screens import settle_cursors
from studio.screens.run import RunScreen

if TYPE_CHECKING:
    from runtime import LanguageModel

CREATE_EXPERT = "create-expert"
"""The built-in expert the wizard runs."""

Outcome = Literal["accepted", "rolled-back"]
"""How the wizard ended: the new perstack.toml kept, or the previous text restored."""

STEPS = ("describe", "model", "review")
STEP_TITLES = ("Describe", "Model", "Review", "Run", "Changes")


@dataclass(frozen=True)
class ProviderChoice:
    """A provider Perstack runs on, the variables its key is read from, and a default model."""

    name: str
    key_envs: tuple[str, ...]
    """Every variable the runtime accepts the key from, preferred first."""
    default_model: str

    @property
    def key_env(self) -> str:
        """The preferred key variable: the one to name when none is set."""
        return self.key_envs[0]


# The runtime owns which providers need only a key, their default models and the variables it
# reads keys from: the wizard's ✓ must agree with what a run will find.
PROVIDERS: tuple[ProviderChoice, ...] = tuple(
    ProviderChoice(name, provider_key_names(name), model)
    for name, model in PROVIDER_DEFAULT_MODELS.items()
)
"""The providers the wizard offers, in display order."""


@dataclass(frozen=True)
class FoundKey:
    """A provider key that is set: the variable that holds it and where it was found."""

    env: str
    where: str
    """``"environment"``, ``".env"`` or ``".env.local"``."""


def detect_keys(workspace: Path, environ: Mapping[str, str] | None = None) -> dict[str, FoundKey]:
    """Which providers have a key, and where it was found.

    Args:
        workspace: Where ``.env`` and ``.env.local`` are read from.
        environ: The process environment (default ``os.environ``).

    Returns:
        Provider name to the key found, for present keys only.
    """
    from runtime.config.env import load_env

    source = os.environ if environ is None else environ
    found: dict[str, FoundKey] = {}
    places: dict[str, Mapping[str, str]] = {"environment": source}
    for name in (".env", ".env.local"):
        places[name] = load_env([name], workspace, environ={})
    for provider in PROVIDERS:
        for where, values in places.items():
            env = provider_key_status(provider.name, values).found
            if env:
                found[provider.name] = FoundKey(env, where)
                break
    return found


def team_query(description: str, name: str = "") -> str:
    """The query the wizard sends to create-expert."""
    named = f" named {name}" if name else ""
    return f"Form a team{named} that does the following.\n\n{description.strip()}"


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


def _step_bar(current: int) -> Text:
    """``1 Describe › 2 Model › …`` with the current step highlighted."""
    text = Text()
    for index, title in enumerate(STEP_TITLES):
        if index:
            text.append("  ›  ", style="dim")
        style = "bold reverse" if index == current else ("" if index < current else "dim")
        text.append(f" {index + 1} {title} ", style=style)
    return text


class WizardScreen(Screen[Outcome | None]):
    """Steps 1 to 3 of the wizard; dismissed with how the wizard ended (``None``: cancelled)."""

    CSS_PATH = "wizard.tcss"
    AUTO_FOCUS = "#wizard-description"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+s",
            "next",
            "Next",
            tooltip="Go to the next step (on the review step: start create-expert).",
            id="wizard-next",
        ),
        Binding(
            "escape",
            "back",
            "Back",
            tooltip="Go back one step (on the first step: close the wizard).",
            id="wizard-back",
        ),
    ]

    def __init__(
        self,
        config_path: Path,
        *,
        language_model: LanguageModel | None = None,
        environ: Mapping[str, str] | None = None,
        now: Callable[[], datetime] | None = None,
        job_id: str | None = None,
        extra: dict[str, Any] | None = None,
        cwd: Path | None = None,
    ) -> None:
        """Build the wizard.

        Args:
            config_path: The perstack.toml create-expert writes (its folder is the workspace).
            language_model: A model to run create-expert on instead of the provider's (tests).
            environ: The process environment for key detection (default ``os.environ``).
            now: The clock for the run screen (snapshots fix it).
            job_id: The id of create-expert's job (snapshots fix it).
            extra: More ``RunSetting`` fields (max_steps, ...).
            cwd: The working directory (the workspace is shown relative to it).
        """
        super().__init__()
        self.cwd = (cwd or Path.cwd()).absolute()
        self.config_path = config_path.absolute()
        self.workspace = self.config_path.parent
        self.language_model = language_model
        self.environ = environ
        self.now = now
        self.job_id = job_id
        self.extra = dict(extra or {})
        self.step = 0
        self.keys: dict[str, FoundKey] = {}
        self.provider = PROVIDERS[0]
        self.before: str | None = None
        """perstack.toml as it was when the run started (``None``: there was none)."""
        self.run_screen: WizardRunScreen | None = None

    # layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(_step_bar(0), id="wizard-steps")
        with ContentSwitcher(initial="describe", id="wizard-body"):
            with Vertical(id="describe", classes="wizard-step"):
                yield Static("New team", classes="wizard-title", markup=False)
                yield Static(
                    "Describe what the team should do. create-expert writes a coordinator and "
                    "specialists into perstack.toml, tests them on realistic queries and fixes "
                    "them until they work.",
                    classes="wizard-help",
                    markup=False,
                )
                yield Label("Team name (optional: lowercase letters, digits, '-' and '_')")
                yield Input(placeholder="ai-gaming", id="wizard-name")
                yield Label("What should the team do?")
                yield TextArea(id="wizard-description", soft_wrap=True, show_line_numbers=False)
            with Vertical(id="model", classes="wizard-step"):
                yield Static("Provider and model", classes="wizard-title", markup=False)
                yield Static(
                    "✓ marks the providers whose API key is set in the environment or in the "
                    "workspace's .env / .env.local.",
                    classes="wizard-help",
                    markup=False,
                )
                yield OptionList(id="wizard-providers")
                yield Label("Model")
                yield Input(id="wizard-model")
            with Vertical(id="review", classes="wizard-step"):
                yield Static("Review and start", classes="wizard-title", markup=False)
                with VerticalScroll(id="wizard-review-scroll"):
                    yield Static("", id="wizard-review", markup=False)
        yield Static("", id="wizard-error", markup=False)
        with Horizontal(id="wizard-buttons"):
            yield Button("Cancel", id="wizard-cancel")
            yield Button("Back", id="wizard-back-button")
            yield Button("Next", id="wizard-next-button", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        settle_cursors(self)
        self.keys = detect_keys(self.workspace, self.environ)
        present = [p for p in PROVIDERS if p.name in self.keys]
        self.provider = present[0] if present else PROVIDERS[0]
        options = self.query_one("#wizard-providers", OptionList)
        options.add_options([Option(self._provider_label(p), id=p.name) for p in PROVIDERS])
        options.highlighted = PROVIDERS.index(self.provider)
        self.query_one("#wizard-model", Input).value = self.provider.default_model
        self._show_step(0)

    def _provider_label(self, provider: ProviderChoice) -> Text:
        found = self.keys.get(provider.name)
        text = Text()
        if found:
            text.append("✓ ", style="bold green")
        else:
            text.append("  ")
        text.append(f"{provider.name:<10}", style="bold")
        text.append(f" {found.env if found else provider.key_env:<30}")
        if found:
            text.append(f" set in {found.where}", style="green")
        else:
            text.append(" not set", style="dim")
        return text

    # navigation ------------------------------------------------------------------------------

    def _show_step(self, step: int) -> None:
        self.step = step
        self.query_one("#wizard-body", ContentSwitcher).current = STEPS[step]
        self.query_one("#wizard-steps", Static).update(_step_bar(step))
        self._error("")
        self.query_one("#wizard-back-button").display = step > 0
        next_button = self.query_one("#wizard-next-button", Button)
        next_button.label = "Start create-expert" if step == 2 else "Next"
        if step == 0:
            self.query_one("#wizard-description").focus()
        elif step == 1:
            self.query_one("#wizard-providers").focus()
        else:
            self.query_one("#wizard-review", Static).update(self._review())
            next_button.focus()

    def _error(self, message: str) -> None:
        panel = self.query_one("#wizard-error", Static)
        panel.update(message)
        panel.display = bool(message)

    @property
    def team_name(self) -> str:
        """The optional team name."""
        return self.query_one("#wizard-name", Input).value.strip()

    @property
    def description(self) -> str:
        """What the team should do."""
        return self.query_one("#wizard-description", TextArea).text.strip()

    @property
    def model(self) -> str:
        """The model create-expert runs on."""
        return self.query_one("#wizard-model", Input).value.strip()

    @property
    def query_text(self) -> str:
        """The query create-expert receives."""
        return team_query(self.description, self.team_name)

    def _valid(self) -> str:
        """What keeps the current step from moving on (empty when nothing)."""
        from runtime.config.schema import EXPERT_NAME_RE

        if self.step == 0:
            if not self.description:
                return "Describe what the team should do first."
            name = self.team_name
            if name and (not EXPERT_NAME_RE.match(name) or name.startswith("@")):
                return (
                    f"{name!r} is not a valid team name: use lowercase letters, digits, '-', '_'."
                )
        if self.step == 1 and not self.model:
            return "Enter a model."
        return ""

    def action_next(self) -> None:
        """Move to the next step, or start create-expert on the review step."""
        problem = self._valid()
        if problem:
            self._error(problem)
            return
        if self.step < 2:
            self._show_step(self.step + 1)
        else:
            self.start()

    def action_back(self) -> None:
        """Go back a step, or close the wizard from the first."""
        if self.step > 0:
            self._show_step(self.step - 1)
        else:
            self.dismiss(None)

    @on(Button.Pressed, "#wizard-next-button")
    def _next_pressed(self) -> None:
        self.action_next()

    @on(Button.Pressed, "#wizard-back-button")
    def _back_pressed(self) -> None:
        self.action_back()

    @on(Button.Pressed, "#wizard-cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    @on(OptionList.OptionHighlighted, "#wizard-providers")
    def _provider_chosen(self, event: OptionList.OptionHighlighted) -> None:
        chosen = next(p for p in PROVIDERS if p.name == event.option.id)
        if chosen == self.provider:
            return
        model = self.query_one("#wizard-model", Input)
        # Keep a model the user typed; replace only the previous provider's default.
        if not model.value.strip() or model.value.strip() == self.provider.default_model:
            model.value = chosen.default_model
        self.provider = chosen

    @on(OptionList.OptionSelected, "#wizard-providers")
    def _provider_selected(self) -> None:
        self.query_one("#wizard-model").focus()

    @on(Input.Submitted, "#wizard-model")
    def _model_submitted(self) -> None:
        self.action_next()

    # review and run --------------------------------------------------------------------------

    def _review(self) -> Text:
        exists = self.config_path.exists()
        key = self.keys.get(self.provider.name)
        text = Text()
        text.append("Query sent to create-expert\n", style="bold")
        for line in self.query_text.splitlines():
            text.append(f"  │ {line}\n")
        text.append("\nProvider   ", style="bold")
        text.append(self.provider.name)
        if key:
            text.append(f"  ✓ {key.env} set in {key.where}\n", style="green")
        elif self.language_model is not None:
            text.append("  (a model supplied by the caller: no key needed)\n", style="dim")
        else:
            names = " or ".join(self.provider.key_envs)
            text.append(f"  ✗ {names} is not set: the run will fail\n", "red")
        text.append("Model      ", style="bold")
        text.append(f"{self.model}\n")
        text.append("Workspace  ", style="bold")
        text.append(f"{self._workspace_label()}\n\n")
        if exists:
            text.append(
                f"{self.config_path.name} will be merged into, not replaced; create-expert "
                f"backs it up to {self.config_path.name}.bak first, and at the end you can "
                "accept the changes or roll them back.",
                style="dim",
            )
        else:
            text.append(
                f"{self.config_path.name} does not exist yet: create-expert creates it. At the "
                "end you can keep it or roll back (remove it).",
                style="dim",
            )
        return text

    def _workspace_label(self) -> str:
        from studio.session import display_path

        shown = display_path(self.workspace, self.cwd)
        return "the current directory" if shown == "." else shown

    def start(self) -> None:
        """Remember perstack.toml, then run create-expert on the run screen."""
        self.before = read_text(self.config_path)
        options = RunOptions(
            workspace=self.workspace,
            expert_key=CREATE_EXPERT,
            provider=self.provider.name,
            model=self.model,
            language_model=self.language_model,
            job_id=self.job_id,
            extra=dict(self.extra),
        )
        self.run_screen = WizardRunScreen(
            options,
            config_path=self.config_path,
            before=self.before,
            query=self.query_text,
            now=self.now,
            model_label=self.model,
        )
        self.app.push_screen(self.run_screen, self._ended)

    def _ended(self, outcome: Outcome | None) -> None:
        self.run_screen = None
        if outcome is None:
            self._show_step(2)
            return
        self.dismiss(outcome)


class WizardRunScreen(RunScreen):
    """Step 4: the run screen on create-expert; when the run ends, the changes open (step 5)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "f6",
            "review_changes",
            "Changes",
            tooltip="Show how perstack.toml changed, to accept or roll back.",
            id="wizard-review-changes",
        ),
    ]

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
        self.app.push_screen(TeamDiffScreen(self.config_path, self.before, after), self._decided)

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
        from runtime.config.authoring import save_config

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
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "a",
            "accept",
            "Accept",
            tooltip="Keep the new perstack.toml.",
            id="wizard-accept",
        ),
        Binding(
            "r",
            "roll_back",
            "Roll back",
            tooltip="Restore perstack.toml as it was before create-expert ran.",
            id="wizard-roll-back",
        ),
        Binding(
            "escape",
            "back_to_run",
            "Back to run",
            tooltip="Look at the run's step tree again; F6 there brings this back.",
            id="wizard-back-to-run",
        ),
    ]

    def __init__(self, config_path: Path, before: str | None, after: str | None) -> None:
        """Build the screen.

        Args:
            config_path: The perstack.toml.
            before: Its text before the run (``None``: it did not exist).
            after: Its text now (``None``: it does not exist).
        """
        from runtime.config.authoring import unified_diff

        super().__init__()
        self.config_path = config_path
        self.before = before
        self.after = after
        self.diff = unified_diff(before or "", after or "", label=config_path.name)

    def compose(self) -> ComposeResult:
        yield Static(_step_bar(4), id="wizard-steps")
        with Vertical(id="diff-body"):
            yield Static(self._summary(), id="diff-summary", markup=False)
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
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#diff-scroll").border_title = f"{self.config_path.name} · diff"

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
