"""Event type names that readers need without building the event models.

``perstack log`` and the jobs API classify stored lines by their ``type`` alone; importing the
pydantic event models for that would cost ~30 ms of every ``perstack log``.
"""

from __future__ import annotations

TERMINAL_EVENT_TYPES = frozenset(
    {
        "completeRun",
        "stopRunByInteractiveTool",
        "stopRunByDelegate",
        "stopRunByExceededMaxSteps",
        "stopRunByError",
    }
)
"""Event types that end a run segment and carry its final checkpoint."""
