"""The base tools that act on whole entries: move, delete, describe, list and create.

``moveFile`` and ``createDirectory`` create missing parent directories (Perstack does not, §18.7).
A symlink as the last component is removed itself by ``deleteFile``, moved itself by ``moveFile``
and followed by ``getFileInfo`` and ``listDirectory``; the storage directory is hidden from
listings and can be neither moved nor deleted.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import stat
from datetime import UTC, datetime
from typing import Any

from runtime.skills.base.files import IMAGE_TYPES
from runtime.skills.base.tool import Param, Tool, ToolFailure
from runtime.skills.base.workspace import PATH_PARAM, Workspace, is_writable
from runtime.skills.confine import STORAGE_DENIED, Denied, copy_entry

__all__ = ["EntryTools"]

_LIST_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# getFileInfo's permission bits are those of the entry itself, never of what a link swapped in
# since points to (where the platform can tell).
_ACCESS_FOLLOWS = os.access not in os.supports_follow_symlinks

# A directory whose own st_size exceeds this holds hundreds of entries; list it in a thread.
_INLINE_LISTING_BYTES = 16 * 1024

# A fixed table instead of the ``mimetypes`` module: that one reads system files on first use and
# answers differently from one machine to the next.
_MIME_TYPES = {
    **IMAGE_TYPES,
    ".pdf": "application/pdf",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".css": "text/css",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".xml": "application/xml",
    ".json": "application/json",
    ".jsonl": "application/jsonl",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".toml": "application/toml",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".cjs": "text/javascript",
    ".ts": "text/typescript",
    ".tsx": "text/tsx",
    ".jsx": "text/jsx",
    ".py": "text/x-python",
    ".rb": "text/x-ruby",
    ".go": "text/x-go",
    ".rs": "text/x-rust",
    ".java": "text/x-java",
    ".c": "text/x-c",
    ".h": "text/x-c",
    ".cpp": "text/x-c++",
    ".sh": "application/x-sh",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".bmp": "image/bmp",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".zip": "application/zip",
    ".gz": "application/gzip",
    ".tar": "application/x-tar",
    ".wasm": "application/wasm",
}
_DEFAULT_MIME_TYPE = "application/octet-stream"


def _iso(timestamp: float) -> str:
    """A POSIX timestamp as JavaScript's ``toISOString()`` writes it (UTC, milliseconds, ``Z``)."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _format_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value, units = size / 1024, ("KB", "MB", "GB", "TB")
    index = 0
    while value >= 1024 and index < len(units) - 1:
        value /= 1024
        index += 1
    return f"{value:.2f} {units[index]}"


