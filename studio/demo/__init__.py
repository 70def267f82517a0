"""The bundled demo: an example team and a scripted model that plays it out (no API key)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from runtime.testing import Reply, ScriptedModel, call, calls, reply, scripted_team

DEMO_CONFIG = Path(__file__).with_name("perstack.toml")
DEMO_EXPERT = "game-studio"
DEMO_QUERY = "Make a tiny maze game for the terminal."

_LEVEL = "#########\n#S..#...#\n#.#.#.#.#\n#.#...#E#\n#########\n"
_CODE = 'import sys\n\nMAZE = open("levels/level1.txt").read()\nprint(MAZE)\n'


def _script() -> dict[str, list[Reply]]:
    return {
        "You coordinate a tiny game studio": [
            calls(
                ("level-designer", {"query": "Design the first maze level."}),
                ("programmer", {"query": "Write a script that prints the maze."}),
                text="I'll have the level designer and the programmer work in parallel.",
            ),
            call("attemptCompletion"),
            reply(
                "The team built a maze game:\n"
                "- levels/level1.txt: a 9x5 maze from S to E (level designer)\n"
                "- src/maze.py: prints the maze (programmer)\n"
                "Run it with: python src/maze.py",
                reasoning="Both specialists reported back; summarise their files.",
            ),
        ],
        "You design levels": [
            call("writeTextFile", path="levels/level1.txt", text=_LEVEL),
            reply("Saved levels/level1.txt: a 9x5 maze with start S and exit E."),
        ],
        "You write small, readable game code": [
            call("writeTextFile", path="src/maze.py", text=_CODE),
            reply("Saved src/maze.py; it prints levels/level1.txt."),
        ],
    }


DEMO_PACE_ENV = "PERSTACK_DEMO_PACE"
"""Seconds each scripted answer of the studio's demo takes (default 0.8; 0 for no pause)."""


def demo_pace() -> float:
    """How long each answer of the demo takes in the studio, so a newcomer can watch it.

    Unpaced, the whole job was over 0.7 s after the first screen: nothing to see.
    """
    try:
        return max(0.0, float(os.environ.get(DEMO_PACE_ENV, "0.8")))
    except ValueError:
        return 0.8


def demo_script(pace: float = 0.0) -> dict[str, list[Reply]]:
    """The demo team's answers by expert marker, each starting after ``pace`` seconds."""
    return {
        marker: [dataclasses.replace(answer, delay=pace) for answer in answers]
        for marker, answers in _script().items()
    }


def demo_model(pace: float = 0.0) -> ScriptedModel:
    """A model that plays the demo team's script, whoever asks.

    Args:
        pace: Seconds before each answer starts (the studio's demo: :func:`demo_pace`).
    """
    return scripted_team(
        demo_script(pace),
        fallback=reply("The demo script has nothing more to say."),
        model_name="demo-scripted (no API key)",
    )
