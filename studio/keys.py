"""Every key binding of the studio, in one registry.

Each binding has a stable kebab-case id (users remap keys by id with a :class:`Keymap`, which the
app hands to Textual), a description for the footer, a tooltip, and a group for the help screen.
Widgets and screens build their ``BINDINGS`` from here with :func:`bindings`, so the help screen
lists exactly what is bound, with the keys in effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.binding import Binding, BindingType

if TYPE_CHECKING:
    from textual.app import App


@dataclass(frozen=True)
class KeySpec:
    """One bindable action."""

    id: str
    """Stable id, used by keymaps (e.g. ``{"save-file": "ctrl+w"}``)."""
    key: str
    """Default key(s), comma-separated as in Textual."""
    action: str
    """The Textual action the key runs, relative to the widget or screen that binds it."""
    description: str
    """Short label for the footer."""
    tooltip: str
    """One sentence for the footer tooltip and the help screen."""
    group: str
    """Section of the help screen."""
    show: bool = True
    """Shown in the footer."""
    priority: bool = False
    """Checked before the focused widget sees the key (quit and help only)."""
    key_display: str | None = None
    """How to show the key, when Textual's default reads poorly."""
    wide_only: bool = False
    """Left out of the footer on a narrow terminal (under 100 columns), so the essentials fit."""


GROUPS = ("File", "Team", "Tree", "Editor", "Dialogs", "Run", "Evals", "New team", "App")
"""Help-screen sections, in order."""

