"""App-level messages: what workers report, and what the main screen announces.

Workers never touch widgets: they post one of these and a handler on the screen or pane that
started them owns the change. Messages that belong to one widget are nested in that widget's class
instead (Textual's way).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from textual.dom import DOMNode
from textual.message import Message
from textual.worker import Worker, WorkerState

if TYPE_CHECKING:
    from studio.session import Analysis


@dataclass
class ConfigWatchStarted(Message):
    """The file watcher is listening; changes from now on are seen."""

    path: Path


@dataclass
class ConfigFileChanged(Message):
    """perstack.toml changed on disk (modified, replaced by an atomic save, or deleted)."""

    path: Path
    data: bytes | None
    """The new content, or ``None`` when the file is gone."""


@dataclass
class ConfigReloaded(Message):
    """A change on disk was taken into the studio (or, on a conflict, the user decided)."""

    path: Path
    kept: Literal["disk", "mine", "merged"]
    """``disk``: the editor shows the file on disk; ``mine``: the unsaved edits were kept;
    ``merged``: both (the change on disk and the edits touched different keys)."""


@dataclass
class ConfigSaved(Message):
    """perstack.toml was written."""

    path: Path
    text: str
    """What was written (the editor may have moved on since)."""
    data: bytes
    """The bytes on disk now."""


@dataclass
class ConfigSaveFailed(Message):
    """Writing perstack.toml failed; nothing on disk changed."""

    path: Path
    error: str


@dataclass
class AnalysisReady(Message):
    """Diagnostics and the team outline of one version of the editor's text."""

    text: str
    """The text analysed; the result is dropped when the editor has moved on."""
    analysis: Analysis


@dataclass
class ConfigCreated(Message):
    """The empty state wrote a new perstack.toml."""

    path: Path


@dataclass
class WorkerFailed(Message):
    """A worker of a screen or widget raised: the app shows the error.

    Textual's own ``Worker.StateChanged`` does not bubble: it stays on the node that ran the
    worker, which forwards it with :func:`forward_worker_failure`.
    """

    worker: Worker[Any]


def forward_worker_failure(node: DOMNode, event: Worker.StateChanged) -> None:
    """Tell the app about a failed worker of ``node`` (call it from ``on_worker_state_changed``)."""
    if event.state == WorkerState.ERROR and event.worker.error is not None:
        node.app.post_message(WorkerFailed(event.worker))
