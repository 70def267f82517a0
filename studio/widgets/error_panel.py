"""The error panel: why the last run failed, above the query box until the next run starts."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class ErrorPanel(Static):
    """A run's failure: a bold title and the message, hidden while there is none."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.display = False
        self.error: BaseException | None = None
        """The error shown."""

    def show(self, error: BaseException) -> tuple[str, str]:
        """Show ``error``; returns its title and message (for a toast)."""
        from runtime import PerstackError

        self.error = error
        if isinstance(error, PerstackError):
            title, body = error.title, error.message
        else:
            title, body = "The run failed", f"{type(error).__name__}: {error}"
        self.update(Text.assemble((f"✗ {title}\n", "bold"), body))
        self.display = True
        return title, body

    def clear(self) -> None:
        """Hide the panel."""
        self.error = None
        self.display = False
