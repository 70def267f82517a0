"""``perstack start`` in a terminal: the full-screen studio."""

from __future__ import annotations

import sys
from pathlib import Path

from studio.settings import Settings


def run_tui(
    *, config: str | None = None, cwd: Path | None = None, settings: Settings | None = None
) -> int:
    """Run the studio until the user quits.

    Args:
        config: The ``--config`` value (a local path); ``None`` searches upward from ``cwd``.
        cwd: The working directory (default: the process's).
        settings: The user's settings (theme, keys, confirmations); the defaults when None.

    Returns:
        The exit code: 0 after a normal quit, 2 when the file cannot be opened.
    """
    from runtime import PerstackError
    from studio.app import make_app

    settings = settings or Settings()
    try:
        app = make_app(config, cwd=cwd, theme=settings.theme, keymap=settings.keymap)
        app.settings = settings
    except PerstackError as error:
        print(f"perstack: {error.title}: {error.message}", file=sys.stderr)
        return 2
    result = app.run()
    return app.return_code if app.return_code is not None else (result or 0)
