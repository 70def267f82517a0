"""Inlining the bytes of a ``readImageFile``/``readPdfFile`` result for the model (§5.9).

The base tools answer those two with ``{path, mimeType, size}``; the agent loop replaces that
with the file itself, for any skill's tools of those names, as Perstack does. With a workspace
the file is reached with the base skill's race-free walk, so no skill can make the runtime read
anything the base tools would refuse.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from runtime.schema.messages import FileInlinePart, ImageInlinePart, TextPart
from runtime.skills.base.files import MAX_PDF_BYTES
from runtime.skills.base.workspace import MB, OPEN_FLAGS
from runtime.skills.confine import Confinement, Denied
from runtime.skills.types import ResultPart, ToolOutcome

__all__ = ["inline_file_results"]

_INLINE_TOOLS: dict[str, type[ImageInlinePart] | type[FileInlinePart]] = {
    "readImageFile": ImageInlinePart,
    "readPdfFile": FileInlinePart,
}


def inline_file_results(
    tool_name: str,
    outcome: ToolOutcome,
    *,
    workspace: Path | None = None,
    storage_dir: Path | None = None,
    env_files: Sequence[Path] = (),
) -> ToolOutcome:
    """Replace a ``readImageFile``/``readPdfFile`` result with the file's bytes (§5.9).

    Applied by the agent loop to every skill's results, keyed on the tool name as Perstack does.
    Anything that is not a successful ``{path, mimeType, size}`` JSON text is returned unchanged.
    This reads the file synchronously (up to 30 MB).

    Args:
        tool_name: The tool that produced ``outcome``.
        outcome: The tool's result.
        workspace: When given, the file must be a regular file inside this workspace, reached
            with the base skill's race-free walk, and not in storage or an env file: a skill
            (even a sandboxed one) cannot make the runtime read anything else for it.
        storage_dir: The job storage directory, denied with ``workspace``.
        env_files: The run's env files, refused with ``workspace``.

    Returns:
        An outcome with one :class:`ImageInlinePart` or :class:`FileInlinePart` (base64), or an
        ``is_error`` text outcome ``Failed to read file "<path>": <reason>``.
    """
    part_type = _INLINE_TOOLS.get(tool_name)
    if part_type is None or outcome.is_error or len(outcome.contents) != 1:
        return outcome
    text_part = outcome.contents[0]
    if not isinstance(text_part, TextPart):
        return outcome
    try:
        info = json.loads(text_part.text)
    except ValueError:
        return outcome
    if not isinstance(info, dict):
        return outcome
    path, mime_type = info.get("path"), info.get("mimeType")
    if not isinstance(path, str) or not isinstance(mime_type, str):
        return outcome
    try:
        if workspace is None:
            # Another skill may hand us any path: never read more than the base tools would.
            if os.stat(path).st_size > MAX_PDF_BYTES:
                raise OSError(f"file is larger than {MAX_PDF_BYTES // MB}MB")
            data = Path(path).read_bytes()
        else:
            data = _read_confined(path, workspace, storage_dir, env_files)
    except Denied as denied:
        return ToolOutcome.error(f'Failed to read file "{path}": {denied.message}')
    except OSError as error:
        reason = error.strerror or str(error)
        return ToolOutcome.error(f'Failed to read file "{path}": {reason}')
    encoded = base64.b64encode(data).decode("ascii")
    inline: ResultPart = part_type(encoded_data=encoded, mime_type=mime_type)
    return ToolOutcome(contents=[inline])


def _read_confined(
    path: str, workspace: Path, storage_dir: Path | None, env_files: Sequence[Path]
) -> bytes:
    fs = Confinement(workspace, storage_dir=storage_dir, env_files=env_files)
    try:
        with fs.entry(path) as entry:
            fd = os.open(entry.name, os.O_RDONLY | OPEN_FLAGS, dir_fd=entry.dir_fd)
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError("not a regular file")
            if fs.is_env_file(entry.path, st):
                raise OSError("env files hold secrets and are not read")
            if st.st_size > MAX_PDF_BYTES:
                raise OSError(f"file is larger than {MAX_PDF_BYTES // MB}MB")
            return handle.read()
    finally:
        fs.close()
