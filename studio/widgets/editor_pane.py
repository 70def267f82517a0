"""The editor pane: perstack.toml in an editor over its problems list, and the file's session.

The pane owns the editing session of one file:

* the editor's text (in the :class:`~studio.widgets.editor.ConfigEditor`);
* what is on disk (``_disk_data``) and the editor text that matches it (``_baseline``): the
  file is *dirty* when the editor differs from the baseline;
* the last analysis (diagnostics and team outline) of the editor's text.

Workers do the slow parts and report by message: the analysis (:meth:`EditorPane._analyse`) and
saving (:meth:`EditorPane._save`). The screen around the pane watches :attr:`EditorPane.dirty`,
:attr:`EditorPane.last_event` and :attr:`EditorPane.analysis`, and opens the dialogs the pane asks
for (:class:`EditorPane.ConflictFound`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import var
from textual.timer import Timer
from textual.widgets import TextArea
from textual.worker import Worker

from studio.edits import edit_text
from studio.messages import (
    AnalysisReady,
    ConfigReloaded,
    ConfigSaved,
    ConfigSaveFailed,
    forward_worker_failure,
)
from studio.session import Analysis, TeamOutline, analyse, changed_lines, outline_of
from studio.widgets.diagnostics import DiagnosticsPanel
from studio.widgets.editor import ConfigEditor

if TYPE_CHECKING:
    from datetime import datetime

    from runtime.config import ConfigDocument

ANALYSIS_DELAY = 0.2
"""Seconds of quiet typing before the text is checked again."""

INLINE_ANALYSIS_CHARS = 64_000
"""Files up to this size (about 200 experts) are checked without a worker after a reload or a
form's edit: it takes a few tens of milliseconds at most."""

Choice = Literal["mine", "disk"]
"""Which version to keep when the file changed on disk under unsaved edits."""


