"""The base tools that read and write file contents: text, images and PDFs.

``writeTextFile`` creates missing parent directories (Perstack does not, §18.7). Images and PDFs
are not read here: their tools return ``{path, mimeType, size}`` and the agent loop inlines the
bytes (:func:`~runtime.skills.base.inline.inline_file_results`).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from runtime.skills.base.tool import Param, Tool, ToolFailure
from runtime.skills.base.workspace import MB, PATH_PARAM, Workspace

__all__ = ["IMAGE_TYPES", "MAX_PDF_BYTES", "FileTools"]

MAX_IMAGE_BYTES = 15 * MB
MAX_PDF_BYTES = 30 * MB

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}

# Files up to this size are read or written on the event loop: a thread hop costs more than the
# I/O itself, and the agent loop calls these tools constantly. Bigger ones go to a thread.
_INLINE_IO_BYTES = 256 * 1024


def _read_fd(fd: int) -> bytes:
    """Everything in the open file ``fd``, which is closed afterwards."""
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _pread_all(fd: int) -> bytes:
    """Everything in the open file ``fd``, from its start; ``fd`` stays open."""
    chunks: list[bytes] = []
    while chunk := os.pread(fd, MB, sum(map(len, chunks))):
        chunks.append(chunk)
    return b"".join(chunks)


def _write_fd(fd: int, data: bytes, *, truncate: bool) -> None:
    """Write ``data`` to the open file ``fd`` (from its start when ``truncate``), then close it."""
    with os.fdopen(fd, "wb") as handle:
        if truncate:
            handle.truncate(0)
            handle.seek(0)
        handle.write(data)


class FileTools:
    """Reading, writing, appending to and editing files in a workspace (text, images, PDFs)."""

    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace

    def tools(self) -> list[Tool]:
        """The file-content tools, in the order the model is shown them."""
        path = PATH_PARAM
        return [
            Tool(
                "readTextFile",
                "Read a UTF-8 text file. Optionally return only lines from..to (0-based, `to` "
                "excluded). Returns the content with the line range actually read.",
                (
                    path,
                    Param("from", "integer", "First line to return (0-based).", required=False),
                    Param("to", "integer", "Line to stop before (exclusive).", required=False),
                ),
                self._read_text_file,
            ),
            Tool(
                "readImageFile",
                "Show an image file (PNG, JPEG, GIF or WebP, at most 15 MB) to you. The result "
                "is the image itself.",
                (path,),
                self._read_image_file,
            ),
            Tool(
                "readPdfFile",
                "Show a PDF file (at most 30 MB) to you. The result is the document itself.",
                (path,),
                self._read_pdf_file,
            ),
            Tool(
                "writeTextFile",
                "Create or overwrite a text file with the given UTF-8 text. Missing parent "
                "directories are created. To change part of a file use editTextFile; to add "
                "to its end use appendTextFile.",
                (path, Param("text", "string", "The complete new content of the file.")),
                self._write_text_file,
            ),
            Tool(
                "appendTextFile",
                "Add text to the end of an existing file. No newline is added for you.",
                (path, Param("text", "string", "Text to add at the end.")),
                self._append_text_file,
            ),
            Tool(
                "editTextFile",
                "Replace the first exact occurrence of oldText with newText in an existing "
                "file. Line endings are normalised to \\n first. Fails if oldText is not found.",
                (
                    path,
                    Param("newText", "string", "Replacement text."),
                    Param("oldText", "string", "Exact text to find; include enough context."),
                ),
                self._edit_text_file,
            ),
        ]

    async def _read_text_file(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        with self._ws.entry(requested, missing=f"File {requested} does not exist.") as entry:
            fd, st = self._ws.open_existing(entry, requested, os.O_RDONLY)
        if st.st_size > _INLINE_IO_BYTES:
            data = await asyncio.to_thread(_read_fd, fd)
        else:
            data = _read_fd(fd)
        # Decoded leniently, as Node does: one stray byte should not make a whole file unreadable.
        lines = data.decode("utf-8", "replace").split("\n")
        start: int = args.get("from", 0)
        end: int = args.get("to", len(lines))
        return {
            "path": entry.path,
            "content": "\n".join(lines[start:end]),
            "from": start,
            "to": end,
        }

    def _checked_media(self, requested: str, limit: int, label: str) -> tuple[str, int]:
        with self._ws.entry(requested, missing=f"File {requested} does not exist.") as entry:
            fd, st = self._ws.open_existing(entry, requested, os.O_RDONLY)
            os.close(fd)
        if st.st_size > limit:
            raise ToolFailure(
                f"{label} file too large ({st.st_size / MB:.1f}MB). Maximum supported size is "
                f"{limit // MB}MB."
            )
        return entry.path, st.st_size

    def _read_image_file(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        extension = os.path.splitext(requested)[1].lower()
        mime_type = IMAGE_TYPES.get(extension)
        if mime_type is None:
            raise ToolFailure(
                f"Unsupported image format {extension or '(no extension)'} for {requested}. "
                "Supported formats: PNG, JPEG, GIF, WebP."
            )
        path, size = self._checked_media(requested, MAX_IMAGE_BYTES, "Image")
        return {"path": path, "mimeType": mime_type, "size": size}

    def _read_pdf_file(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        if os.path.splitext(requested)[1].lower() != ".pdf":
            raise ToolFailure(f"File {requested} is not a PDF file.")
        path, size = self._checked_media(requested, MAX_PDF_BYTES, "PDF")
        return {"path": path, "mimeType": "application/pdf", "size": size}

    async def _write_text_file(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        data = args["text"].encode("utf-8")
        with self._ws.entry(requested, create=True) as entry:
            st = self._ws.lstat(entry)
            if st is not None:
                self._ws.check_file(entry, requested, st, writable=True)
            # Truncated only once the descriptor is known to be a regular file we may change.
            fd, _ = self._ws.open_file(entry, requested, os.O_WRONLY | os.O_CREAT)
        if len(data) > _INLINE_IO_BYTES:
            await asyncio.to_thread(_write_fd, fd, data, truncate=True)
        else:
            _write_fd(fd, data, truncate=True)
        return {"path": entry.path, "text": args["text"]}

    async def _append_text_file(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        data = args["text"].encode("utf-8")
        with self._ws.entry(requested, missing=f"File {requested} does not exist.") as entry:
            st = self._ws.existing(entry, f"File {requested} does not exist.")
            self._ws.check_file(entry, requested, st, writable=True)
            fd, _ = self._ws.open_existing(entry, requested, os.O_WRONLY | os.O_APPEND)
        if len(data) > _INLINE_IO_BYTES:
            await asyncio.to_thread(_write_fd, fd, data, truncate=False)
        else:
            _write_fd(fd, data, truncate=False)
        return {"path": entry.path, "text": args["text"]}

    async def _edit_text_file(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        with self._ws.entry(requested, missing=f"File {requested} does not exist.") as entry:
            st = self._ws.existing(entry, f"File {requested} does not exist.")
            self._ws.check_file(entry, requested, st, writable=True)
            old = args["oldText"].replace("\r\n", "\n")
            new = args["newText"].replace("\r\n", "\n")
            if not old:
                # An empty oldText "matches" at offset 0 and would silently prepend newText.
                raise ToolFailure("oldText must not be empty")
            # One descriptor for reading and writing: the file edited is the file read.
            fd, st = self._ws.open_existing(entry, requested, os.O_RDWR)
        big = st.st_size > _INLINE_IO_BYTES
        try:
            if big:
                data = await asyncio.to_thread(_pread_all, fd)
            else:
                data = _pread_all(fd)
            content = data.decode("utf-8", "replace").replace("\r\n", "\n")
            if old not in content:
                raise ToolFailure(f"Could not find exact match for oldText in file {entry.path}")
        except BaseException:
            os.close(fd)
            raise
        edited = content.replace(old, new, 1).encode("utf-8")
        if big:
            await asyncio.to_thread(_write_fd, fd, edited, truncate=True)
        else:
            _write_fd(fd, edited, truncate=True)
        return {"path": entry.path, "newText": args["newText"], "oldText": args["oldText"]}
