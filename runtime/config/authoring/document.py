"""The public editing engine, assembled from the edits of each part of the file."""

from __future__ import annotations

from runtime.config.authoring.experts import ExpertEdits
from runtime.config.authoring.settings import SettingEdits


class ConfigDocument(ExpertEdits, SettingEdits):
    """A perstack.toml being edited.

    Every change goes through tomlkit on the real document, so comments, key order, blank lines,
    quoting and \"\"\" strings the user did not touch stay byte-identical. Each edit is verified
    with ``tomllib`` before it is kept; a refused edit raises :class:`ConfigEditError` and leaves
    the document as it was.
    """
