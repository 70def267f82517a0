"""The main screen: the team tree, the perstack.toml editor and the problems list.

This screen owns the editing session of one file. Its state:

* the editor's text (in the :class:`~studio.widgets.editor.ConfigEditor`);
* what is on disk (``_disk_data``) and the editor text that matches it (``_baseline``): the
  file is *dirty* when the editor differs from the baseline;
* the last analysis (diagnostics and team outline) of the editor's text.

Workers do the slow parts and report by message: the analysis (:meth:`_analyse`), saving
(:meth:`_save`) and the file watcher (:func:`studio.watch.watch_config`). Only the handlers here
change widgets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.command import Provider
from textual.containers import Horizontal, Vertical
from textual.reactive import var
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane, TextArea, Tree

from studio.commands import StudioCommands
from studio.edits import ExpertFields, SkillFields, apply_expert, apply_skill, edit_text
from studio.keys import bindings
from studio.messages import (
    AnalysisReady,
    ConfigFileChanged,
    ConfigReloaded,
    ConfigSaved,
    ConfigSaveFailed,
    ConfigWatchStarted,
)
from studio.screens import settle_cursors
from studio.session import (
    BASE_SKILL_NAME,
    Analysis,
    TeamOutline,
    analyse,
    changed_lines,
    decode_config,
    outline_of,
)
from studio.widgets.diagnostics import DiagnosticsPanel
from studio.widgets.editor import ConfigEditor
from studio.widgets.expert_tree import ExpertTree, TreeItem

if TYPE_CHECKING:
    from runtime.config.authoring import ConfigDocument
    from studio.app import StudioApp
    from studio.screens.conflict import Choice, ReloadConflictScreen

ANALYSIS_DELAY = 0.2
"""Seconds of quiet typing before the text is checked again."""

INLINE_ANALYSIS_CHARS = 64_000
"""Files up to this size (about 200 experts) are checked without a worker after a reload or a
form's edit: it takes a few tens of milliseconds at most."""

KNOWN_MODELS = (
    "claude-sonnet-4-5",
    "claude-opus-4-1",
    "claude-haiku-4-5",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4o",
    "o4-mini",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "deepseek-chat",
)
"""Offered as completions in the model prompt (any litellm model id is accepted)."""

RUNS_PLACEHOLDER = (
    "Runs of the team will appear here: pick an expert, give it a query and watch its steps.\n\n"
    'Until then, run an expert from a terminal: perstack start <expert> "<query>" --no-tui'
)


