"""Edits of the top-level settings of perstack.toml (model, maxSteps, envPath, ...)."""

from __future__ import annotations

from runtime.config.authoring.checks import ConfigEditError
from runtime.config.authoring.core import DocumentCore
from runtime.config.schema import PerstackConfig


class SettingEdits(DocumentCore):
    """The edits of the keys above the first table."""

    def set_top_level(self, field: str, value: str | int | list[str] | None) -> None:
        """Set or remove a top-level setting (model, reasoningBudget, maxSteps, envPath, ...).

        A new key is written with the other top-level keys, before the first table header, so
        it really is top-level (a key written after ``[provider]`` would belong to it).

        Args:
            field: The camelCase key, e.g. ``model``, ``maxSteps``, ``envPath``.
            value: The value (string, integer, list of strings), or ``None`` to remove the key.

        Raises:
            ConfigEditError: ``field`` is not a top-level setting of perstack.toml (or is a
                table: experts, provider).
        """
        known = [
            info.alias or name
            for name, info in PerstackConfig.model_fields.items()
            if name not in ("experts", "provider")
        ]
        if field not in known:
            raise ConfigEditError(
                f"{field!r} is not a top-level setting: use one of {', '.join(known)}."
            )
        self._set_field((), field, value, ())