KEYS: tuple[KeySpec, ...] = (
    # File ------------------------------------------------------------------------------------
    KeySpec(
        "save-file",
        "ctrl+s",
        "save",
        "Save",
        "Write perstack.toml to disk (atomically), even when it has problems.",
        "File",
    ),
    KeySpec(
        "reload-file",
        "ctrl+r",
        "reload",
        "Reload",
        "Read perstack.toml from disk again; asks first when you have unsaved edits.",
        "File",
        show=False,
    ),
    # Team ------------------------------------------------------------------------------------
    KeySpec(
        "new-expert",
        "ctrl+n",
        "new_expert",
        "New expert",
        "Add an expert with a form (key, description, instruction, delegates).",
        "Team",
        wide_only=True,
    ),
    KeySpec(
        "edit-model",
        "ctrl+o",
        "edit_model",
        "Model",
        "Set the model every expert of the file runs on.",
        "Team",
        wide_only=True,
    ),
    KeySpec(
        "next-problem",
        "ctrl+g",
        "next_problem",
        "Next problem",
        "Move the editor to the next problem the diagnostics panel lists.",
        "Team",
        show=False,
    ),
    # Tree (active when the team tree has focus) ------------------------------------------------
    KeySpec(
        "tree-edit",
        "e",
        "edit_item",
        "Edit",
        "Edit the selected expert or skill (Enter does the same).",
        "Tree",
    ),
    KeySpec(
        "tree-add-expert",
        "a",
        "add_expert",
        "Add expert",
        "Add an expert to the team.",
        "Tree",
    ),
    KeySpec(
        "tree-add-skill",
        "s",
        "add_skill",
        "Add skill",
        "Add a skill to the selected expert: stdio, SSE, streamable HTTP or interactive.",
        "Tree",
    ),
    KeySpec(
        "tree-rename",
        "r",
        "rename_item",
        "Rename",
        "Rename the selected expert; delegates lists that name it follow.",
        "Tree",
        wide_only=True,
    ),
    KeySpec(
        "tree-delete",
        "d,delete",
        "delete_item",
        "Delete",
        "Delete the selected expert or skill (asks first).",
        "Tree",
        wide_only=True,
    ),
    # Editor ----------------------------------------------------------------------------------
    KeySpec(
        "editor-leave",
        "escape",
        "screen.focus_tree",
        "Leave editor",
        "Leave the editor for the team tree (Tab indents inside the editor).",
        "Editor",
        show=False,
    ),
    KeySpec(
        "run-expert",
        "f5",
        "run_expert",
        "Run",
        "Run the selected expert with a live step tree (the saved file is what runs).",
        "Team",
        show=False,  # in the help screen and the palette; the footer has no room at 120 columns
    ),
    KeySpec(
        "new-team",
        "ctrl+t",
        "new_team",
        "New team",
        "Describe a team; create-expert writes and tests it, then accept or roll back the diff.",
        "Team",
    ),
    KeySpec(
        "focus-tree",
        "f2",
        "focus_tree",
        "Team",
        "Move the focus to the team tree.",
        "Editor",
        show=False,
    ),
    KeySpec(
        "focus-editor",
        "f3",
        "focus_editor",
        "Editor",
        "Move the focus to the perstack.toml editor.",
        "Editor",
        show=False,
    ),
    KeySpec(
        "focus-problems",
        "f4",
        "focus_problems",
        "Problems",
        "Move the focus to the problems list; Enter on a problem jumps to its line.",
        "Editor",
        show=False,
    ),
    # Dialogs ---------------------------------------------------------------------------------
    KeySpec(
        "form-submit",
        "ctrl+s",
        "submit",
        "Apply",
        "Apply the form to perstack.toml (the file is saved separately).",
        "Dialogs",
    ),
    KeySpec(
        "form-cancel",
        "escape",
        "cancel",
        "Cancel",
        "Close the dialog without changing anything.",
        "Dialogs",
    ),
    KeySpec(
        "conflict-keep-mine",
        "m",
        "keep_mine",
        "Keep mine",
        "Keep your unsaved edits; saving then overwrites the file on disk.",
        "Dialogs",
    ),
    KeySpec(
        "conflict-take-disk",
        "t",
        "take_disk",
        "Take disk",
        "Load the version on disk; Ctrl+Z in the editor brings your edits back.",
        "Dialogs",
    ),
    # Run (the run screen, its history and the interactive tool's dialog) ------------------------
    KeySpec(
        "run-cancel",
        "escape,ctrl+c",
        "cancel_run",
        "Cancel run",
        "Cancel the run in flight; its last checkpoint is saved and can be resumed.",
        "Run",
    ),
    KeySpec(
        "run-history",
        "ctrl+h,f5",
        "history",
        "History",
        "Past jobs of this workspace: replay one and resume from any checkpoint.",
        "Run",
        key_display="f5",
    ),
    KeySpec(
        "run-history-tree",
        "h",
        "history",
        "History",
        "Past jobs (when the tree has the focus).",
        "Run",
        show=False,
    ),
    KeySpec(
        "run-focus-tree",
        "ctrl+t",
        "focus_tree",
        "Tree",
        "Move the focus to the step tree.",
        "Run",
    ),
    KeySpec(
        "run-focus-query",
        "ctrl+l",
        "focus_query",
        "Query",
        "Move the focus to the query box.",
        "Run",
        show=False,
    ),
    KeySpec(
        "history-back",
        "escape",
        "back",
        "Back",
        "Back to the job list, or close the history.",
        "Run",
    ),
    KeySpec(
        "history-fork",
        "f",
        "fork",
        "Fork",
        "Fork a new job from the highlighted checkpoint, with that expert's definition edited "
        "for the fork (and, if you accept the diff, in perstack.toml).",
        "Run",
    ),
    KeySpec(
        "history-mark",
        "m",
        "mark",
        "Mark",
        "Mark the highlighted job (again: unmark it); d on another job compares the two.",
        "Run",
    ),
    KeySpec(
        "history-diff",
        "d",
        "diff",
        "Diff",
        "Compare the highlighted job with the marked one (none marked: the job it replays or "
        "forks, else its expert's previous job), side by side, the first divergence selected.",
        "Run",
    ),
    KeySpec(
        "diff-next",
        "n",
        "next_difference",
        "Next diff",
        "Move to the next step or run that differs.",
        "Run",
    ),
    KeySpec(
        "diff-previous",
        "p",
        "previous_difference",
        "Prev diff",
        "Move to the previous step or run that differs.",
        "Run",
    ),
    KeySpec(
        "diff-back",
        "escape",
        "back",
        "Back",
        "Close the comparison, back to the history.",
        "Run",
    ),
    KeySpec(
        "interactive-answer",
        "ctrl+s",
        "submit",
        "Answer",
        "Send the answer; the run resumes with it.",
        "Run",
    ),
    KeySpec(
        "interactive-later",
        "escape",
        "cancel",
        "Later",
        "Close without answering; type the answer in the query box later.",
        "Run",
    ),
    # Evals ------------------------------------------------------------------------------------
    KeySpec(
        "open-evals",
        "f7",
        "evals",
        "Evals",
        "The eval sets of this folder: their latest scores, run one, compare with earlier runs.",
        "Evals",
        show=False,
    ),
    KeySpec(
        "evals-run",
        "r",
        "run_evals",
        "Run",
        "Run the eval set on the team in perstack.toml (as perstack eval does).",
        "Evals",
    ),
    KeySpec(
        "evals-older",
        "[",
        "older",
        "Older",
        "Compare with the run before the one compared with now.",
        "Evals",
    ),
    KeySpec(
        "evals-newer",
        "]",
        "newer",
        "Newer",
        "Compare with a more recent earlier run.",
        "Evals",
    ),
    KeySpec(
        "evals-next-set",
        "tab",
        "next_set",
        "Next set",
        "Show the next eval set of the folder.",
        "Evals",
        show=False,
    ),
    KeySpec(
        "evals-back",
        "escape",
        "back",
        "Back",
        "Close the Evals view.",
        "Evals",
    ),
    # New team (the create-expert wizard) --------------------------------------------------------
    KeySpec(
        "wizard-next",
        "ctrl+s",
        "next",
        "Next",
        "Go to the next step (on the review step: start create-expert).",
        "New team",
    ),
    KeySpec(
        "wizard-back",
        "escape",
        "back",
        "Back",
        "Go back one step (on the first step: close the wizard).",
        "New team",
    ),
    KeySpec(
        "wizard-review-changes",
        "f6",
        "review_changes",
        "Changes",
        "Show how perstack.toml changed, to accept or roll back.",
        "New team",
    ),
    KeySpec(
        "wizard-accept",
        "a",
        "accept",
        "Accept",
        "Keep the new perstack.toml.",
        "New team",
    ),
    KeySpec(
        "wizard-roll-back",
        "r",
        "roll_back",
        "Roll back",
        "Restore perstack.toml as it was before create-expert ran.",
        "New team",
    ),
    KeySpec(
        "wizard-back-to-run",
        "escape",
        "back_to_run",
        "Back to run",
        "Look at the run's step tree again; F6 there brings this back.",
        "New team",
    ),
    # App ----------------------------------------------------------------------------------------
    KeySpec(
        "help",
        "f1",
        "help",
        "Help",
        "Show every key and how the studio works.",
        "App",
        priority=True,
    ),
    KeySpec(
        "quit",
        "ctrl+q",
        "quit",
        "Quit",
        "Leave the studio; asks first when there are unsaved edits.",
        "App",
        priority=True,
    ),
)

