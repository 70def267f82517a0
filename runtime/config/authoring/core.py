"""The document being edited: its text, its data, its tomlkit tree, and the checked edit.

Every edit goes through :meth:`DocumentCore._edit`: the change is made on the tomlkit tree of
the real text, the new text is parsed with ``tomllib`` (the parser the runtime uses) and must
give exactly the data the edit means, or the edit is refused and the document left as it was.
A tomlkit corner case can therefore never silently corrupt a file.
"""

from __future__ import annotations

import contextlib
import copy
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Self

import tomlkit
from tomlkit.exceptions import ParseError, TOMLKitError
from tomlkit.toml_document import TOMLDocument

from runtime.config.authoring.checks import ConfigEditError
from runtime.config.authoring.fields import write_field
from runtime.config.authoring.layout import KeyPath
from runtime.config.limits import check_limits
from runtime.config.loader import parse_config
from runtime.config.problems import CONFIG_FILE_NAME, ConfigFileError, ConfigProblem
from runtime.errors import ConfigError

_LONE_LF_RE = re.compile(r"(?<!\r)\n")


def plain_experts(data: Mapping[str, Any]) -> dict[str, Any]:
    """The ``experts`` table of parsed data; empty when there is none (or it is not a table)."""
    experts = data.get("experts")
    return experts if isinstance(experts, dict) else {}


