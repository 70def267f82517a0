"""What a running expert reports to the studio: one message per event, then how the run ended.

The run controller's worker posts these to the screen that started the run; only that screen's
handlers change widgets (house style §4.4: one envelope message for every runtime event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from runtime import Checkpoint, PerstackEvent


@dataclass
class RunEventReceived(Message):
    """The runtime emitted an event (the same one ``perstack run`` prints)."""

    event: PerstackEvent


@dataclass
class RunStarted(Message):
    """A run was handed to the worker (before its first event)."""

    query: str
    job_id: str | None
    """The job it continues, or ``None`` for a new job."""


@dataclass
class RunFinished(Message):
    """The run stopped on its own; ``checkpoint.status`` says how."""

    checkpoint: Checkpoint


@dataclass
class RunFailed(Message):
    """The run could not start or crashed (a missing API key, a bad config, a bug)."""

    error: BaseException


@dataclass
class RunCancelled(Message):
    """The user cancelled the run; the runtime stored its last checkpoint first."""

    job_id: str | None
