"""The base skill stays in the workspace while another process swaps directories for symlinks.

A sandboxed ``exec`` can keep replacing a directory of the workspace with a symlink to a
directory outside and back. Whatever it does, a base tool must never return content from
outside, nor create, change, move or delete anything there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from runtime.schema.messages import TextPart
from runtime.skills.base import BaseSkill

OPERATIONS = 12_000

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return getattr(libc, "renameat2", None)


def _exchange(renameat2: Any, first: Path, second: Path) -> None:
    # ctypes releases the GIL for the call, so the swap runs truly beside the tool calls.
    if renameat2(_AT_FDCWD, bytes(first), _AT_FDCWD, bytes(second), _RENAME_EXCHANGE) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.skipif(_renameat2() is None, reason="needs Linux renameat2 (RENAME_EXCHANGE)")
async def test_symlink_swaps_never_lead_out_of_the_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    outside = tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    (outside / "f.txt").write_text("OUTSIDE secret", encoding="utf-8")
    (outside / "m.txt").write_text("OUTSIDE movable", encoding="utf-8")
    (outside / "only-outside.txt").write_text("OUTSIDE", encoding="utf-8")
    before = _snapshot(outside)
    directory = ws / "d"
    directory.mkdir()
    (directory / "f.txt").write_text("inside", encoding="utf-8")
    (directory / "m.txt").write_text("inside movable", encoding="utf-8")
    # The atomic exchange keeps "d" present at every moment: a real directory or the link.
    (ws / "link").symlink_to(outside)
    renameat2 = _renameat2()
    skill = BaseSkill(ws)

    stop = threading.Event()
    swaps = 0
    swap_errors: list[BaseException] = []

    def swapper() -> None:
        nonlocal swaps
        try:
            while not stop.is_set():
                _exchange(renameat2, directory, ws / "link")
                swaps += 1
        except BaseException as error:  # reported by the test, not lost in the thread
            swap_errors.append(error)

    calls: list[tuple[str, dict[str, Any]]] = [
        ("readTextFile", {"path": "d/f.txt"}),
        ("writeTextFile", {"path": "d/written.txt", "text": "w"}),
        ("listDirectory", {"path": "d"}),
        ("moveFile", {"source": "d/m.txt", "destination": "d/n.txt"}),
        ("moveFile", {"source": "d/n.txt", "destination": "d/m.txt"}),
        ("appendTextFile", {"path": "d/f.txt", "text": ""}),
        ("getFileInfo", {"path": "d/only-outside.txt"}),
        ("readTextFile", {"path": "d/only-outside.txt"}),
    ]
    succeeded: dict[str, int] = dict.fromkeys((tool for tool, _ in calls), 0)
    escapes: list[str] = []
    thread = threading.Thread(target=swapper, daemon=True)
    started = time.perf_counter()
    thread.start()
    try:
        for index in range(OPERATIONS):
            tool, args = calls[index % len(calls)]
            outcome = await skill.call(tool, args)
            part = outcome.contents[0]
            assert isinstance(part, TextPart)
            # The outside-only name is in the request, so an error may echo it; a success may not.
            leaked = not outcome.is_error and "only-outside" in part.text
            if leaked or "OUTSIDE" in part.text:
                escapes.append(f"{tool} {args}: {part.text[:200]}")
            succeeded[tool] += not outcome.is_error
            if tool == "readTextFile" and not outcome.is_error:
                assert json.loads(part.text)["content"] == "inside"
    finally:
        stop.set()
        thread.join(timeout=10)
    elapsed = time.perf_counter() - started
    print(
        f"\n{OPERATIONS} operations ({sum(succeeded.values())} succeeded: {succeeded}), "
        f"{swaps} swaps, "
        f"{len(escapes)} escapes, {elapsed:.2f} s"
    )
    assert not swap_errors
    assert swaps > 100, "the swapper hardly ran: the test proves nothing"
    assert escapes == [], escapes[:5]
    assert _snapshot(outside) == before  # nothing created, changed, moved or deleted outside
    # Most calls are refused (the swapper flips "d" far faster than a call runs, and a call
    # that meets the link is denied), but each kind must have worked inside now and then.
    for tool in ("readTextFile", "writeTextFile", "listDirectory", "moveFile"):
        assert succeeded[tool] >= 5, f"{tool} never got through: the test proves nothing"
