"""``perstack-runtime`` / ``python -m runtime``: the bare headless engine.

``perstack-runtime run <expert> <query> [options]`` prints JSONL like ``perstack run``; with
``--no-store`` nothing is written to disk (Perstack's perstack-runtime behaviour).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``perstack-runtime``."""
    from runtime._terminal import take_no_color

    args = take_no_color(list(sys.argv[1:] if argv is None else argv))
    if args[:1] in (["--version"], ["-V"]):
        from runtime.version import __version__

        print(__version__)
        return 0
    if args[:1] != ["run"]:
        print("usage: perstack-runtime run EXPERT QUERY [options] [--no-store]", file=sys.stderr)
        return 2
    args = args[1:]
    store = "--no-store" not in args
    args = [arg for arg in args if arg != "--no-store"]
    from runtime.cli import exit_now, lean_start
    from runtime.cli import main as run_main

    if argv is None:  # a process of its own: see lean_start
        lean_start()
    code = run_main(args, prog="perstack-runtime run", store=store)
    if argv is None:  # a process of its own, not a caller's function call
        exit_now(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
