"""Package namespaces whose names load on first use (PEP 562), for the packages' public APIs.

``import runtime`` and the engine's ``import runtime.jobs.store`` must not pay for every module a
namespace re-exports (pydantic models, tomlkit, the readers): each name is imported from its
module the first time it is asked for, then kept in the package's globals.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``exports[name]`` and returns its ``name``.

    Args:
        package: The package's name, for the error of an unknown name.
        exports: Public name → the module that defines it.
        namespace: The package's ``globals()``, where a loaded name is kept.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
