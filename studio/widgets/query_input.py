"""The query box under the step tree: a new query, a follow-up, an answer or a resume."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.message import Message
from textual.widgets import Input


class QueryInput(Input):
    """One line for what the expert should do next; Enter posts :class:`QueryInput.Asked`.

    The placeholder says what Enter will do (:meth:`prompt`), since that depends on how the last
    run ended. The screen clears the box once it has taken the query.
    """

    @dataclass
    class Asked(Message):
        """The user pressed Enter on a query that is not blank."""

        input: QueryInput
        query: str
        """The query, stripped."""

        @property
        def control(self) -> QueryInput:
            """The box that sent the message."""
            return self.input

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="Ask the expert… (Enter runs)", id=id)

    def prompt(self, text: str) -> None:
        """Say what Enter does now, as the placeholder."""
        self.placeholder = text

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        query = event.value.strip()
        if query:
            self.post_message(self.Asked(self, query))
