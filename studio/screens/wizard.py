"""The "New team" wizard: describe a team, pick a model, review, run create-expert, keep or undo.

Steps 1 to 3 live in :class:`WizardScreen` (one step shown at a time). Confirming pushes
:class:`~studio.screens.wizard_run.WizardRunScreen`, the run screen on the built-in
``create-expert`` expert; when the run ends, :class:`~studio.screens.wizard_run.TeamDiffScreen`
shows how perstack.toml changed, to accept or roll back (steps 4 and 5, in
:mod:`studio.screens.wizard_run`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    Button,
    ContentSwitcher,
    Input,
    Label,
    OptionList,
    Static,
    TextArea,
)
from textual.widgets.option_list import Option

from runtime import PROVIDER_DEFAULT_MODELS, provider_key_names, provider_key_status
from studio.keys import bindings
from studio.run_controller import RunOptions
from studio.screens import settle_cursors
from studio.screens.wizard_run import Outcome, WizardRunScreen, read_text, step_bar
from studio.widgets.footer import StudioFooter

if TYPE_CHECKING:
    from runtime import LanguageModel

CREATE_EXPERT = "create-expert"
"""The built-in expert the wizard runs."""

STEPS = ("describe", "model", "review")


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
    from runtime.config import load_env

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


class WizardScreen(Screen[Outcome | None]):
    """Steps 1 to 3 of the wizard; dismissed with how the wizard ended (``None``: cancelled)."""

    CSS_PATH = "wizard.tcss"
    AUTO_FOCUS = "#wizard-description"
    BINDINGS: ClassVar[list[BindingType]] = bindings("wizard-next", "wizard-back")

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
        yield Static(step_bar(0), id="wizard-steps")
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
        yield StudioFooter()

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
        self.query_one("#wizard-steps", Static).update(step_bar(step))
        self._error("")
        self.query_one("#wizard-back-button").display = step > 0
        next_button = self.query_one("#wizard-next-button", Button)
        next_button.label = "Start create-expert" if step == 2 else "Next"
        if step == 0:
            self.query_one("#wizard-name").focus()  # the first field, as Tab order has it
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
        from runtime.config import EXPERT_NAME_RE

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