BY_ID: dict[str, KeySpec] = {spec.id: spec for spec in KEYS}
"""The registry by binding id."""


def binding(binding_id: str, *, show: bool | None = None) -> Binding:
    """The Textual binding for one registry entry.

    Args:
        binding_id: An id from :data:`KEYS`.
        show: Override the registry's footer visibility.
    """
    spec = BY_ID[binding_id]
    return Binding(
        spec.key,
        spec.action,
        spec.description,
        show=spec.show if show is None else show,
        key_display=spec.key_display,
        priority=spec.priority,
        tooltip=spec.tooltip,
        id=spec.id,
    )


def wide_only_actions() -> frozenset[str]:
    """The actions of the keys a narrow footer leaves out."""
    return frozenset(spec.action for spec in KEYS if spec.wide_only)


def bindings(*binding_ids: str) -> list[BindingType]:
    """The Textual bindings for several registry entries, in the order given."""
    return [binding(binding_id) for binding_id in binding_ids]


class Keymap:
    """The keys in effect: each registry entry's default key, or the user's override by id.

    The app applies it once (:meth:`apply`); Textual then rebinds every binding with an
    overridden id wherever it is declared. The help screen asks it what each id is bound to.
    """

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        """Check and keep ``overrides`` (binding id to keys, comma-separated as in Textual).

        Raises:
            ValueError: An id is not in :data:`KEYS` (Textual would ignore it without a word).
        """
        self.overrides: dict[str, str] = dict(overrides or {})
        unknown = sorted(set(self.overrides) - BY_ID.keys())
        if unknown:
            raise ValueError(f"No key binding has the id {', '.join(map(repr, unknown))}.")

    def key(self, binding_id: str) -> str:
        """What ``binding_id`` is bound to now: one or more keys, comma-separated."""
        return self.overrides.get(binding_id, BY_ID[binding_id].key)

    def apply(self, app: App[Any]) -> None:
        """Make ``app`` bind the overridden keys."""
        app.set_keymap(self.overrides)

    def display(self, binding_id: str, app: App[Any]) -> str:
        """The key(s) of ``binding_id`` as ``app`` shows keys in the footer (``^s, f5``)."""
        bound = binding(binding_id)
        return ", ".join(
            app.get_key_display(bound.with_key(key.strip()))
            for key in self.key(binding_id).split(",")
        )