class EditorPane(Vertical):
    """The editor over the problems list, and what the editor's text is to the file on disk."""

    dirty: var[bool] = var(False)
    """The editor differs from the file on disk."""
    last_event: var[str] = var("opened")
    """What last happened to the file, and when ("saved at 12:34:56")."""
    analysis: var[Analysis | None] = var(None, always_update=True)
    """The analysis of the editor's current text, once it is ready."""

    @dataclass
    class ConflictFound(Message):
        """The file changed on disk under unsaved edits: ask which version to keep.

        Answer with :meth:`EditorPane.resolve_conflict`. While the question is open, a newer
        change posts this again with the newer versions.
        """

        pane: EditorPane
        mine: str
        """The editor's text."""
        disk: str
        """The file's text on disk."""

        @property
        def control(self) -> EditorPane:
            """The pane that asks."""
            return self.pane

    def __init__(
        self,
        path: Path,
        *,
        label: str,
        data: bytes,
        text: str,
        now: Callable[[], datetime],
        id: str | None = None,
    ) -> None:
        """Open ``path``.

        Args:
            path: The file.
            label: The file as shown to the user.
            data: The file's bytes.
            text: ``data`` decoded.
            now: The clock, for the times of :attr:`last_event`.
            id: The widget's id.
        """
        super().__init__(id=id)
        self.path = path
        self.label = label
        self._now = now
        self._disk_data: bytes | None = data
        self._disk_text = text
        self._baseline = text
        self.outline: TeamOutline | None = outline_of(text)
        """The team as of the last text that parsed (kept while the text is broken)."""
        self._requested_text: str | None = None
        self._analysis_timer: Timer | None = None
        self._saving: str | None = None
        self._conflict_data: tuple[bytes, str] | None = None

    @property
    def editor(self) -> ConfigEditor:
        """The perstack.toml editor."""
        return self.query_one("#editor", ConfigEditor)

    @property
    def problems(self) -> DiagnosticsPanel:
        """The problems list."""
        return self.query_one("#diagnostics", DiagnosticsPanel)

    @property
    def text(self) -> str:
        """The editor's text."""
        return self.editor.text

    def compose(self) -> ComposeResult:
        yield ConfigEditor(self._disk_text, id="editor")
        yield DiagnosticsPanel(id="diagnostics")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        forward_worker_failure(self, event)

    def on_mount(self) -> None:
        # What the editor holds for the file on disk (a file with mixed line endings reads back
        # with one kind): compared with the editor's text to know whether there are edits.
        self._baseline = self.editor.text
        self._update_titles()

    def watch_dirty(self) -> None:
        if self.is_mounted:
            self._update_titles()

    def _update_titles(self) -> None:
        editor = self.editor
        editor.border_title = self.label
        editor.border_subtitle = "● modified" if self.dirty else "saved"
        editor.set_class(self.dirty, "-dirty")

    def _stamp(self, event: str) -> None:
        self.last_event = f"{event} at {self._now():%H:%M:%S}"

    # analysis ----------------------------------------------------------------------------------

    @on(TextArea.Changed, "#editor")
    def _editor_changed(self) -> None:
        self.dirty = self.editor.text != self._baseline or self._disk_data is None
        self.request_analysis()

    def request_analysis(self, *, immediate: bool = False, inline: bool = False) -> None:
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
        if analysis.outline is not None:
            self.outline = analysis.outline
        self.problems.show(analysis.diagnostics)
        self.analysis = analysis

    # jumping to problems -----------------------------------------------------------------------

    @on(DiagnosticsPanel.JumpRequested)
    def _jump(self, message: DiagnosticsPanel.JumpRequested) -> None:
        self.editor.go_to(message.line, message.column)
        self.editor.focus()

    def next_problem(self) -> None:
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

    # structured edits --------------------------------------------------------------------------

    def edit(self, change: Callable[[ConfigDocument], object], *, done: str) -> bool:
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
        self.request_analysis(immediate=True, inline=True)
        return True

    def _try_edit(self, change: Callable[[ConfigDocument], object]) -> tuple[str | None, str]:
        """The editor's text with ``change`` applied, or ``None`` and why it cannot be."""
        from runtime import ConfigError
        from runtime.config import ConfigEditError

        try:
            new_text, _ = edit_text(self.editor.text, change, label=self.label)
        except ConfigEditError as error:
            return None, error.message
        except ConfigError as error:
            return None, f"Fix the TOML syntax first (see Problems). {error.message}"
        except KeyError as error:
            return None, f"{error.args[0]!r} is not in {self.label} any more."
        return new_text, ""

    def check(self, change: Callable[[ConfigDocument], object]) -> str | None:
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

    def parses(self) -> bool:
        """Whether the editor's text is valid TOML (if not, a notification says why)."""
        from runtime import ConfigError
        from runtime.config import ConfigDocument

        try:
            ConfigDocument.parse(self.editor.text, label=self.label)
        except ConfigError as error:
            self._cannot_edit(error.message)
            return False
        return True

    def _cannot_edit(self, problem: str) -> None:
        self.notify(
            f"Fix the TOML syntax first (see Problems). {problem}",
            title="Cannot edit",
            severity="error",
        )

    def table(self, expert: str) -> dict[str, Any] | None:
        """The table of ``expert`` in the editor's text (``None``, with a notification, if none)."""
        from runtime import ConfigError
        from runtime.config import ConfigDocument

        try:
            return ConfigDocument.parse(self.editor.text, label=self.label).expert(expert)
        except ConfigError as error:
            self._cannot_edit(error.message)
        except KeyError:
            self.notify(f"No expert {expert!r} in the file.", title="Cannot edit", severity="error")
        return None

    def expert_keys(self) -> list[str]:
        """The experts of the editor's text (which must parse)."""
        from runtime.config import ConfigDocument

        return ConfigDocument.parse(self.editor.text, label=self.label).expert_keys()

    # saving ------------------------------------------------------------------------------------

    def save(self) -> None:
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
        from runtime.config import save_config

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
        errors = self.analysis.errors if self.analysis else 0
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
    def _save_failed(self) -> None:
        self._saving = None  # the screen says why

    # changes on disk ---------------------------------------------------------------------------

    def reload(self) -> None:
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

    def file_changed(self, data: bytes | None) -> None:
        """Take in that the file on disk now holds ``data`` (``None``: it was deleted)."""
        if data == self._disk_data:
            return  # touched, or the echo of our own save
        self._disk_changed(data)

    def _disk_changed(self, data: bytes | None, *, forced: bool = False) -> None:
        from studio.session import decode_config

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
        if not forced and self._merge(data, text):
            return
        self._conflict_data = (data, text)
        self.post_message(self.ConflictFound(self, self.editor.text, text))

    def _merge(self, data: bytes, text: str) -> bool:
        """Merge the outside change with the unsaved edits when no key changed on both sides.

        Returns:
            True when merged (the edits stay unsaved, now over the new file); False when the
            user must choose (the same key changed on both sides, or a side does not parse).
        """
        from runtime.config import three_way_merge

        outcome = three_way_merge(self._baseline, self.editor.text, text)
        if outcome.text is None:
            return False
        self._disk_data, self._disk_text = data, text
        self._replace_text(outcome.text)
        self._baseline = text
        self.dirty = self.editor.text != self._baseline
        self._stamp("merged with a change on disk")
        what = ", ".join(outcome.theirs) or "formatting"
        self.notify(
            f"{self.label} changed on disk ({what}); merged with your unsaved edits, which touch "
            "other keys. Ctrl+S saves both.",
            title="Merged",
        )
        self.post_message(ConfigReloaded(self.path, "merged"))
        self.request_analysis(immediate=True, inline=True)
        return True

    def _take_disk(self, data: bytes, text: str) -> None:
        self._disk_data, self._disk_text = data, text
        # Replaced in place, not reloaded: the editor's undo can bring back what was there.
        self._replace_text(text)
        self._baseline = self.editor.text
        self.dirty = False
        self._stamp("reloaded from disk")
        self.request_analysis(immediate=True, inline=True)

    def resolve_conflict(self, choice: Choice | None) -> None:
        """Keep the editor's text or take the newest version on disk (``None`` keeps mine)."""
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
