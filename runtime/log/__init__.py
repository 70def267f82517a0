"""``perstack log``: inspect stored jobs, runs, checkpoints and events (§11 of the reference).

:mod:`runtime.log.query` loads and filters, :mod:`runtime.log.render` formats (text or JSON),
:mod:`runtime.log.cli` is the command line. Nothing here imports a UI toolkit or litellm: the
command must start fast and stay headless.
"""

from runtime.log.query import (
    FilterExpression,
    LogError,
    LogQuery,
    LogResult,
    StepFilter,
    build_log,
    parse_filter,
    parse_step,
)

__all__ = [
    "FilterExpression",
    "LogError",
    "LogQuery",
    "LogResult",
    "StepFilter",
    "build_log",
    "parse_filter",
    "parse_step",
]
