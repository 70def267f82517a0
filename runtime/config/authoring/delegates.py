"""Keeping ``delegates`` in step when an expert is renamed or deleted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tomlkit.items import Array
from tomlkit.toml_document import TOMLDocument

from runtime.config.authoring.checks import ConfigEditError
from runtime.config.authoring.layout import Scope, flatten
from runtime.config.authoring.values import update_array
from runtime.config.schema import split_expert_ref


def rewrite_delegates(
    document: TOMLDocument,
    experts: Mapping[str, Any],
    old: str,
    new: str | None,
    expected: dict[str, Any],
) -> list[str]:
    """Rename (or, with ``new`` None, remove) ``old`` in every expert's delegates.

    A reference keeps its version (``old@1.0.0`` becomes ``new@1.0.0``) and each array changes
    element by element, so the comments of a multi-line ``delegates`` stay.

    Args:
        document: The tomlkit document, already renamed (or with ``old`` deleted).
        experts: The experts as parsed before the edit.
        old: The expert key renamed or deleted.
        new: Its new key, or None when it was deleted.
        expected: The data the edit must give; its delegates are updated to match.

    Returns:
        The (new) keys of the experts whose delegates changed, in file order.

    Raises:
        ConfigEditError: A delegates array to change is not where the document has it.
    """
    changed: list[str] = []
    scopes: list[Scope] | None = None  # element edits do not change the structure
    for key, table in experts.items():
        delegates = table.get("delegates") if isinstance(table, dict) else None
        if not isinstance(delegates, list):
            continue
        hits = [
            index
            for index, ref in enumerate(delegates)
            if isinstance(ref, str) and split_expert_ref(ref)[0] == old
        ]
        if not hits:
            continue
        owner = new if (new is not None and key == old) else key
        if key == old and new is None:
            continue  # the deleted expert itself
        changed.append(owner)
        values = list(delegates)
        for index in reversed(hits):
            if new is None:
                del values[index]
            else:
                values[index] = new + (
                    f"@{suffix}" if (suffix := split_expert_ref(values[index])[1]) else ""
                )
        expected["experts"][owner]["delegates"] = values
        if scopes is None:
            scopes = flatten(document)[1]
        for scope in (scope for scope in scopes if scope.path == ("experts", owner)):
            array = next(
                (
                    item
                    for item_key, item in scope.container.body
                    if item_key is not None and item_key.key == "delegates"
                ),
                None,
            )
            if isinstance(array, Array):
                update_array(array, values)
                break
        else:
            raise ConfigEditError(f'Cannot find the delegates of "{key}" in the document.')
    return changed
