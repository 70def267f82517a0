"""Merging two edits of one perstack.toml: unsaved edits in an editor and a change on disk.

Both sides started from the same text (``base``). A key that only one side changed takes that
side's value; a key both changed to different values is a conflict, which the caller asks the
user about. The keys are the top-level settings and each field of each expert (a whole expert
when one side added or deleted it), so an outside edit of one expert never overwrites unsaved
edits of another. The merged text is the file on disk with the editor's changes applied
through :class:`ConfigDocument`, so the disk's comments and layout are kept; an edit that is
not a key change (a comment, the layout) cannot be carried over that way and is a conflict.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any

from runtime.config.authoring.checks import ConfigEditError
from runtime.config.authoring.document import ConfigDocument

_MISSING: Any = object()


@dataclass(frozen=True)
class MergeOutcome:
    """What :func:`three_way_merge` made of the two edits.

    Attributes:
        text: The merged document, or None when the edits conflict.
        conflicts: Keys both sides changed differently (``model``, ``experts.writer.instruction``).
        theirs: Keys the change on disk brought in (for telling the user what was merged).
    """

    text: str | None
    conflicts: tuple[str, ...] = ()
    theirs: tuple[str, ...] = ()


def three_way_merge(base: str, mine: str, theirs: str) -> MergeOutcome:
    """Merge ``mine`` (unsaved edits of ``base``) into ``theirs`` (``base`` changed on disk).

    Returns:
        The merged text when no key was changed on both sides, else the conflicting keys. A
        side that is not valid TOML, or a change the document editor cannot apply key by key
        (a ``[provider]`` table edited on one side), is a conflict on the whole file.
    """
    try:
        b, m, t = (tomllib.loads(text) for text in (base, mine, theirs))
    except tomllib.TOMLDecodeError:
        return MergeOutcome(None, ("the file",))
    conflicts: list[str] = []
    brought: list[str] = []
    top: dict[str, Any] = {}
    for key in sorted((set(b) | set(m) | set(t)) - {"experts"}):
        choice = _pick(key, b.get(key, _MISSING), m.get(key, _MISSING), t.get(key, _MISSING))
        if choice is None:
            conflicts.append(key)
        elif choice[0] == "theirs":
            brought.append(key)
        elif choice[0] == "mine":
            if isinstance(choice[1], dict):
                conflicts.append(key)  # a table: not settable key by key here
            else:
                top[key] = choice[1]
    # Expert tables to set on the disk's text (its version with my changed fields), and the
    # same on the base text, which must give back my text exactly.
    experts: dict[str, Any] = {}
    my_experts: dict[str, Any] = {}
    b_ex, m_ex, t_ex = (_experts(side) for side in (b, m, t))
    for name in sorted(set(b_ex) | set(m_ex) | set(t_ex)):
        be, me, te = (side.get(name, _MISSING) for side in (b_ex, m_ex, t_ex))
        if me == be or me == te:
            if te != be:
                brought.append(f"experts.{name}")
            continue
        if be is _MISSING or me is _MISSING or te is _MISSING:
            # Added or deleted on my side: fine when the disk left it as it was.
            if te == be:
                experts[name] = my_experts[name] = me
            else:
                conflicts.append(f"experts.{name}")
            continue
        merged, mine_only = dict(te), dict(be)
        for field in sorted(set(be) | set(me) | set(te)):
            choice = _pick(
                field, be.get(field, _MISSING), me.get(field, _MISSING), te.get(field, _MISSING)
            )
            if choice is None:
                conflicts.append(f"experts.{name}.{field}")
            elif choice[0] == "mine":
                for table in (merged, mine_only):
                    if choice[1] is _MISSING:
                        table.pop(field, None)
                    else:
                        table[field] = choice[1]
            elif choice[0] == "theirs":
                brought.append(f"experts.{name}.{field}")
        experts[name] = merged
        my_experts[name] = mine_only
    if conflicts:
        return MergeOutcome(None, tuple(conflicts), tuple(brought))
    try:
        # Only key changes carry over. Edits they do not account for (a comment, a layout
        # change) would be lost: then the user decides.
        if _apply(base, top, my_experts) != mine:
            return MergeOutcome(None, ("comments or layout",), tuple(brought))
        return MergeOutcome(_apply(theirs, top, experts), (), tuple(brought))
    except ConfigEditError as error:  # e.g. my side holds an expert the schema refuses
        return MergeOutcome(None, (f"the file ({error.message})",), tuple(brought))


def _apply(text: str, top: dict[str, Any], experts: dict[str, Any]) -> str:
    """``text`` with the top-level keys and expert tables set as given (deleted: missing)."""
    document = ConfigDocument.parse(text)
    for key, value in top.items():
        document.set_top_level(key, None if value is _MISSING else value)
    for name, table in experts.items():
        if table is _MISSING:
            document.delete_expert(name)
        else:
            document.merge_expert(name, table)
    return document.dumps()


def _pick(key: str, base: Any, mine: Any, theirs: Any) -> tuple[str, Any] | None:
    """Whose value ``key`` takes: ("same"/"mine"/"theirs", value), or None for a conflict."""
    if mine == theirs:
        return ("same", mine)
    if mine == base:
        return ("theirs", theirs)
    if theirs == base:
        return ("mine", mine)
    return None


def _experts(data: dict[str, Any]) -> dict[str, Any]:
    experts = data.get("experts")
    return experts if isinstance(experts, dict) else {}