class EntryTools:
    """Moving, deleting, describing, listing and creating files and directories in a workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace

    def tools(self) -> list[Tool]:
        """The entry tools, in the order the model is shown them."""
        path = PATH_PARAM
        return [
            Tool(
                "moveFile",
                "Move or rename a file or directory inside the workspace. The destination must "
                "not exist; its missing parent directories are created.",
                (
                    Param("source", "string", "Current path."),
                    Param("destination", "string", "New path."),
                ),
                self._move_file,
            ),
            Tool(
                "deleteFile",
                "Delete one file (not a directory; use deleteDirectory for those).",
                (path,),
                self._delete_file,
            ),
            Tool(
                "getFileInfo",
                "Describe a file or directory: type, size, MIME type, timestamps and permissions.",
                (path,),
                self._get_file_info,
            ),
            Tool(
                "listDirectory",
                "List the entries of one directory (not recursive), sorted by name, with type, "
                "size and modification time. Use `.` for the workspace root.",
                (Param("path", "string", "Directory path, relative to the workspace."),),
                self._list_directory,
            ),
            Tool(
                "createDirectory",
                "Create a directory, including missing parents. Fails if it already exists.",
                (Param("path", "string", "Directory path to create."),),
                self._create_directory,
            ),
            Tool(
                "deleteDirectory",
                "Delete a directory. A directory that is not empty needs recursive: true.",
                (
                    Param("path", "string", "Directory path to delete."),
                    Param(
                        "recursive",
                        "boolean",
                        "Also delete everything inside it (default false).",
                        required=False,
                    ),
                ),
                self._delete_directory,
            ),
        ]

    async def _move_file(self, args: dict[str, Any]) -> dict[str, Any]:
        source_name: str = args["source"]
        destination_name: str = args["destination"]
        # Both checked before anything is touched (the destination's parents get created).
        self._ws.fs.lexical(source_name)
        self._ws.refuse_env(destination_name, self._ws.fs.lexical(destination_name))
        missing = f"Source file {source_name} does not exist."
        with self._ws.entry(source_name, missing=missing) as source:
            st = self._ws.existing(source, missing)
            if stat.S_ISLNK(st.st_mode):
                self._ws.fs.check_link(source)
            if source.path == self._ws.root or self._ws.fs.contains_storage(source.path):
                raise ToolFailure(STORAGE_DENIED)
            self._ws.refuse_env(source_name, source.path, st)
            if not is_writable(st):
                raise ToolFailure(f"Source file {source_name} is not writable")
            with self._ws.entry(destination_name, create=True) as destination:
                if self._ws.lstat(destination) is not None:
                    raise ToolFailure(f"Destination {destination_name} already exists.")
                try:
                    os.rename(
                        source.name,
                        destination.name,
                        src_dir_fd=source.dir_fd,
                        dst_dir_fd=destination.dir_fd,
                    )
                except OSError as error:
                    if error.errno != errno.EXDEV:
                        raise
                    # Another file system (a bind mount inside the workspace): copy, then delete.
                    await asyncio.to_thread(
                        copy_entry, source.dir_fd, source.name, destination.dir_fd, destination.name
                    )
        return {"source": source.path, "destination": destination.path}

    def _delete_file(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        missing = f"File {requested} does not exist."
        with self._ws.entry(requested, missing=missing) as entry:
            st = self._ws.existing(entry, missing)
            if stat.S_ISDIR(st.st_mode):
                raise ToolFailure(
                    f"Path {requested} is a directory. Use the deleteDirectory tool instead."
                )
            if stat.S_ISLNK(st.st_mode):
                # A symlink is removed itself; its target (inside the workspace) stays.
                self._ws.fs.check_link(entry)
            elif not is_writable(st):
                raise ToolFailure(f"File {requested} is not writable")
            self._ws.refuse_env(requested, entry.path, st)
            os.unlink(entry.name, dir_fd=entry.dir_fd)
        return {"path": entry.path}

    def _get_file_info(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        missing = f"File or directory {requested} does not exist."
        with self._ws.entry(requested, follow=True, missing=missing) as entry:
            st = self._ws.existing(entry, missing)
            self._ws.refuse_env(requested, entry.path, st)
            permissions = {
                label: os.access(
                    entry.name, mode, dir_fd=entry.dir_fd, follow_symlinks=_ACCESS_FOLLOWS
                )
                for label, mode in (
                    ("readable", os.R_OK),
                    ("writable", os.W_OK),
                    ("executable", os.X_OK),
                )
            }
        path = entry.path
        is_dir = stat.S_ISDIR(st.st_mode)
        extension = os.path.splitext(path)[1]
        return {
            "exists": True,
            "path": requested,
            "absolutePath": path,
            "name": os.path.basename(path),
            "directory": os.path.dirname(path),
            "extension": extension or None,
            "type": "directory" if is_dir else "file",
            "mimeType": None if is_dir else _MIME_TYPES.get(extension.lower(), _DEFAULT_MIME_TYPE),
            "size": st.st_size,
            "sizeFormatted": _format_size(st.st_size),
            # Linux has no birth time in os.stat; the inode change time is the closest we get.
            "created": _iso(getattr(st, "st_birthtime", st.st_ctime)),
            "modified": _iso(st.st_mtime),
            "accessed": _iso(st.st_atime),
            "permissions": permissions,
        }

    def _list_entries(self, fd: int, directory: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        with os.scandir(fd) as scan:
            entries = sorted(scan, key=lambda e: e.name)
        for item in entries:
            full = os.path.join(directory, item.name)
            if self._ws.fs.is_denied(full):
                continue
            try:
                st = item.stat(follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    # Shown as what it points to; hidden (like storage) when that is outside
                    # the workspace, in storage or missing.
                    with self._ws.fs.entry(full, follow=True) as target:
                        st = os.stat(target.name, dir_fd=target.dir_fd, follow_symlinks=False)
            except (OSError, Denied):
                continue  # a dangling or outward link, or gone since the listing
            items.append(
                {
                    "name": item.name,
                    "path": item.name,
                    "type": "directory" if stat.S_ISDIR(st.st_mode) else "file",
                    "size": st.st_size,
                    "modified": _iso(st.st_mtime),
                }
            )
        return items

    async def _list_directory(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        missing = f"Directory {requested} does not exist."
        with self._ws.entry(requested, follow=True, missing=missing, env_ok=True) as entry:
            try:
                fd = os.open(entry.name, _LIST_FLAGS, dir_fd=entry.dir_fd)
            except FileNotFoundError:
                raise ToolFailure(missing) from None
            except NotADirectoryError:
                raise ToolFailure(f"Path {requested} is not a directory.") from None
        try:
            if os.fstat(fd).st_size > _INLINE_LISTING_BYTES:
                items = await asyncio.to_thread(self._list_entries, fd, entry.path)
            else:
                items = self._list_entries(fd, entry.path)
        finally:
            os.close(fd)
        return {"path": entry.path, "items": items}

    def _create_directory(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        exists = f"Directory {requested} already exists."
        with self._ws.entry(requested, create=True) as entry:
            if self._ws.lstat(entry) is not None:
                raise ToolFailure(exists)
            try:
                os.mkdir(entry.name, 0o777, dir_fd=entry.dir_fd)
            except FileExistsError:
                raise ToolFailure(exists) from None
        return {"path": entry.path}

    async def _delete_directory(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        missing = f"Directory {requested} does not exist."
        with self._ws.entry(requested, missing=missing) as entry:
            st = self._ws.existing(entry, missing)
            if stat.S_ISLNK(st.st_mode):
                self._ws.fs.check_link(entry)
                raise ToolFailure("Operation denied: target is a symbolic link")
            if not stat.S_ISDIR(st.st_mode):
                raise ToolFailure(f"Path {requested} is not a directory.")
            if entry.path == self._ws.root:
                raise ToolFailure("Access denied - the workspace root cannot be deleted")
            if self._ws.fs.contains_storage(entry.path):
                raise ToolFailure(STORAGE_DENIED)
            if args.get("recursive", False):
                # shutil's descriptor-based rmtree: it opens nothing by path and follows no link.
                await asyncio.to_thread(shutil.rmtree, entry.name, dir_fd=entry.dir_fd)
            else:
                try:
                    os.rmdir(entry.name, dir_fd=entry.dir_fd)
                except OSError as error:
                    if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                        raise
                    raise ToolFailure(
                        f"Directory {requested} is not empty. Use recursive: true to delete it "
                        "with its contents."
                    ) from None
        return {"path": entry.path}