@dataclass(frozen=True)
class PaletteCommand:
    """One command-palette entry valid on this screen right now."""

    title: str
    help: str
    run: Callable[[], object]


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
    )

    dirty: var[bool] = var(False, toggle_class="-dirty")
    """The editor differs from the file on disk."""

    def __init__(self, path: Path, *, label: str, data: bytes) -> None:
        """Open ``path``, whose content is ``data``.

        Raises:
            UnicodeDecodeError: ``data`` is not UTF-8.
        """
        super().__init__()
        self.path = path
        self.label = label
        self._disk_data: bytes | None = data
        self._disk_text = decode_config(data)
        self._baseline = self._disk_text
        self._analysis: Analysis | None = None
        self._outline: TeamOutline | None = outline_of(self._disk_text)
        self._requested_text: str | None = None
        self._analysis_timer: Timer | None = None
        self._saving: str | None = None
        self._conflict: ReloadConflictScreen | None = None
        self._conflict_data: tuple[bytes, str] | None = None
        self._last_event = "opened"
        self._select_after_analysis: str | None = None

    @property
    def studio(self) -> StudioApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    @property
    def editor(self) -> ConfigEditor:
        """The perstack.toml editor."""
        return self.query_one("#editor", ConfigEditor)

    @property
    def team_tree(self) -> ExpertTree:
        """The team tree."""
        return self.query_one("#expert-tree", ExpertTree)

    @property
    def problems(self) -> DiagnosticsPanel:
        """The problems list."""
        return self.query_one("#diagnostics", DiagnosticsPanel)

    @property
    def analysis(self) -> Analysis | None:
        """The analysis of the editor's current text, once it is ready."""
        return self._analysis

    # Layout ------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="main-tabs", initial="author"):
            with TabPane("Author", id="author"):
                with Horizontal(id="author-body"):
                    yield ExpertTree(id="expert-tree")
                    with Vertical(id="editor-column"):
                        yield ConfigEditor(self._disk_text, id="editor")
                        yield DiagnosticsPanel(id="diagnostics")
            with TabPane("Runs", id="runs"):
                yield Static(RUNS_PLACEHOLDER, id="runs-placeholder", markup=False)
        yield Static("", id="status-line", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        settle_cursors(self)
        # What the editor holds for the file on disk (a file with mixed line endings reads back
        # with one kind): compared with the editor's text to know whether there are edits.
        self._baseline = self.editor.text
        if self._outline is not None:
            self.team_tree.show_outline(self._outline)
        self.team_tree.focus()
        self._update_titles()
        # After the first frame: the analysis imports the runtime's validation (pydantic) in a
        # thread, which would otherwise compete with the first paint for the GIL.
        self.call_after_refresh(self._start_background_work)

    def _start_background_work(self) -> None:
        self._request_analysis(immediate=True)
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

    def _update_titles(self) -> None:
        self.title = "Perstack Studio"
        self.sub_title = self.label + (" ● modified" if self.dirty else "")
        self.editor.border_title = self.label
        self.editor.border_subtitle = "● modified" if self.dirty else "saved"
        self.editor.set_class(self.dirty, "-dirty")
        parts = [self.label]
        outline = self._outline
        if outline is not None:
            count = len(outline.experts)
            parts.append(f"{count} expert{'s' * (count != 1)}")
        parts.append("unsaved edits" if self.dirty else "no unsaved edits")
        parts.append(self._last_event)
        self.query_one("#status-line", Static).update(" · ".join(parts))

    def watch_dirty(self) -> None:
        if self.is_mounted:
            self._update_titles()

    def _stamp(self, event: str) -> None:
        self._last_event = f"{event} at {self.studio.now():%H:%M:%S}"
        self._update_titles()

    # Analysis ----------------------------------------------------------------------------------

    @on(TextArea.Changed, "#editor")
    def _editor_changed(self) -> None:
        self.dirty = self.editor.text != self._baseline or self._disk_data is None
        self._request_analysis()

    def _request_analysis(self, *, immediate: bool = False, inline: bool = False) -> None:
        """Check the editor's text: after a pause in typing, or now.

        Args:
            immediate: Now, not after :data:`ANALYSIS_DELAY`.
            inline: On this thread, for one-off changes (a reload, a form's edit) of a file
                small enough to check in a few milliseconds: the new version then appears in
                one frame, without a round trip through a worker.
        """
        if self._analysis_timer is not None:
            self._analysis_timer.stop()
            self._analysis_timer = None
        if immediate:
            self._start_analysis(inline=inline)
        else:
            self._analysis_timer = self.set_timer(ANALYSIS_DELAY, self._start_analysis)

    def _start_analysis(self, *, inline: bool = False) -> None:
        text = self.editor.text
        if text == self._requested_text:
            return
        self._requested_text = text
        if inline and len(text) <= INLINE_ANALYSIS_CHARS:
            self.post_message(AnalysisReady(text, analyse(text, label=self.label)))
        else:
            self._analyse(text)

    @work(thread=True, exclusive=True, group="analysis", exit_on_error=False)
    def _analyse(self, text: str) -> None:
        self.post_message(AnalysisReady(text, analyse(text, label=self.label)))

    @on(AnalysisReady)
    def _analysis_ready(self, message: AnalysisReady) -> None:
        if message.text != self.editor.text:
            return  # the text moved on; its own analysis is on the way
        analysis = message.analysis
        self._analysis = analysis
        self.problems.show(analysis.diagnostics)
        if analysis.outline is not None:
            self._outline = analysis.outline
        if self._outline is not None:
            self.team_tree.show_outline(
                self._outline, analysis.problem_experts, stale=analysis.outline is None
            )
        if self._select_after_analysis is not None:
            self.team_tree.select_expert(self._select_after_analysis)
            self._select_after_analysis = None
        self._update_titles()

    # Jumping around ----------------------------------------------------------------------------

    @on(DiagnosticsPanel.JumpRequested)
    def _jump(self, message: DiagnosticsPanel.JumpRequested) -> None:
        self.editor.go_to(message.line, message.column)
        self.editor.focus()

    @on(Tree.NodeHighlighted, "#expert-tree")
    def _follow_tree(self, event: Tree.NodeHighlighted[TreeItem]) -> None:
        # Only when the user moves in the tree: a rebuild while typing must not move the editor.
        item = event.node.data
        if self.team_tree.has_focus and item is not None and item.line is not None:
            self.editor.go_to(item.line)

    @on(Tree.NodeSelected, "#expert-tree")
    def _tree_selected(self, event: Tree.NodeSelected[TreeItem]) -> None:
        item = event.node.data
        if item is None:
            return
        if item.kind == "delegate" and self._outline is not None:
            target = item.name if item.name in self._outline.expert_keys else None
            if target is None and "@" in item.name[1:]:
                base = item.name[: item.name.index("@", 1)]
                target = base if base in self._outline.expert_keys else None
            if target is not None:
                self.team_tree.select_expert(target)
        elif item.kind == "model":
            self.action_edit_model()

    def action_next_problem(self) -> None:
        """Move the editor to the next problem after the cursor (wrapping around)."""
        diagnostics = [item for item in self.problems.diagnostics if item.line is not None]
        if not diagnostics:
            self.notify("No problems found.", title="Problems")
            return
        row = self.editor.cursor_location[0] + 1
        after = [item for item in diagnostics if item.line is not None and item.line > row]
        target = (after or diagnostics)[0]
        assert target.line is not None
        self.editor.go_to(target.line, target.column)
        self.editor.focus()
        self.notify(target.message, title=f"Line {target.line}", severity=target.severity)

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

    # Structured edits --------------------------------------------------------------------------

    def _edit(self, change: Callable[[ConfigDocument], object], *, done: str) -> bool:
        """Apply ``change`` to the editor's text through the runtime's ConfigDocument.

        Returns:
            Whether the edit was made (else a notification says why not).
        """
        new_text, problem = self._try_edit(change)
        if new_text is None:
            self.notify(problem or "The edit was refused.", title="Cannot edit", severity="error")
            return False
        self._replace_text(new_text)
        self.notify(done, title="Edited")
        self._request_analysis(immediate=True, inline=True)
        return True

    def _try_edit(self, change: Callable[[ConfigDocument], object]) -> tuple[str | None, str]:
        """The editor's text with ``change`` applied, or ``None`` and why it cannot be."""
        from runtime import ConfigError
        from runtime.config.authoring import ConfigEditError

        try:
            new_text, _ = edit_text(self.editor.text, change, label=self.label)
        except ConfigEditError as error:
            return None, error.message
        except ConfigError as error:
            return None, f"Fix the TOML syntax first (see Problems). {error.message}"
        except KeyError as error:
            return None, f"{error.args[0]!r} is not in {self.label} any more."
        return new_text, ""

    def _checker(self, change: Callable[[ConfigDocument], object]) -> str | None:
        """For a form: why ``change`` would be refused, or ``None`` when it applies."""
        new_text, problem = self._try_edit(change)
        return None if new_text is not None else problem

    def _replace_text(self, new_text: str) -> None:
        """Make the editor show ``new_text``, replacing only the lines that differ (undoable)."""
        editor = self.editor
        old_text = editor.text
        if new_text == old_text:
            return
        first, old_end, new_end = changed_lines(old_text, new_text)
        document = editor.document
        old_lines = old_text.splitlines(keepends=True)
        new_lines = new_text.splitlines(keepends=True)
        # Past the last line ending, the end of the document (with or without a final newline).
        end = (old_end, 0) if old_end < len(old_lines) else document.end
        editor.replace("".join(new_lines[first:new_end]), (first, 0), end)
        if editor.text != new_text:
            editor.replace(new_text, (0, 0), editor.document.end)
        editor.go_to(first + 1)

    def _document_text(self) -> str | None:
        """The editor's text when it is valid TOML, else ``None`` (with a notification)."""
        from runtime import ConfigError
        from runtime.config.authoring import ConfigDocument

        try:
            ConfigDocument.parse(self.editor.text, label=self.label)
        except ConfigError as error:
            self._cannot_edit(error.message)
            return None
        return self.editor.text

    def _cannot_edit(self, problem: str) -> None:
        self.notify(
            f"Fix the TOML syntax first (see Problems). {problem}",
            title="Cannot edit",
            severity="error",
        )

    def _table(self, expert: str) -> dict[str, Any] | None:
        from runtime import ConfigError
        from runtime.config.authoring import ConfigDocument

        try:
            return ConfigDocument.parse(self.editor.text, label=self.label).expert(expert)
        except ConfigError as error:
            self._cannot_edit(error.message)
        except KeyError:
            self.notify(f"No expert {expert!r} in the file.", title="Cannot edit", severity="error")
        return None

    def _expert_keys(self) -> list[str]:
        from runtime.config.authoring import ConfigDocument

        return ConfigDocument.parse(self.editor.text, label=self.label).expert_keys()

    # Experts -----------------------------------------------------------------------------------

    def action_new_expert(self) -> None:
        """Open the expert form to add an expert."""
        if self._document_text() is None:
            return
        from studio.screens.expert_form import ExpertFormScreen

        def added(fields: ExpertFields | None) -> None:
            if fields is None:
                return

            def change(document: ConfigDocument) -> None:
                apply_expert(document, fields, None)

            if self._edit(change, done=f"Added expert {fields.key}."):
                self._select_after_analysis = fields.key

        self.app.push_screen(
            ExpertFormScreen(
                None,
                experts=self._expert_keys(),
                check=lambda fields: self._checker(
                    lambda document: apply_expert(document, fields, None)
                ),
            ),
            added,
        )

    def edit_expert(self, key: str) -> None:
        """Open the expert form on ``key``."""
        table = self._table(key)
        if table is None:
            return
        from studio.screens.expert_form import ExpertFormScreen

        original = ExpertFields.from_table(key, table)

        def edited(fields: ExpertFields | None) -> None:
            if fields is None or fields == original:
                return

            def change(document: ConfigDocument) -> None:
                apply_expert(document, fields, original)

            self._edit(change, done=f"Updated expert {fields.key}.")

        self.app.push_screen(
            ExpertFormScreen(
                original,
                experts=self._expert_keys(),
                check=lambda fields: self._checker(
                    lambda document: apply_expert(document, fields, original)
                ),
            ),
            edited,
        )

    def rename_expert(self, key: str) -> None:
        """Ask for a new key for ``key``; delegates lists that name it follow."""
        if self._document_text() is None:
            return
        from runtime.config.schema import EXPERT_NAME_RE
        from studio.screens.prompt import PromptModal

        taken = set(self._expert_keys())

        def check(value: str) -> str | None:
            if not EXPERT_NAME_RE.match(value):
                return (
                    f"{value!r} is not a valid expert key: use lowercase letters, digits, '-' "
                    "and '_', optionally prefixed by @scope/."
                )
            if value != key and value in taken:
                return f"An expert {value!r} already exists."
            return None

        def renamed(value: str | None) -> None:
            if not value or value == key:
                return
            self._edit(
                lambda document: document.rename_expert(key, value),
                done=f"Renamed {key} to {value}.",
            )

        self.app.push_screen(
            PromptModal(
                f"Rename expert {key}",
                "New key",
                value=key,
                check=check,
                help="Delegates lists that name this expert are updated too.",
                submit_label="Rename",
            ),
            renamed,
        )

    def delete_expert(self, key: str) -> None:
        """Ask, then delete ``key`` with its skills."""
        if self._document_text() is None:
            return
        from studio.screens.confirm import ConfirmModal

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            updated: list[str] = []

            def change(document: ConfigDocument) -> None:
                updated.extend(document.delete_expert(key))

            if self._edit(change, done=f"Deleted expert {key}.") and updated:
                self.notify(
                    f"Also removed it from the delegates of {', '.join(updated)}.",
                    title="Delegates updated",
                )

        self.app.push_screen(
            ConfirmModal(
                f"Delete expert {key}?",
                f"Its table and skills are removed from {self.label} (undo with Ctrl+Z in the "
                "editor until you save). Delegates lists that name it are updated.",
                confirm_label="Delete",
                danger=True,
            ),
            confirmed,
        )

    def remove_delegate(self, expert: str, delegate: str) -> None:
        """Take ``delegate`` out of ``expert``'s delegates."""
        table = self._table(expert)
        if table is None:
            return
        original = ExpertFields.from_table(expert, table)
        fields = replace(
            original, delegates=tuple(item for item in original.delegates if item != delegate)
        )
        self._edit(
            lambda document: apply_expert(document, fields, original),
            done=f"{expert} no longer delegates to {delegate}.",
        )

    # Model -------------------------------------------------------------------------------------

    def action_edit_model(self) -> None:
        """Ask for the model of the whole file (empty: the default)."""
        if self._document_text() is None:
            return
        from studio.screens.prompt import PromptModal

        current = self._outline.model if self._outline else None

        def chosen(value: str | None) -> None:
            if value is None or value == (current or ""):
                return
            self._edit(
                lambda document: document.set_top_level("model", value or None),
                done=f"Model set to {value}." if value else "Model removed (the default applies).",
            )

        self.app.push_screen(
            PromptModal(
                "Model",
                "Model id (any model your provider serves)",
                value=current or "",
                placeholder="claude-sonnet-4-5",
                suggestions=KNOWN_MODELS,
                help="Leave empty for the default (claude-sonnet-4-5); --model on the command "
                "line still overrides it.",
            ),
            chosen,
        )

    # Skills ------------------------------------------------------------------------------------

    def add_skill(self, expert: str) -> None:
        """Open the skill form to add a skill to ``expert``."""
        table = self._table(expert)
        if table is None:
            return
        from studio.screens.skill_form import SkillFormScreen

        skills = table.get("skills")
        names = list(skills) if isinstance(skills, dict) else []

        def added(fields: SkillFields | None) -> None:
            if fields is None:
                return
            with_base = not names and fields.name != BASE_SKILL_NAME
            self._edit(
                lambda document: apply_skill(document, expert, fields, None),
                done=f"Added skill {fields.name} to {expert}"
                + (f" (with {BASE_SKILL_NAME})." if with_base else "."),
            )

        self.app.push_screen(
            SkillFormScreen(
                expert,
                None,
                taken=names,
                adds_base=not names,
                check=lambda fields: self._checker(
                    lambda document: apply_skill(document, expert, fields, None)
                ),
            ),
            added,
        )

    def edit_skill(self, expert: str, name: str) -> None:
        """Open the skill form on one skill of ``expert`` (its fields, pick and omit)."""
        table = self._table(expert)
        if table is None:
            return
        skills = table.get("skills")
        skill = skills.get(name) if isinstance(skills, dict) else None
        if not isinstance(skill, dict):
            self.notify(f"{expert} has no skill {name!r}.", severity="error")
            return
        from studio.screens.skill_form import SkillFormScreen

        original = SkillFields.from_table(name, skill)

        def edited(fields: SkillFields | None) -> None:
            if fields is None:
                return
            self._edit(
                lambda document: apply_skill(document, expert, fields, original),
                done=f"Updated skill {name} of {expert}.",
            )

        self.app.push_screen(
            SkillFormScreen(
                expert,
                original,
                taken=list(skills or ()),
                check=lambda fields: self._checker(
                    lambda document: apply_skill(document, expert, fields, original)
                ),
            ),
            edited,
        )

    def remove_skill(self, expert: str, name: str) -> None:
        """Ask, then remove one skill of ``expert``."""
        if self._document_text() is None:
            return
        from studio.screens.confirm import ConfirmModal

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._edit(
                    lambda document: document.remove_skill(expert, name),
                    done=f"Removed skill {name} from {expert}.",
                )

        warning = (
            f" {expert} lists skills, so it needs {BASE_SKILL_NAME}."
            if name == BASE_SKILL_NAME
            else ""
        )
        self.app.push_screen(
            ConfirmModal(
                f"Remove skill {name}?",
                f"The skill's table is removed from {expert}.{warning}",
                confirm_label="Remove",
                danger=True,
            ),
            confirmed,
        )

    # The tree's keys ---------------------------------------------------------------------------

    @on(ExpertTree.ActionInvoked)
    def _tree_action(self, message: ExpertTree.ActionInvoked) -> None:
        item = message.item
        action = message.action
        if action == "add-expert" or item is None or item.kind == "empty":
            if action in ("add-expert", "edit"):
                self.action_new_expert()
            else:
                self.notify("Add an expert first (a).", title="No expert selected")
            return
        if item.kind == "model":
            if action == "edit":
                self.action_edit_model()
            elif action == "delete":
                self._edit(
                    lambda document: document.set_top_level("model", None),
                    done="Model removed (the default applies).",
                )
            return
        expert = item.expert
        if action == "add-skill":
            self.add_skill(expert)
        elif action == "rename":
            self.rename_expert(expert)
        elif action == "edit":
            if item.kind == "skill":
                self.edit_skill(expert, item.name)
            else:
                self.edit_expert(expert)
        elif action == "delete":
            if item.kind == "skill":
                self.remove_skill(expert, item.name)
            elif item.kind == "delegate":
                self.remove_delegate(expert, item.name)
            else:
                self.delete_expert(expert)

    # Saving ------------------------------------------------------------------------------------

    def action_save(self) -> None:
        """Write the editor's text to disk (atomically), problems or not."""
        if not self.dirty and self._disk_data is not None:
            self.notify(f"{self.label} has no unsaved edits.", title="Nothing to save")
            return
        text = self.editor.text
        self._saving = text
        self._save(text)

    @work(thread=True, exclusive=True, group="save", exit_on_error=False)
    def _save(self, text: str) -> None:
        from runtime import ConfigError
        from runtime.config.authoring import save_config

        try:
            save_config(self.path, text)
            data = self.path.read_bytes()
        except ConfigError as error:
            self.post_message(ConfigSaveFailed(self.path, error.message))
            return
        except OSError as error:
            self.post_message(ConfigSaveFailed(self.path, str(error)))
            return
        self.post_message(ConfigSaved(self.path, text, data))

    @on(ConfigSaved)
    def _saved(self, message: ConfigSaved) -> None:
        self._saving = None
        self._disk_data, self._disk_text = message.data, message.text
        self._baseline = message.text
        self.dirty = self.editor.text != self._baseline
        self._stamp("saved")
        errors = self._analysis.errors if self._analysis else 0
        if errors:
            self.notify(
                f"Saved {self.label} with {errors} problem{'s' * (errors != 1)}: runs will "
                "refuse it until they are fixed.",
                title="Saved",
                severity="warning",
            )
        else:
            self.notify(f"Saved {self.label}.", title="Saved")

    @on(ConfigSaveFailed)
    def _save_failed(self, message: ConfigSaveFailed) -> None:
        from studio.screens.error import ErrorModal

        self._saving = None
        self.app.push_screen(
            ErrorModal(
                "Could not save",
                f"{self.label} was not written; the file on disk is unchanged and your edits "
                "are still in the editor.",
                message.error,
            )
        )

    # Hot reload --------------------------------------------------------------------------------

    @on(ConfigWatchStarted)
    def _watching(self) -> None:
        self.log(f"watching {self.path}")

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

    def action_reload(self) -> None:
        """Read the file on disk again (asks first when there are unsaved edits)."""
        try:
            data: bytes | None = self.path.read_bytes()
        except FileNotFoundError:
            data = None
        except OSError as error:
            self.notify(str(error), title="Cannot reload", severity="error")
            return
        if data is not None and data == self._disk_data and not self.dirty:
            self.notify(f"{self.label} is up to date.", title="Reload")
            return
        self._disk_changed(data, forced=True)

    @on(ConfigFileChanged)
    def _file_changed(self, message: ConfigFileChanged) -> None:
        if message.data == self._disk_data:
            return  # touched, or the echo of our own save
        self._disk_changed(message.data)

    def _disk_changed(self, data: bytes | None, *, forced: bool = False) -> None:
        if data is None:
            self._disk_data = None
            self.dirty = True
            self._stamp("deleted on disk")
            self.notify(
                f"{self.label} was deleted on disk. The editor still has it: Ctrl+S writes it "
                "again.",
                title="File deleted",
                severity="warning",
            )
            return
        try:
            text = decode_config(data)
        except UnicodeDecodeError:
            self.notify(
                f"{self.label} changed on disk but is not UTF-8 text; kept the editor as it is.",
                title="Not reloaded",
                severity="error",
            )
            return
        if self._saving is not None and text == self._saving:
            self._disk_data = data  # our own save, seen before its confirmation
            return
        if not self.dirty or (forced and self.editor.text == self._baseline):
            self._take_disk(data, text)
            self.notify(f"Reloaded {self.label}: it changed on disk.", title="Reloaded")
            self.post_message(ConfigReloaded(self.path, "disk"))
            return
        self._ask_which(data, text)

    def _take_disk(self, data: bytes, text: str) -> None:
        self._disk_data, self._disk_text = data, text
        # Replaced in place, not reloaded: the editor's undo can bring back what was there.
        self._replace_text(text)
        self._baseline = self.editor.text
        self.dirty = False
        self._stamp("reloaded from disk")
        self._request_analysis(immediate=True, inline=True)

    def _ask_which(self, data: bytes, text: str) -> None:
        self._conflict_data = (data, text)
        if self._conflict is not None:
            self._conflict.update_versions(mine=self.editor.text, disk=text)
            return
        from studio.screens.conflict import ReloadConflictScreen

        self._conflict = ReloadConflictScreen(self.label, mine=self.editor.text, disk=text)
        self.app.push_screen(self._conflict, self._conflict_resolved)

    def _conflict_resolved(self, choice: Choice | None) -> None:
        self._conflict = None
        if self._conflict_data is None:
            return
        data, text = self._conflict_data
        self._conflict_data = None
        if choice == "disk":
            self._take_disk(data, text)
            self.notify(
                "Loaded the version on disk. Ctrl+Z in the editor brings your edits back.",
                title="Reloaded",
            )
            self.post_message(ConfigReloaded(self.path, "disk"))
            return
        # Keep mine: the disk version becomes the new baseline, so the edits stay unsaved.
        self._disk_data, self._disk_text = data, text
        self._baseline = text
        self.dirty = self.editor.text != text
        self._stamp("kept your edits over a change on disk")
        self.notify(
            "Kept your edits. Saving (Ctrl+S) overwrites the version on disk.",
            title="Kept your edits",
        )
        self.post_message(ConfigReloaded(self.path, "mine"))

    # Palette -----------------------------------------------------------------------------------

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
        ]
        if self.problems.diagnostics:
            commands.append(
                PaletteCommand(
                    "problems: next", "Jump to the next problem", self.action_next_problem
                )
            )
        outline = self._analysis.outline if self._analysis else None
        if outline is None:
            return commands  # the text does not parse: structured edits wait for a fix
        commands += [
            PaletteCommand("expert: add", "Add an expert with a form", self.action_new_expert),
            PaletteCommand(
                "config: set model", "The model every expert runs on", self.action_edit_model
            ),
        ]
        for expert in outline.experts:
            key = expert.key
            commands += [
                PaletteCommand(
                    f"expert: edit {key}",
                    "Description, instruction, delegates, version, tags",
                    partial(self.edit_expert, key),
                ),
                PaletteCommand(
                    f"expert: rename {key}",
                    "Delegates lists follow",
                    partial(self.rename_expert, key),
                ),
                PaletteCommand(
                    f"expert: delete {key}", "Asks first", partial(self.delete_expert, key)
                ),
                PaletteCommand(
                    f"skill: add to {key}",
                    "stdio, SSE, streamable HTTP or interactive",
                    partial(self.add_skill, key),
                ),
                PaletteCommand(
                    f"view: go to {key}",
                    "Show the expert in the tree and the editor",
                    partial(self._go_to_expert, key),
                ),
            ]
            for skill in expert.skills:
                commands += [
                    PaletteCommand(
                        f"skill: edit {skill.name} of {key}",
                        "Fields, pick and omit",
                        partial(self.edit_skill, key, skill.name),
                    ),
                    PaletteCommand(
                        f"skill: remove {skill.name} from {key}",
                        "Asks first",
                        partial(self.remove_skill, key, skill.name),
                    ),
                ]
        return commands

    def _go_to_expert(self, key: str) -> None:
        self.action_focus_tree()
        self.team_tree.select_expert(key)
