"""``perstack log``: inspect stored jobs, runs, checkpoints and events (§11 of the reference).

The job's events, runs and delegation tree come from :mod:`runtime.jobs`; :mod:`runtime.log.filters`
parses ``--step`` and ``--filter``, :mod:`runtime.log.query` selects, :mod:`runtime.log.render`
formats (text or JSON), :mod:`runtime.log.cli` is the command line. Nothing here imports a UI
toolkit or litellm: the command must start fast and stay headless.
"""

from typing import TYPE_CHECKING, Any

from runtime.log.filters import FilterExpression, LogError, StepFilter, parse_filter, parse_step
from runtime.log.query import LogQuery, LogResult, build_log

if TYPE_CHECKING:
    from runtime.log.cli import build_parser, main


def __getattr__(name: str) -> Any:
    # Not imported with the package: ``python -m runtime.log.cli`` would then find its own
    # module already loaded.
    if name in ("main", "build_parser"):
        from runtime.log import cli

        return getattr(cli, name)
    raise AttributeError(f"module 'runtime.log' has no attribute {name!r}")


__all__ = [
    "FilterExpression",
    "LogError",
    "LogQuery",
    "LogResult",
    "StepFilter",
    "build_log",
    "build_parser",
    "main",
    "parse_filter",
    "parse_step",
]
