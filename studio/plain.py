"""The plain-text live view: one readable line per step, indented by delegation depth.

Used by ``perstack start --no-tui`` and whenever there is no terminal. It reads the same events
``perstack run`` prints.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from runtime import INTERRUPTED_ERROR, PerstackEvent, tool_result_failed
from runtime.cli import use_color


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _args_preview(args: dict[str, Any], limit: int = 60) -> str:
    inner = ", ".join(
        f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in args.items()
    )
    return _short(inner, limit)


def _cost(usage: Any) -> str:
    tokens = f"{usage.total_tokens:,} tokens"
    return f"{tokens}, ${usage.cost_usd:.4f}" if usage.cost_usd is not None else tokens


class PlainView:
    """Turns events into lines on ``out``. Call it as an event listener.

    Colour follows ``perstack log``'s rule (a terminal, and no ``NO_COLOR``) unless ``color``
    says otherwise.
    """

    def __init__(self, out: TextIO | None = None, *, color: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.color = use_color(self.out) if color is None else color
        self._depth: dict[str, int] = {}
        self._fanned_out: set[str] = set()
        """Runs that called several delegates at once."""
        self._side_by_side: dict[str, str] = {}
        """Delegate runs started together with others (their lines interleave), with experts."""
        self.final_text: str | None = None

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def _line(self, run_id: str, text: str) -> None:
        self.out.write("  " * self._depth.get(run_id, 0) + text + "\n")
        self.out.flush()

    def _step_line(self, run_id: str, text: str) -> None:
        # Delegates running side by side interleave their lines: each names its expert.
        if run_id in self._side_by_side:
            text = f"  [{self._side_by_side[run_id]}]{text[1:]}"
        self._line(run_id, text)

    def __call__(self, event: PerstackEvent) -> None:
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is not None:
            handler(event)

    def _on_startRun(self, event: Any) -> None:
        parent = event.initial_checkpoint.delegated_by
        if parent is not None:
            self._depth[event.run_id] = self._depth.get(parent.run_id, 0) + 1
            if parent.run_id in self._fanned_out:
                self._side_by_side[event.run_id] = event.expert_key
        query = next(
            (
                p.text
                for m in event.input_messages
                if m.type == "userMessage"
                for p in m.contents
                if p.type == "textPart"
            ),
            "",
        )
        head = self._paint(f"▶ {event.expert_key}", "1;36")
        resumed = {
            "stoppedByDelegate": "(resumed with the delegates' results)",
            "stoppedByInteractiveTool": "(resumed with your answer)",
        }.get(event.initial_checkpoint.status, "")
        text = _short(query, 70) if query else resumed
        self._line(event.run_id, f"{head} [step {event.step_number}] {text}")

    def _on_callTools(self, event: Any) -> None:
        for call in event.tool_calls:
            self._step_line(event.run_id, f"  → {call.tool_name}({_args_preview(call.args)})")

    def _on_callDelegate(self, event: Any) -> None:
        if len(event.tool_calls) > 1:
            self._fanned_out.add(event.run_id)
        for call in event.tool_calls:
            self._step_line(
                event.run_id,
                f"  ⇢ delegate to {call.skill_name}: {_short(str(call.args.get('query', '')), 60)}",
            )

    def _on_resolveToolResults(self, event: Any) -> None:
        for result in event.tool_results:
            text = next((p.text for p in result.result if p.type == "textPart"), "")
            failed = tool_result_failed(text, is_error=result.is_error)  # as perstack log marks it
            mark = self._paint("✗", "31") if failed else self._paint("✓", "32")
            self._step_line(event.run_id, f"  {mark} {result.tool_name}: {_short(text, 60)}")

    def _on_retry(self, event: Any) -> None:
        self._line(event.run_id, self._paint(f"  ↻ retry: {_short(event.reason, 70)}", "33"))

    def _on_callInteractiveTool(self, event: Any) -> None:
        call = event.tool_call
        self._step_line(event.run_id, f"  ? {call.tool_name}({_args_preview(call.args)})")

    def _on_stopRunByInteractiveTool(self, event: Any) -> None:
        self._line(event.run_id, self._paint("⏸ waiting for your answer", "33"))

    def _on_stopRunByExceededMaxSteps(self, event: Any) -> None:
        self._line(
            event.run_id,
            self._paint(
                f"■ {event.expert_key} stopped: max steps reached at step {event.step_number}", "33"
            ),
        )

    def _on_stopRunByError(self, event: Any) -> None:
        if event.error.name == INTERRUPTED_ERROR:
            self._line(
                event.run_id,
                self._paint(f"■ {event.expert_key} interrupted at step {event.step_number}", "33"),
            )
            return
        self._line(
            event.run_id,
            self._paint(
                f"✖ {event.expert_key} stopped by error: {event.error.name}: {event.error.message}",
                "31",
            ),
        )

    def _on_completeRun(self, event: Any) -> None:
        usage = event.checkpoint.usage
        done = self._paint(f"✔ {event.expert_key} done", "1;32")
        self._line(event.run_id, f"{done} [step {event.step_number}, {_cost(usage)}]")
        if event.checkpoint.delegated_by is None:
            self.final_text = event.text
            self.out.write("\n" + event.text + "\n")
            self.out.flush()
        else:
            self._line(event.run_id, f"  ⇠ {_short(event.text, 70)}")