class DocumentCore:
    """A perstack.toml's text and data, how to read them, and the checked edit behind every change.

    The edits themselves are in mixins grouped by what they edit; :class:`ConfigDocument`
    (:mod:`runtime.config.authoring.document`) assembles them.
    """

    def __init__(self, text: str, data: dict[str, Any], *, label: str = CONFIG_FILE_NAME) -> None:
        """Wrap text that ``tomllib`` parsed to ``data``; use :meth:`parse` instead."""
        self._text = text
        self._data = data
        self._label = label
        self._tree: TOMLDocument | None = None
        # A file written with CRLF everywhere keeps CRLF on the lines edits add.
        self._crlf = "\r\n" in text and _LONE_LF_RE.search(text) is None
        self._stale = False
        """Set when a container body was changed directly: tomlkit's indexes must be rebuilt."""

    @property
    def _document(self) -> TOMLDocument:
        """The tomlkit tree of the current text, built on first use.

        tomlkit parses ten times slower than ``tomllib``; reading a document (hot reload,
        outline, the forms' initial values) never needs it, only the first edit does.

        Raises:
            ConfigError: tomlkit rejects the text or cannot write it back byte for byte.
        """
        if self._tree is None:
            try:
                tree = tomlkit.parse(self._text)
            except (ParseError, TOMLKitError) as error:
                line = getattr(error, "line", None)
                raise ConfigFileError(
                    [ConfigProblem(line, "", f"cannot be edited: {error}", self._label)],
                    label=self._label,
                ) from None
            if tree.as_string() != self._text:
                raise ConfigError(
                    f"{self._label} cannot be edited with forms: the TOML library would not "
                    "write it back unchanged. Edit the text instead."
                )
            self._tree = tree
        return self._tree

    # Reading ---------------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, *, label: str = CONFIG_FILE_NAME) -> Self:
        """Parse perstack.toml text for editing.

        Only the TOML must be valid: a file with schema errors (a missing instruction, an
        unknown delegate) can be edited, which is how it gets fixed. Parsing is as cheap as
        ``tomllib``: the tomlkit tree edits work on is built on the first edit, which raises
        ``ConfigError`` in the rare case tomlkit cannot reproduce the text byte for byte.

        Args:
            text: The file's text.
            label: How to name the file in messages.

        Returns:
            The document.

        Raises:
            ConfigError: The text is not valid TOML (a ``ConfigFileError`` whose problem names
                the line).
        """
        # Before any parser: a file nested a thousand deep crashes tomllib, and one with a key
        # of thousands of dotted parts takes seconds (the studio reparses on every save).
        check_limits(text, label)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            # The loader words syntax errors best (line, column, the fix for common mistakes).
            parse_config(text, path_label=label)
            raise ConfigFileError(  # pragma: no cover - parse_config raises for this text
                [ConfigProblem(None, "", f"invalid TOML: {error}", label)], label=label
            ) from None
        return cls(text, data, label=label)

    def dumps(self) -> str:
        """The document's text; the parsed text itself when nothing was changed."""
        return self._text

    def data(self) -> dict[str, Any]:
        """The whole document as plain Python data (as the runtime parses it)."""
        return copy.deepcopy(self._data)

    def expert_keys(self) -> list[str]:
        """The keys of the ``[experts."<key>"]`` tables, in file order."""
        return list(plain_experts(self._data))

    def expert(self, key: str) -> dict[str, Any]:
        """One expert table as plain Python data (a copy: changing it changes nothing).

        Args:
            key: The expert key.

        Returns:
            The table with Perstack's camelCase keys, skills included.

        Raises:
            KeyError: No expert ``key`` is defined.
        """
        experts = plain_experts(self._data)
        if key not in experts:
            raise KeyError(key)
        table = experts[key]
        return copy.deepcopy(table) if isinstance(table, dict) else {}

    # Transactions ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """Undo every step of a compound edit when one of them fails."""
        saved = (self._text, self._data)
        try:
            yield
        except BaseException:
            self._text, self._data = saved
            self._tree = None  # steps that succeeded changed it in place: rebuild on next use
            raise

    @contextlib.contextmanager
    def _edit(
        self,
        expected: dict[str, Any],
        *,
        reparse: bool,
        empty_parent: dict[str, Any] | None = None,
    ) -> Iterator[None]:
        """Make one change on the tomlkit document, then keep it only if it means ``expected``.

        ``expected`` may be completed by the body; it is compared on exit. ``empty_parent`` is
        also accepted when the edit emptied an implicit table, which then disappears.
        Structural edits change container bodies directly, which leaves tomlkit's indexes
        stale: ``reparse`` rebuilds the document from the new text.
        """
        self._stale = reparse
        try:
            yield
            text = self._document.as_string()
            if self._crlf:
                text = _LONE_LF_RE.sub("\r\n", text)
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as error:
                raise ConfigEditError(
                    f"The edit was not applied: it would make the file invalid TOML ({error})."
                ) from None
            if data != expected and not (empty_parent is not None and data == empty_parent):
                raise ConfigEditError(
                    "The edit was not applied: it would change more than asked "
                    "(an unusual layout of the file). Make this change in the text editor."
                )
        except (TypeError, TOMLKitError) as error:
            # tomlkit refusing a value (e.g. None inside a list): the caller's value is wrong.
            self._tree = None
            raise ConfigEditError(f"The edit was not applied: {error}") from None
        except BaseException:
            # The tomlkit tree may be half-changed: rebuild it from the last good text.
            self._tree = None
            raise
        if self._stale or text != self._document.as_string():
            # Rebuilt from the new text on the next edit (not now: many callers make one edit).
            self._tree = None
        self._text = text
        self._data = data

    # Lookups ---------------------------------------------------------------------------------

    def _require_expert(self, key: str) -> dict[str, Any]:
        experts = plain_experts(self._data)
        if key not in experts:
            defined = ", ".join(experts) or "none"
            raise ConfigEditError(f'No expert "{key}" in the file (defined: {defined}).')
        table = experts[key]
        if not isinstance(table, dict):
            raise ConfigEditError(f'experts."{key}" is not a table.')
        return table

    def _require_skill(self, expert: str, name: str) -> dict[str, Any]:
        skills = self._require_expert(expert).get("skills")
        if not isinstance(skills, dict) or name not in skills:
            raise ConfigEditError(f'Expert "{expert}" has no skill "{name}".')
        return skills

    def _lookup(self, path: KeyPath) -> dict[str, Any]:
        target: Any = self._data
        for part in path:
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return target if isinstance(target, dict) else {}

    # Fields ----------------------------------------------------------------------------------

    def _set_field(self, path: KeyPath, field: str, value: Any, order: Sequence[str]) -> None:
        """Set (or, with None, remove) one key of the table at ``path``, if it changes."""
        expected = copy.deepcopy(self._data)
        target: dict[str, Any] = expected
        for part in path:
            target = target[part]
        if value is None:
            if field not in target:
                return
            del target[field]
        else:
            target[field] = copy.deepcopy(list(value) if isinstance(value, tuple) else value)
            if field in target and self._lookup(path).get(field) == target[field]:
                return
        with self._edit(expected, reparse=False):
            if write_field(self._document, path, field, value, order):
                self._stale = True
