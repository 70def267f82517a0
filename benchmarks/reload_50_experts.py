"""Hot reload of a 50-expert perstack.toml (issue: studio part 1, target < 100 ms).

When perstack.toml changes on disk the studio parses it for editing, diagnoses it and loads it:
``ConfigDocument.parse`` + ``diagnose`` + ``parse_config``. Prints the median and best time of
each step and of the whole, for a clean team and for one whose every expert has a warning
(a registry delegate), plus ``diagnose`` alone (target < 20 ms: it runs on every typing pause)
and the cost of the first structural edit, which builds the tomlkit tree the reload skips.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.config.authoring import ConfigDocument  # noqa: E402
from runtime.config.diagnostics import diagnose  # noqa: E402
from runtime.config.loader import parse_config  # noqa: E402

RUNS = 30


def team(count: int = 50, *, registry: bool = False) -> str:
    """A team file like create-expert writes: comments, multi-line instructions, skills."""
    parts = [
        "# A generated team.\n"
        'model = "claude-sonnet-4-5"\nmaxSteps = 60\n\n'
        '[provider]\nproviderName = "anthropic"\n'
    ]
    for index in range(count):
        delegates = [f'"expert-{n}"' for n in range(index + 1, min(count, index + 3))]
        if registry:
            delegates.append('"@market/fact-checker"')
        parts.append(
            f"\n# Expert {index}: one part of the work.\n"
            f'[experts."expert-{index}"]\n'
            f'version = "1.0.{index}"\n'
            f'description = "Handles part {index} of the work."\n'
            'instruction = """\n'
            f"You are expert {index}.\n"
            'Do the work carefully, quote "sources" and escape \\\\ paths.\n'
            'Report back when done.\n"""\n'
            f"delegates = [{', '.join(delegates)}]\n"
            f'tags = ["team", "t{index}"]\n\n'
            f'[experts."expert-{index}".skills."@perstack/base"]\n'
            'type = "mcpStdioSkill"\ncommand = "npx"\npackageName = "@perstack/base"\n'
            'pick = ["readTextFile", "writeTextFile", "attemptCompletion"]\n'
        )
        if index % 5 == 0:
            parts.append(
                f'\n[experts."expert-{index}".skills."github"]\n'
                'type = "mcpStdioSkill"\ncommand = "npx"\n'
                'args = ["-y", "@modelcontextprotocol/server-github"]\n'
                'requiredEnv = ["GITHUB_TOKEN"]\n'
            )
    return "".join(parts)


def timed(step: Callable[[], object]) -> list[float]:
    step()  # warm caches (pydantic validators, regexes)
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
    return times


def report(label: str, times: list[float], target: float | None = None) -> None:
    median = statistics.median(times)
    verdict = "" if target is None else ("  ok" if median < target else f"  OVER {target:g} ms")
    print(f"  {label:<38} median {median:6.1f} ms   min {min(times):6.1f} ms{verdict}")


def reload(text: str) -> None:
    ConfigDocument.parse(text)
    diagnose(text)
    parse_config(text)


def first_edit(text: str) -> None:
    document = ConfigDocument.parse(text)
    document.add_skill(
        "expert-7", "search", {"type": "mcpSseSkill", "endpoint": "https://s.example.com/sse"}
    )


def main() -> None:
    for registry in (False, True):
        text = team(registry=registry)
        found = diagnose(text)
        kind = "registry delegates (50 warnings)" if registry else "clean"
        print(f"50 experts, {text.count(chr(10))} lines, {kind}: {len(found)} diagnostics")
        report("ConfigDocument.parse", timed(lambda t=text: ConfigDocument.parse(t)))
        report("diagnose", timed(lambda t=text: diagnose(t)), target=20)
        report("parse_config", timed(lambda t=text: parse_config(t)))
        report("reload total (parse+diagnose+load)", timed(lambda t=text: reload(t)), target=100)
        report("first structural edit (tomlkit tree)", timed(lambda t=text: first_edit(t)))


if __name__ == "__main__":
    main()
