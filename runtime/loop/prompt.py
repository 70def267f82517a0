"""The system prompt of a fresh run (§5.8 of the reference, in our own words)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DelegateInfo:
    """What a parent is told about one of its delegates."""

    name: str
    description: str


_META = """You are Perstack, an AI expert that carries out the user's task with the tools \
available to you. What follows first is how you work; the expert's own instruction comes after it.

How you work:
- Read the user's first message to decide what to do. Form a hypothesis, act, check the result, \
and adjust.
- You act only by calling tools. Keep calling tools until the task is done: a reply without a \
tool call ends your work.
- Each turn: look at what happened so far, choose the next tool call, wait for its result, and \
repeat.
- When the task is finished, or it is outside your expertise, or the request cannot be \
understood, call attemptCompletion on its own, with no text. You will then be asked for the final \
result in a separate reply.
- If a request is outside your expertise, say what your expertise is in the final result.

Environment:
- Current time: {now}
- Working directory: {cwd}"""

_SEPARATOR = "\n\n---\n\n"


def build_system_prompt(
    *,
    instruction: str,
    now_iso: str,
    cwd: str,
    skill_rules: Sequence[tuple[str, str]] = (),
    delegates: Sequence[DelegateInfo] = (),
) -> str:
    """Assemble the system prompt: working rules, instruction, skill rules, delegates."""
    sections = [_META.format(now=now_iso, cwd=cwd), instruction]
    if skill_rules:
        sections.append("\n\n".join(f'"{name}" skill rules:\n{rule}' for name, rule in skill_rules))
    if delegates:
        lines = [
            "You can hand tasks to the following experts by calling the expert's name as a tool:"
        ]
        for delegate in delegates:
            lines.append(f'About "{delegate.name}":\n{delegate.description}')
        sections.append("\n\n".join(lines))
    return _SEPARATOR.join(sections)
