"""The main screen: the team tree, the perstack.toml editor and the problems list.

The screen composes the panes and wires them together; each pane owns its state:

* the :class:`~studio.widgets.editor_pane.EditorPane` owns the editing session of the file (the
  editor's text, what is on disk, the analysis, saving and reloading);
* the :class:`~studio.widgets.expert_tree.ExpertTree` shows the team of the last analysis and
  asks for edits by message, which :class:`~studio.screens.team_forms.TeamForms` carries out;
* the :class:`~studio.widgets.status_line.StatusLine` says what the file is up to.

The file watcher (:func:`studio.watch.watch_config`) runs in a worker of the screen and reports
by message; the screen hands each change to the editor pane, and opens the dialogs the pane asks
for (which version to keep, why saving failed).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.command import Provider
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Header, Static, TabbedContent, TabPane, Tree
from textual.worker import Worker

from studio.commands import PaletteCommand, StudioCommands
from studio.host import StudioHost, host_of
from studio.keys import bindings
from studio.messages import (
    ConfigFileChanged,
    ConfigSaveFailed,
    ConfigWatchStarted,
    forward_worker_failure,
)
from studio.screens import settle_cursors
from studio.screens.team_forms import TeamForms
from studio.session import decode_config
from studio.widgets.diagnostics import DiagnosticsPanel
from studio.widgets.editor import ConfigEditor
from studio.widgets.editor_pane import Choice, EditorPane
from studio.widgets.expert_tree import ExpertTree, TreeItem
from studio.widgets.footer import StudioFooter
from studio.widgets.status_line import StatusLine

if TYPE_CHECKING:
    from studio.screens.conflict import ReloadConflictScreen
    from studio.session import Analysis

RUNS_PLACEHOLDER = (
    "Runs of the team will appear here: pick an expert, give it a query and watch its steps.\n\n"
    'Until then, run an expert from a terminal: perstack start <expert> "<query>" --no-tui\n\n'
    "F7 shows the scores of the team's eval sets (perstack eval)."
)


class MainScreen(Screen[None]):
    """Author perstack.toml: the tree, the editor, the problems list, and (later) runs."""

    CSS_PATH = "main.tcss"
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {StudioCommands}
    BINDINGS: ClassVar[list[BindingType]] = bindings(
        "save-file",
        "new-expert",
        "edit-model",
        "new-team",
        "run-expert",
        "next-problem",
        "reload-file",
        "focus-tree",
        "focus-editor",
        "focus-problems",
        "open-evals",
    )

    def __init__(self, path: Path, *, label: str, data: bytes) -> None:
        """Open ``path``, whose content is ``data``.

        Raises:
            UnicodeDecodeError: ``data`` is not UTF-8.
        """
        super().__init__()
        self.path = path
        self.label = label
        self._data = data
        self._text = decode_config(data)
        self._conflict: ReloadConflictScreen | None = None
        self._select_after_analysis: str | None = None
        self._forms: TeamForms | None = None

    @property
    def studio(self) -> StudioHost:
        """The app, typed."""
        return host_of(self.app)

    @property
    def editor_pane(self) -> EditorPane:
        """The editor and the problems list, with the file's editing session."""
        return self.query_one("#editor-column", EditorPane)

    @property
    def editor(self) -> ConfigEditor:
        """The perstack.toml editor."""
        return self.editor_pane.editor

    @property
    def team_tree(self) -> ExpertTree:
        """The team tree."""
        return self.query_one("#expert-tree", ExpertTree)

    @property
    def problems(self) -> DiagnosticsPanel:
        """The problems list."""
        return self.editor_pane.problems

    @property
    def forms(self) -> TeamForms:
        """The forms that edit the team."""
        if self._forms is None:
            self._forms = TeamForms(self.editor_pane, added=self._select_later)
        return self._forms

    @property
    def dirty(self) -> bool:
        """The editor differs from the file on disk."""
        return self.editor_pane.dirty

    @property
    def analysis(self) -> Analysis | None:
        """The analysis of the editor's current text, once it is ready."""
        return self.editor_pane.analysis

    # layout ------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="main-tabs", initial="author"):
            with TabPane("Author", id="author"):
                with Horizontal(id="author-body"):
                    yield ExpertTree(id="expert-tree")
                    yield EditorPane(
                        self.path,
                        label=self.label,
                        data=self._data,
                        text=self._text,
                        now=self.studio.now,
                        id="editor-column",
                    )
            with TabPane("Runs", id="runs"):
                yield Static(RUNS_PLACEHOLDER, id="runs-placeholder", markup=False)
        yield StatusLine(id="status-line")
        yield StudioFooter()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        forward_worker_failure(self, event)

    def on_mount(self) -> None:
        settle_cursors(self)
        pane = self.editor_pane
        if pane.outline is not None:
            self.team_tree.show_outline(pane.outline)
        self.team_tree.focus()
        self.watch(pane, "dirty", self._dirty_changed, init=False)
        self.watch(pane, "last_event", self._update_titles, init=False)
        self.watch(pane, "analysis", self._analysed, init=False)
        self._update_titles()
        # After the first frame: the analysis imports the runtime's validation (pydantic) in a
        # thread, which would otherwise compete with the first paint for the GIL.
        self.call_after_refresh(self._start_background_work)

    def _start_background_work(self) -> None:
        self.editor_pane.request_analysis(immediate=True)
        if self.studio.watch_file:
            self.run_worker(
                self._watch(),
                name="config-watcher",
                group="config-watcher",
                exclusive=True,
                exit_on_error=False,
            )

    async def _watch(self) -> None:
        from studio.watch import watch_config

        await watch_config(self.path, self)

    def _dirty_changed(self, dirty: bool) -> None:
        self.set_class(dirty, "-dirty")
        self._update_titles()

    def _update_titles(self) -> None:
        pane = self.editor_pane
        self.title = "Perstack Studio"
        self.sub_title = self.label + (" ● modified" if pane.dirty else "")
        parts = [self.label]
        if pane.outline is not None:
            count = len(pane.outline.experts)
            parts.append(f"{count} expert{'s' * (count != 1)}")
        parts.append("unsaved edits" if pane.dirty else "no unsaved edits")
        parts.append(pane.last_event)
        self.query_one("#status-line", StatusLine).show(*parts)

    def _analysed(self, analysis: Analysis | None) -> None:
        outline = self.editor_pane.outline
        if analysis is not None and outline is not None:
            self.team_tree.show_outline(
                outline, analysis.problem_experts, stale=analysis.outline is None
            )
        if self._select_after_analysis is not None:
            self.team_tree.select_expert(self._select_after_analysis)
            self._select_after_analysis = None
        self._update_titles()

    def _select_later(self, key: str) -> None:
        self._select_after_analysis = key

    # jumping around ----------------------------------------------------------------------------

    @on(Tree.NodeHighlighted, "#expert-tree")
    def _follow_tree(self, event: Tree.NodeHighlighted[TreeItem]) -> None:
        # Only when the user moves in the tree: a rebuild while typing must not move the editor.
        item = event.node.data
        if self.team_tree.has_focus and item is not None and item.line is not None:
            self.editor.go_to(item.line)

    @on(Tree.NodeSelected, "#expert-tree")
    def _tree_selected(self, event: Tree.NodeSelected[TreeItem]) -> None:
        item = event.node.data
        outline = self.editor_pane.outline
        if item is None:
            return
        if item.kind == "delegate" and outline is not None:
            target = item.name if item.name in outline.expert_keys else None
            if target is None and "@" in item.name[1:]:
                base = item.name[: item.name.index("@", 1)]
                target = base if base in outline.expert_keys else None
            if target is not None:
                self.team_tree.select_expert(target)
        elif item.kind == "model":
            self.action_edit_model()

    def action_next_problem(self) -> None:
        """Move the editor to the next problem after the cursor (wrapping around)."""
        self.editor_pane.next_problem()

    def action_focus_tree(self) -> None:
        """Focus the team tree."""
        self.query_one(TabbedContent).active = "author"
        self.team_tree.focus()

    def action_focus_editor(self) -> None:
        """Focus the editor."""
        self.query_one(TabbedContent).active = "author"
        self.editor.focus()

    def action_focus_problems(self) -> None:
        """Focus the problems list."""
        self.query_one(TabbedContent).active = "author"
        self.problems.focus()

    def action_show_tab(self, tab: str) -> None:
        """Show the Author or the Runs tab."""
        self.query_one(TabbedContent).active = tab

    def _go_to_expert(self, key: str) -> None:
        self.action_focus_tree()
        self.team_tree.select_expert(key)

    # edits -------------------------------------------------------------------------------------

    @on(ExpertTree.ActionInvoked)
    def _tree_action(self, message: ExpertTree.ActionInvoked) -> None:
        self.forms.for_tree_action(message.action, message.item)

    def action_new_expert(self) -> None:
        """Open the expert form to add an expert."""
        self.forms.new_expert()

    def action_edit_model(self) -> None:
        """Ask for the model of the whole file (empty: the default)."""
        self.forms.edit_model()

    # the file ----------------------------------------------------------------------------------

    def action_save(self) -> None:
        """Write the editor's text to disk (atomically), problems or not."""
        self.editor_pane.save()

    @on(ConfigSaveFailed)
    def _save_failed(self, message: ConfigSaveFailed) -> None:
        from studio.screens.error import ErrorModal

        self.app.push_screen(
            ErrorModal(
                "Could not save",
                f"{self.label} was not written; the file on disk is unchanged and your edits "
                "are still in the editor.",
                message.error,
            )
        )

    def action_reload(self) -> None:
        """Read the file on disk again (asks first when there are unsaved edits)."""
        self.editor_pane.reload()

    @on(ConfigWatchStarted)
    def _watching(self) -> None:
        self.log(f"watching {self.path}")

    @on(ConfigFileChanged)
    def _file_changed(self, message: ConfigFileChanged) -> None:
        self.editor_pane.file_changed(message.data)

    @on(EditorPane.ConflictFound)
    def _ask_which(self, message: EditorPane.ConflictFound) -> None:
        if self._conflict is not None:
            self._conflict.update_versions(mine=message.mine, disk=message.disk)
            return
        from studio.screens.conflict import ReloadConflictScreen

        self._conflict = ReloadConflictScreen(self.label, mine=message.mine, disk=message.disk)
        self.app.push_screen(self._conflict, self._conflict_resolved)

    def _conflict_resolved(self, choice: Choice | None) -> None:
        self._conflict = None
        self.editor_pane.resolve_conflict(choice)

    # other screens -----------------------------------------------------------------------------

    def action_run_expert(self) -> None:
        """Run the selected expert in the run view; the file on disk is what runs."""
        from studio.run_controller import RunOptions
        from studio.screens.run import RunScreen

        key = self.team_tree.selected_expert
        if key is None:
            self.notify("Select an expert in the team tree first.", severity="warning")
            return
        if self.dirty:
            self.notify("Unsaved edits are not part of this run: save to include them.")
        options = RunOptions(workspace=self.path.parent, expert_key=key, config_path=str(self.path))
        self.app.push_screen(RunScreen(options, now=self.studio.now))

    def action_evals(self) -> None:
        """Open the Evals view of this folder's eval sets."""
        from studio.screens.evals import EvalsScreen

        self.app.push_screen(
            EvalsScreen(self.path.parent, config_path=self.path, now=self.studio.now)
        )

    def action_new_team(self) -> None:
        """Open the New team wizard (create-expert writes into this perstack.toml)."""
        from studio.screens.wizard import WizardScreen

        if self.dirty:
            self.notify(
                "Save or reload first: create-expert writes the file on disk.", severity="warning"
            )
            return

        def ended(outcome: str | None) -> None:
            if outcome is not None:
                self.action_reload()

        self.app.push_screen(WizardScreen(self.path, now=self.studio.now), ended)

    # palette -----------------------------------------------------------------------------------

    def palette_commands(self) -> list[PaletteCommand]:
        """The commands that make sense now, for the command palette."""
        commands = [
            PaletteCommand(
                "run: selected expert",
                "Run the expert under the cursor with a live step tree",
                self.action_run_expert,
            ),
            PaletteCommand(
                "team: new (create-expert wizard)",
                "Describe a team and let create-expert build and test it",
                self.action_new_team,
            ),
            PaletteCommand("file: save", f"Write {self.label} to disk", self.action_save),
            PaletteCommand(
                "file: reload from disk", f"Read {self.label} again", self.action_reload
            ),
            PaletteCommand("view: help", "Keys and how the studio works", self.studio.action_help),
            PaletteCommand("view: team tree", "Focus the team tree", self.action_focus_tree),
            PaletteCommand(
                "view: editor", "Focus the perstack.toml editor", self.action_focus_editor
            ),
            PaletteCommand("view: problems", "Focus the problems list", self.action_focus_problems),
            PaletteCommand("view: runs", "Show the Runs tab", lambda: self.action_show_tab("runs")),
            PaletteCommand(
                "view: evals",
                "Scores of the eval sets, run one, compare with earlier runs (F7)",
                self.action_evals,
            ),
        ]
        if self.problems.diagnostics:
            commands.append(
                PaletteCommand(
                    "problems: next", "Jump to the next problem", self.action_next_problem
                )
            )
        outline = self.analysis.outline if self.analysis else None
        if outline is None:
            return commands  # the text does not parse: structured edits wait for a fix
        return commands + self.forms.palette_commands(outline, self._go_to_expert)
