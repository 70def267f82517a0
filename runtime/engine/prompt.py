"""The system prompt of a fresh run (§5.8 of the reference, in our own words).

Laid out for prompt caching: a stable prefix (how the expert works, its instruction, skill
rules, delegates) and a short volatile tail (working directory and date) at the very end. The
model client sends tools, then this prompt, then the messages, so the tools and everything up to
the tail are the same bytes in every run of an expert and a provider's prompt cache (or a local
server's prefix cache) can reuse them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


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
- The environment you run in is described at the end."""

# Date only: the time of day is rarely needed (exec can ask the clock), and a prompt that
# changes once a day lets a prefix cache reuse all of it across the day's runs.
_ENVIRONMENT = """Environment:
- Working directory: {cwd}
- Current date: {date} (UTC)"""

_SEPARATOR = "\n\n---\n\n"


def expert_sections(prompt: str) -> str:
    """A system prompt without its first section, which is the same for every expert.

    What tells one expert's prompt from another's starts there.
    """
    _, found, rest = prompt.partition(_SEPARATOR)
    return rest if found else prompt


def build_system_prompt(
    *,
    instruction: str,
    now: datetime,
    cwd: str,
    skill_rules: Sequence[tuple[str, str]] = (),
    delegates: Sequence[DelegateInfo] = (),
) -> str:
    """Assemble the system prompt: working rules, instruction, skill rules, delegates, environment.

    Args:
        instruction: The expert's instruction, verbatim.
        now: The run's start time (UTC); only its date is written.
        cwd: The working directory (the workspace).
        skill_rules: ``(skill name, rule)`` for each skill that has a rule.
        delegates: The experts this one can delegate to.

    Returns:
        The prompt. Everything before the final "Environment" section depends only on the
        expert's definition, so it is identical across runs.
    """
    sections = [_META, instruction]
    if skill_rules:
        sections.append("\n\n".join(f'"{name}" skill rules:\n{rule}' for name, rule in skill_rules))
    if delegates:
        lines = [
            "You can hand tasks to the following experts by calling the expert's name as a tool:"
        ]
        for delegate in delegates:
            lines.append(f'About "{delegate.name}":\n{delegate.description}')
        sections.append("\n\n".join(lines))
    sections.append(_ENVIRONMENT.format(cwd=cwd, date=now.date().isoformat()))
    return _SEPARATOR.join(sections)
