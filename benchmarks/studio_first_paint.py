"""First paint of the studio (target: under 0.5 s from process start), litellm not loaded.

Each run starts a fresh Python process that builds the app with ``make_app`` (the factory
``perstack start`` uses) on a three-expert perstack.toml, runs it headless, and exits as soon as
the main screen has been painted. Prints the wall time from spawning the process to that moment
(interpreter start, imports, compose, first frame), the in-process share, and which heavy
modules were loaded by then.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEAM = ROOT / "tests" / "fixtures" / "configs" / "team.toml"
RUNS = 7
TARGET_S = 0.5


def child(directory: str) -> None:
    """Run the studio headless until its first paint, then report and exit."""
    started = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    from studio.app import make_app
    from studio.screens.main import MainScreen

    app = make_app(cwd=Path(directory), watch=False)
    report: dict[str, object] = {}

    def painted() -> None:
        report["in_process_s"] = time.perf_counter() - started
        report["litellm"] = "litellm" in sys.modules
        report["pydantic"] = "pydantic" in sys.modules
        report["tomlkit"] = "tomlkit" in sys.modules
        print(json.dumps(report), flush=True)
        app.exit()

    async def first_paint(pilot) -> None:  # type: ignore[no-untyped-def]
        while not (isinstance(app.screen, MainScreen) and app.screen.is_mounted):
            await pilot.pause()
        # Runs once the screen has been refreshed, i.e. the first frame of the main screen.
        app.screen.call_after_refresh(painted)

    app.run(headless=True, size=(120, 40), auto_pilot=first_paint)


def main() -> None:
    walls: list[float] = []
    inside: list[float] = []
    loaded: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(TEAM, Path(tmp) / "perstack.toml")
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
        for _ in range(RUNS):
            start = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, __file__, "--child", tmp],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=env,
            )
            assert process.stdout is not None
            line = process.stdout.readline()
            walls.append(time.perf_counter() - start)
            process.wait(timeout=30)
            loaded = json.loads(line)
            inside.append(float(loaded["in_process_s"]))  # type: ignore[arg-type]
    median = statistics.median(walls)
    print(
        f"studio first paint (process start -> main screen painted): median "
        f"{median * 1000:.0f} ms, min {min(walls) * 1000:.0f} ms over {RUNS} runs "
        f"(target < {TARGET_S * 1000:.0f} ms: {'ok' if median < TARGET_S else 'MISSED'})"
    )
    inside_ms = statistics.median(inside) * 1000
    print(f"  of which in the process after interpreter start: median {inside_ms:.0f} ms")
    print(
        "  loaded by first paint: "
        + ", ".join(
            f"{name}={'yes' if loaded.get(name) else 'no'}"
            for name in ("litellm", "pydantic", "tomlkit")
        )
        + " (pydantic: the diagnostics worker, started once the first frame is drawn)"
    )
    if loaded.get("litellm"):
        sys.exit("litellm was imported during start-up")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
