"""The built-in base skill ``@perstack/base``: files, commands and a todo list (reference §6).

Tool names, parameters and result shapes are Perstack's (§6.3), so an expert written for Perstack
works unchanged. Where we differ (§18.7): failures are flagged ``is_error``, ``writeTextFile``,
``createDirectory`` and ``moveFile`` create missing parent directories, and the todo list belongs
to one :class:`BaseSkill` (one run) instead of the whole process.

Every path a tool receives is walked by :class:`~runtime.skills.confine.Confinement`, one
component at a time from a descriptor of the workspace, so it stays inside the workspace even
while another process swaps directories for symlinks; the storage directory and env files
(``.env``, ``.env.*``, the run's ``envPath`` files) are off limits. Symlinks inside the workspace
that point inside are followed on the way; a symlink as the last component is refused by the
tools that read or write content, removed itself by ``deleteFile``, moved itself by ``moveFile``
and followed by ``getFileInfo`` and ``listDirectory``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import inspect
import json
import os
import resource
import shutil
import signal
import stat
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from runtime.config.env import PROTECTED_ENV_NAMES, SAFE_ENV_NAMES
from runtime.config.schema import BASE_SKILL_NAME
from runtime.schema.messages import FileInlinePart, ImageInlinePart, TextPart
from runtime.skills.confine import STORAGE_DENIED, Confinement, Denied, Entry, copy_entry
from runtime.skills.types import ResultPart, SkillKind, ToolDefinition, ToolOutcome

if TYPE_CHECKING:
    from runtime.sandbox import Sandbox

__all__ = ["BaseSkill", "inline_file_results"]

_MB = 1024 * 1024
_MAX_IMAGE_BYTES = 15 * _MB
_MAX_PDF_BYTES = 30 * _MB
_MAX_EXEC_OUTPUT = 10 * _MB
_DEFAULT_EXEC_TIMEOUT_MS = 60_000

# Every file a tool opens: never through a symlink, and a FIFO swapped in must not block the run.
_OPEN_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_LIST_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# getFileInfo's permission bits are those of the entry itself, never of what a link swapped in
# since points to (where the platform can tell).
_ACCESS_FOLLOWS = os.access not in os.supports_follow_symlinks

# Files up to this size are read or written on the event loop: a thread hop costs more than the
# I/O itself, and the agent loop calls these tools constantly. Bigger ones go to a thread.
_INLINE_IO_BYTES = 256 * 1024
# A directory whose own st_size exceeds this holds hundreds of entries; list it in a thread.
_INLINE_LISTING_BYTES = 16 * 1024

_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}

# A fixed table instead of the ``mimetypes`` module: that one reads system files on first use and
# answers differently from one machine to the next.
_MIME_TYPES = {
    **_IMAGE_TYPES,
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

# What a command inherits from our own environment: the skills' safe minimum (§5.10) plus LANG,
# so tools print text in the user's encoding. Nothing that could carry a secret.
_INHERITED_ENV = (*SAFE_ENV_NAMES, "LANG")

_INLINE_TOOLS: dict[str, type[ImageInlinePart] | type[FileInlinePart]] = {
    "readImageFile": ImageInlinePart,
    "readPdfFile": FileInlinePart,
}


class _ToolFailure(Exception):
    """A failure the model can react to, reported as ``{"error": name, "message": message}``."""

    def __init__(self, message: str, name: str = "Error") -> None:
        super().__init__(message)
        self.message = message
        # Perstack reports ``Error.name``, which is "Error" for everything its tools throw.
        self.name = name


class _ShapedFailure(Exception):
    """A failure with its own result shape (exec's ``{error, stdout?, stderr?}``)."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("error", ""))
        self.payload = payload


_Kind = Literal["string", "integer", "boolean", "string[]", "integer[]", "string{}"]

_SCHEMAS: dict[_Kind, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "string[]": {"type": "array", "items": {"type": "string"}},
    "integer[]": {"type": "array", "items": {"type": "integer"}},
    "string{}": {"type": "object", "additionalProperties": {"type": "string"}},
}

_KIND_NAMES: dict[_Kind, str] = {
    "string": "a string",
    "integer": "an integer",
    "boolean": "a boolean",
    "string[]": "an array of strings",
    "integer[]": "an array of integers",
    "string{}": "an object mapping names to string values",
}


@dataclass(frozen=True)
class _Param:
    name: str
    kind: _Kind
    description: str
    required: bool = True


# Tools that only make a few fast system calls are plain functions, run on the event loop; the
# ones that may wait (a process, a big file) are coroutines.
_Handler = Callable[[dict[str, Any]], dict[str, Any] | Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class _Tool:
    name: str
    description: str
    params: tuple[_Param, ...]
    handler: _Handler


def _dumps(value: Any) -> str:
    # Compact like JSON.stringify, and non-ASCII kept as is so the model reads the real text.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _failure(name: str, message: str) -> ToolOutcome:
    return ToolOutcome(
        contents=[TextPart(text=_dumps({"error": name, "message": message}))], is_error=True
    )


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _coerce(kind: _Kind, value: Any) -> Any:
    """``value`` converted to ``kind``, or raise ``ValueError`` when it does not fit."""
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "integer" and _is_integer(value):
        return int(value)
    if kind == "string[]" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if kind == "integer[]" and isinstance(value, list) and all(_is_integer(v) for v in value):
        return [int(v) for v in value]
    if (
        kind == "string{}"
        and isinstance(value, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        return value
    raise ValueError(kind)


def _validate(tool: _Tool, args: Any) -> dict[str, Any]:
    """The arguments ``tool`` declares, checked and coerced; unknown keys are dropped."""
    if not isinstance(args, dict):
        raise _ToolFailure(
            f"Invalid arguments for {tool.name}: expected an object", "InvalidArgumentsError"
        )
    clean: dict[str, Any] = {}
    for param in tool.params:
        value = args.get(param.name)
        if value is None:
            # Models often send null for an optional parameter they mean to leave out.
            if param.required:
                raise _ToolFailure(
                    f'Invalid arguments for {tool.name}: "{param.name}" is required',
                    "InvalidArgumentsError",
                )
            continue
        try:
            clean[param.name] = _coerce(param.kind, value)
        except ValueError:
            raise _ToolFailure(
                f'Invalid arguments for {tool.name}: "{param.name}" must be '
                f"{_KIND_NAMES[param.kind]}",
                "InvalidArgumentsError",
            ) from None
    return clean


def _schema(params: tuple[_Param, ...]) -> dict[str, Any]:
    properties = {p.name: {**_SCHEMAS[p.kind], "description": p.description} for p in params}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = [p.name for p in params if p.required]
    if required:
        schema["required"] = required
    return schema


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


def _os_message(error: OSError) -> str:
    if error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}"
    return error.strerror or str(error)


def _writable(st: os.stat_result) -> bool:
    # The owner-write bit, as Perstack checks it: os.access() would say yes to root for everything.
    return bool(st.st_mode & stat.S_IWUSR)


def _read_fd(fd: int) -> bytes:
    """Everything in the open file ``fd``, which is closed afterwards."""
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _pread_all(fd: int) -> bytes:
    """Everything in the open file ``fd``, from its start; ``fd`` stays open."""
    chunks: list[bytes] = []
    while chunk := os.pread(fd, _MB, sum(map(len, chunks))):
        chunks.append(chunk)
    return b"".join(chunks)


def _write_fd(fd: int, data: bytes, *, truncate: bool) -> None:
    """Write ``data`` to the open file ``fd`` (from its start when ``truncate``), then close it."""
    with os.fdopen(fd, "wb") as handle:
        if truncate:
            handle.truncate(0)
            handle.seek(0)
        handle.write(data)


def _memory_mb() -> tuple[int, int]:
    """Current and peak resident set size in MB (Node's heapUsed / heapTotal stand-ins)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_bytes = peak if sys.platform == "darwin" else peak * 1024
    current_bytes = peak_bytes
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/statm", encoding="ascii") as statm:
            current_bytes = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return round(current_bytes / _MB), round(peak_bytes / _MB)


def _kill_group(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    # The command runs in its own session, so this also ends anything it started.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()


@dataclass
class _Todo:
    id: int
    title: str
    completed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "completed": self.completed}


class BaseSkill:
    """Perstack's base skill, in process: the 17 tools of §6.3 over one workspace.

    Args:
        workspace: The directory every path is confined to. Resolved (symlinks included) once.
        storage_dir: Where jobs and checkpoints live; denied to every tool and hidden from
            ``listDirectory``. Defaults to ``workspace/perstack``, which is denied in any case,
            as Perstack does.
        sandbox: When given (``--sandbox``), ``exec`` runs every command inside it: read-only
            root, writable workspace, no network but ``allowed_domains``.
        allowed_domains: Domains a sandboxed ``exec`` command may reach (the base skill's
            ``allowedDomains``); ignored without ``sandbox``.
        env_files: The run's env files (``envPath`` / ``--env-path``). The file tools refuse
            them, as they refuse ``.env`` and ``.env.*`` anywhere: they hold API keys.
    """

    name: str = BASE_SKILL_NAME
    kind: SkillKind = "mcp"

    def __init__(
        self,
        workspace: Path,
        *,
        storage_dir: Path | None = None,
        sandbox: Sandbox | None = None,
        allowed_domains: Sequence[str] = (),
        env_files: Sequence[Path] = (),
    ) -> None:
        self._sandbox = sandbox
        self._allowed_domains = tuple(allowed_domains)
        self._fs = Confinement(workspace, storage_dir=storage_dir, env_files=env_files)
        self._root = self._fs.root
        self._started = time.monotonic()
        self._todos: list[_Todo] = []
        self._next_todo_id = 0
        self._processes: set[asyncio.subprocess.Process] = set()
        self._tools = {tool.name: tool for tool in self._build_tools()}
        self._definitions = [
            ToolDefinition(
                skill_name=self.name,
                name=tool.name,
                description=tool.description,
                input_schema=_schema(tool.params),
            )
            for tool in self._tools.values()
        ]

    @property
    def workspace(self) -> Path:
        """The resolved workspace directory."""
        return Path(self._root)

    def tools(self) -> list[ToolDefinition]:
        """The 17 base tools, with Perstack's names and parameters."""
        return list(self._definitions)

    async def call(self, tool_name: str, args: dict[str, Any]) -> ToolOutcome:
        """Run one tool. Every failure comes back as an ``is_error`` outcome, never raised.

        Args:
            tool_name: One of the names :meth:`tools` lists.
            args: The tool's arguments as the model sent them; checked against its schema.

        Returns:
            One text part holding the result as compact JSON. Failures hold
            ``{"error": name, "message": text}`` (``exec``: ``{error, stdout?, stderr?}``).
        """
        tool = self._tools.get(tool_name)
        if tool is None:
            return _failure("Error", f"Tool {tool_name} not found in {self.name}")
        try:
            result = tool.handler(_validate(tool, args))
            if inspect.isawaitable(result):
                result = await result
        except _ToolFailure as failure:
            return _failure(failure.name, failure.message)
        except Denied as denied:
            return _failure("Error", denied.message)
        except _ShapedFailure as failure:
            return ToolOutcome(contents=[TextPart(text=_dumps(failure.payload))], is_error=True)
        except OSError as error:
            return _failure(type(error).__name__, _os_message(error))
        except Exception as error:  # a tool bug must reach the model, not end the run (§18.4)
            return _failure(type(error).__name__, str(error) or repr(error))
        return ToolOutcome(contents=[TextPart(text=_dumps(result))])

    async def close(self) -> None:
        """Kill commands still running from ``exec``; release the workspace descriptor."""
        self._fs.close()
        for process in list(self._processes):
            _kill_group(process)
        for process in list(self._processes):
            with contextlib.suppress(TimeoutError, ProcessLookupError):
                async with asyncio.timeout(2):
                    await process.wait()
        self._processes.clear()

    # Paths ----------------------------------------------------------------------------------

    def _refuse_env(self, requested: str, path: str, st: os.stat_result | None = None) -> None:
        if self._fs.is_env_file(path, st):
            raise _ToolFailure(
                f"Refused: {requested} holds secrets (API keys); the base skill does not read "
                "or change env files."
            )

    @contextlib.contextmanager
    def _entry(
        self,
        requested: str,
        *,
        follow: bool = False,
        create: bool = False,
        missing: str | None = None,
        env_ok: bool = False,
    ) -> Iterator[Entry]:
        """The entry ``requested`` names (see :meth:`Confinement.entry`), env files refused.

        ``missing`` is the failure reported when a directory on the way does not exist;
        ``env_ok`` lets a directory named like an env file through (listing, exec's cwd).
        """
        lexical = self._fs.lexical(requested)
        if not env_ok:
            self._refuse_env(requested, lexical)
        with contextlib.ExitStack() as stack:
            try:
                entry = stack.enter_context(self._fs.entry(requested, follow=follow, create=create))
            except FileNotFoundError:
                if missing is None:
                    raise
                raise _ToolFailure(missing) from None
            if not env_ok:
                self._refuse_env(requested, entry.path)
            yield entry

    @staticmethod
    def _lstat(entry: Entry) -> os.stat_result | None:
        try:
            return os.stat(entry.name, dir_fd=entry.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    @classmethod
    def _existing(cls, entry: Entry, missing: str) -> os.stat_result:
        """The entry's own status (a link's, not its target's); fails with ``missing``."""
        st = cls._lstat(entry)
        if st is None:
            raise _ToolFailure(missing)
        return st

    def _check_file(
        self, entry: Entry, requested: str, st: os.stat_result, *, writable: bool = False
    ) -> None:
        """Refuse anything but a regular file (a symlink, a directory, a FIFO) and env files."""
        if stat.S_ISLNK(st.st_mode):
            self._fs.check_link(entry)
            raise _ToolFailure("Operation denied: target is a symbolic link")
        if stat.S_ISDIR(st.st_mode):
            raise _ToolFailure(f"Path {requested} is a directory.")
        if not stat.S_ISREG(st.st_mode):
            raise _ToolFailure(f"Path {requested} is not a regular file.")
        self._refuse_env(requested, entry.path, st)
        if writable and not _writable(st):
            raise _ToolFailure(f"File {requested} is not writable")

    def _open_file(self, entry: Entry, requested: str, flags: int) -> tuple[int, os.stat_result]:
        """Open the regular file ``entry`` names, checked on the open descriptor itself.

        O_NOFOLLOW and the check after opening close the window a check before opening would
        leave; O_NONBLOCK keeps a FIFO swapped in from blocking the run.

        Raises:
            FileNotFoundError: It does not exist (and ``flags`` does not create it).
        """
        try:
            fd = os.open(entry.name, flags | _OPEN_FLAGS, 0o666, dir_fd=entry.dir_fd)
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.EMLINK):
                st = self._lstat(entry)
                if st is not None:
                    self._check_file(entry, requested, st)
            if error.errno == errno.EISDIR:
                raise _ToolFailure(f"Path {requested} is a directory.") from None
            if error.errno == errno.ENXIO:
                raise _ToolFailure(f"Path {requested} is not a regular file.") from None
            raise
        try:
            st = os.fstat(fd)
            self._check_file(entry, requested, st)
        except BaseException:
            os.close(fd)
            raise
        return fd, st

    def _open_existing(
        self, entry: Entry, requested: str, flags: int
    ) -> tuple[int, os.stat_result]:
        try:
            return self._open_file(entry, requested, flags)
        except FileNotFoundError:
            raise _ToolFailure(f"File {requested} does not exist.") from None

    def _directory(self, requested: str) -> str:
        """The real path of the directory ``requested`` names (exec's working directory)."""
        missing = f"Directory {requested} does not exist."
        with self._entry(requested, follow=True, missing=missing, env_ok=True) as entry:
            st = self._lstat(entry)
            if st is None or not stat.S_ISDIR(st.st_mode):
                raise _ToolFailure(missing)
            return entry.path

    # Tools ----------------------------------------------------------------------------------

    def _build_tools(self) -> list[_Tool]:
        path = _Param("path", "string", "File path, relative to the workspace or absolute.")
        return [
            _Tool(
                "attemptCompletion",
                "Signal that the task is finished. Call it alone, with no other tool call and no "
                "text. If todos are still open they are returned as remainingTodos and the run "
                "continues; otherwise you are asked for the final answer next.",
                (),
                self._attempt_completion,
            ),
            _Tool(
                "todo",
                "Keep a todo list for the current task. Add items with newTodos and tick them off "
                "by id with completedTodos (ids start at 0 and increase). Returns the whole list "
                "after every call. Completed items stay completed.",
                (
                    _Param("newTodos", "string[]", "Titles of todos to add.", required=False),
                    _Param("completedTodos", "integer[]", "Ids of todos now done.", required=False),
                ),
                self._todo,
            ),
            _Tool(
                "clearTodo",
                "Empty the todo list and restart ids at 0. Returns the empty list.",
                (),
                self._clear_todo,
            ),
            _Tool(
                "healthCheck",
                "Report that the runtime is alive: workspace path, uptime, memory use and "
                "process id. Touches no files.",
                (),
                self._health_check,
            ),
            _Tool(
                "exec",
                "Run a program directly (no shell: no pipes, globbing, redirection or $VAR "
                "expansion; run `sh` with `-c` yourself if you need one). The working directory "
                "must be inside the workspace. The program gets PATH, HOME, SHELL, TERM, LANG "
                "and proxy settings plus the env you pass; PATH, HOME, SHELL, LD_PRELOAD, "
                "LD_LIBRARY_PATH, NODE_OPTIONS, PYTHONPATH and similar loader variables cannot "
                "be overridden and are ignored. stdout/stderr choose which streams are "
                "returned. Output is capped at 10 MB; the process is killed after timeout ms.",
                (
                    _Param("command", "string", "Program to run, e.g. `python` or `ls`."),
                    _Param("args", "string[]", "Arguments, one array item per argument."),
                    _Param("env", "string{}", "Extra environment variables (may be {})."),
                    _Param("cwd", "string", "Working directory, e.g. `.` for the workspace."),
                    _Param("stdout", "boolean", "Return what the program wrote to stdout."),
                    _Param("stderr", "boolean", "Return what the program wrote to stderr."),
                    _Param(
                        "timeout",
                        "integer",
                        "Milliseconds before the program is killed (default 60000).",
                        required=False,
                    ),
                ),
                self._exec,
            ),
            _Tool(
                "readTextFile",
                "Read a UTF-8 text file. Optionally return only lines from..to (0-based, `to` "
                "excluded). Returns the content with the line range actually read.",
                (
                    path,
                    _Param("from", "integer", "First line to return (0-based).", required=False),
                    _Param("to", "integer", "Line to stop before (exclusive).", required=False),
                ),
                self._read_text_file,
            ),
            _Tool(
                "readImageFile",
                "Show an image file (PNG, JPEG, GIF or WebP, at most 15 MB) to you. The result "
                "is the image itself.",
                (path,),
                self._read_image_file,
            ),
            _Tool(
                "readPdfFile",
                "Show a PDF file (at most 30 MB) to you. The result is the document itself.",
                (path,),
                self._read_pdf_file,
            ),
            _Tool(
                "writeTextFile",
                "Create or overwrite a text file with the given UTF-8 text. Missing parent "
                "directories are created. To change part of a file use editTextFile; to add "
                "to its end use appendTextFile.",
                (path, _Param("text", "string", "The complete new content of the file.")),
                self._write_text_file,
            ),
            _Tool(
                "appendTextFile",
                "Add text to the end of an existing file. No newline is added for you.",
                (path, _Param("text", "string", "Text to add at the end.")),
                self._append_text_file,
            ),
            _Tool(
                "editTextFile",
                "Replace the first exact occurrence of oldText with newText in an existing "
                "file. Line endings are normalised to \\n first. Fails if oldText is not found.",
                (
                    path,
                    _Param("newText", "string", "Replacement text."),
                    _Param("oldText", "string", "Exact text to find; include enough context."),
                ),
                self._edit_text_file,
            ),
            _Tool(
                "moveFile",
                "Move or rename a file or directory inside the workspace. The destination must "
                "not exist; its missing parent directories are created.",
                (
                    _Param("source", "string", "Current path."),
                    _Param("destination", "string", "New path."),
                ),
                self._move_file,
            ),
            _Tool(
                "deleteFile",
                "Delete one file (not a directory; use deleteDirectory for those).",
                (path,),
                self._delete_file,
            ),
            _Tool(
                "getFileInfo",
                "Describe a file or directory: type, size, MIME type, timestamps and permissions.",
                (path,),
                self._get_file_info,
            ),
            _Tool(
                "listDirectory",
                "List the entries of one directory (not recursive), sorted by name, with type, "
                "size and modification time. Use `.` for the workspace root.",
                (_Param("path", "string", "Directory path, relative to the workspace."),),
                self._list_directory,
            ),
            _Tool(
                "createDirectory",
                "Create a directory, including missing parents. Fails if it already exists.",
                (_Param("path", "string", "Directory path to create."),),
                self._create_directory,
            ),
            _Tool(
                "deleteDirectory",
                "Delete a directory. A directory that is not empty needs recursive: true.",
                (
                    _Param("path", "string", "Directory path to delete."),
                    _Param(
                        "recursive",
                        "boolean",
                        "Also delete everything inside it (default false).",
                        required=False,
                    ),
                ),
                self._delete_directory,
            ),
        ]

    def _attempt_completion(self, args: dict[str, Any]) -> dict[str, Any]:
        remaining = [todo.as_json() for todo in self._todos if not todo.completed]
        return {"remainingTodos": remaining} if remaining else {}

    def _todo(self, args: dict[str, Any]) -> dict[str, Any]:
        for title in args.get("newTodos", []):
            self._todos.append(_Todo(id=self._next_todo_id, title=title))
            self._next_todo_id += 1
        done = set(args.get("completedTodos", []))
        for todo in self._todos:
            todo.completed = todo.completed or todo.id in done
        return {"todos": [todo.as_json() for todo in self._todos]}

    def _clear_todo(self, args: dict[str, Any]) -> dict[str, Any]:
        self._todos = []
        self._next_todo_id = 0
        return {"todos": []}

    def _health_check(self, args: dict[str, Any]) -> dict[str, Any]:
        used, total = _memory_mb()
        return {
            "status": "ok",
            "workspace": self._root,
            "uptime": f"{int(time.monotonic() - self._started)}s",
            "memory": {"heapUsed": f"{used}MB", "heapTotal": f"{total}MB"},
            "pid": os.getpid(),
        }

    def _exec_env(self, given: dict[str, str]) -> dict[str, str]:
        env = {name: os.environ[name] for name in _INHERITED_ENV if name in os.environ}
        for name, value in given.items():
            if name.upper() not in PROTECTED_ENV_NAMES:
                env[name] = value
        return env

    async def _exec(self, args: dict[str, Any]) -> dict[str, Any]:
        command: str = args["command"]
        timeout_ms: int = args.get("timeout", _DEFAULT_EXEC_TIMEOUT_MS)
        if not command:
            raise _ToolFailure("command must not be empty")
        if timeout_ms <= 0:
            raise _ToolFailure("timeout must be a positive number of milliseconds")
        cwd = self._directory(args["cwd"])
        argv = [command, *args["args"]]
        env = self._exec_env(args["env"])
        if self._sandbox is None:
            return await self._run(args, argv, env, cwd)
        sandboxed = self._sandbox.wrap(
            argv, env=env, cwd=cwd, allowed_domains=self._allowed_domains
        )
        try:
            return await self._run(args, sandboxed.argv, sandboxed.env, cwd)
        finally:
            # Stops the command's proxy (if it had allowed domains) once it has exited.
            sandboxed.cleanup()

    async def _run(
        self, args: dict[str, Any], argv: list[str], env: dict[str, str], cwd: str
    ) -> dict[str, Any]:
        command: str = args["command"]
        want_stdout: bool = args["stdout"]
        want_stderr: bool = args["stderr"]
        timeout_ms: int = args.get("timeout", _DEFAULT_EXEC_TIMEOUT_MS)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                # Never our stdin: under the MCP server it carries the protocol.
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as error:
            message = f"Failed to run {command}: {_os_message(error)}"
            raise _ShapedFailure({"error": message}) from None

        buffers = {"stdout": bytearray(), "stderr": bytearray()}
        overflow: list[str] = []

        async def pump(stream: asyncio.StreamReader | None, label: str) -> None:
            if stream is None:
                return
            buffer = buffers[label]
            while chunk := await stream.read(64 * 1024):
                if len(buffer) + len(chunk) > _MAX_EXEC_OUTPUT:
                    overflow.append(label)
                    _kill_group(process)
                    return
                buffer += chunk

        def shaped(error: str) -> dict[str, Any]:
            payload: dict[str, Any] = {"error": error}
            if want_stdout:
                payload["stdout"] = buffers["stdout"].decode("utf-8", "replace")
            if want_stderr:
                payload["stderr"] = buffers["stderr"].decode("utf-8", "replace")
            return payload

        self._processes.add(process)
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                await asyncio.gather(pump(process.stdout, "stdout"), pump(process.stderr, "stderr"))
                returncode = await process.wait()
        except TimeoutError:
            _kill_group(process)
            await process.wait()
            raise _ShapedFailure(shaped(f"Command timed out after {timeout_ms}ms.")) from None
        finally:
            # Also reached on cancellation: a cancelled run must not leave the command behind.
            _kill_group(process)
            self._processes.discard(process)

        cmdline = " ".join([command, *args["args"]])
        if overflow:
            raise _ShapedFailure(
                shaped(f"Command output exceeded 10 MB ({overflow[0]}); the process was killed.")
            )
        if returncode < 0:
            raise _ShapedFailure(
                shaped(f"Command killed by signal {signal.Signals(-returncode).name}: {cmdline}")
            )
        if returncode != 0:
            raise _ShapedFailure(shaped(f"Command failed with exit code {returncode}: {cmdline}"))
        output = ""
        if want_stdout:
            output += buffers["stdout"].decode("utf-8", "replace")
        if want_stderr:
            output += buffers["stderr"].decode("utf-8", "replace")
        if not output.strip():
            output = "Command executed successfully, but produced no output."
        return {"output": output}

    async def _read_text_file(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        with self._entry(requested, missing=f"File {requested} does not exist.") as entry:
            fd, st = self._open_existing(entry, requested, os.O_RDONLY)
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
        with self._entry(requested, missing=f"File {requested} does not exist.") as entry:
            fd, st = self._open_existing(entry, requested, os.O_RDONLY)
            os.close(fd)
        if st.st_size > limit:
            raise _ToolFailure(
                f"{label} file too large ({st.st_size / _MB:.1f}MB). Maximum supported size is "
                f"{limit // _MB}MB."
            )
        return entry.path, st.st_size

    def _read_image_file(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        extension = os.path.splitext(requested)[1].lower()
        mime_type = _IMAGE_TYPES.get(extension)
        if mime_type is None:
            raise _ToolFailure(
                f"Unsupported image format {extension or '(no extension)'} for {requested}. "
                "Supported formats: PNG, JPEG, GIF, WebP."
            )
        path, size = self._checked_media(requested, _MAX_IMAGE_BYTES, "Image")
        return {"path": path, "mimeType": mime_type, "size": size}

    def _read_pdf_file(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        if os.path.splitext(requested)[1].lower() != ".pdf":
            raise _ToolFailure(f"File {requested} is not a PDF file.")
        path, size = self._checked_media(requested, _MAX_PDF_BYTES, "PDF")
        return {"path": path, "mimeType": "application/pdf", "size": size}

    async def _write_text_file(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        data = args["text"].encode("utf-8")
        with self._entry(requested, create=True) as entry:
            st = self._lstat(entry)
            if st is not None:
                self._check_file(entry, requested, st, writable=True)
            # Truncated only once the descriptor is known to be a regular file we may change.
            fd, _ = self._open_file(entry, requested, os.O_WRONLY | os.O_CREAT)
        if len(data) > _INLINE_IO_BYTES:
            await asyncio.to_thread(_write_fd, fd, data, truncate=True)
        else:
            _write_fd(fd, data, truncate=True)
        return {"path": entry.path, "text": args["text"]}

    async def _append_text_file(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        data = args["text"].encode("utf-8")
        with self._entry(requested, missing=f"File {requested} does not exist.") as entry:
            st = self._existing(entry, f"File {requested} does not exist.")
            self._check_file(entry, requested, st, writable=True)
            fd, _ = self._open_existing(entry, requested, os.O_WRONLY | os.O_APPEND)
        if len(data) > _INLINE_IO_BYTES:
            await asyncio.to_thread(_write_fd, fd, data, truncate=False)
        else:
            _write_fd(fd, data, truncate=False)
        return {"path": entry.path, "text": args["text"]}

    async def _edit_text_file(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        with self._entry(requested, missing=f"File {requested} does not exist.") as entry:
            st = self._existing(entry, f"File {requested} does not exist.")
            self._check_file(entry, requested, st, writable=True)
            old = args["oldText"].replace("\r\n", "\n")
            new = args["newText"].replace("\r\n", "\n")
            if not old:
                # An empty oldText "matches" at offset 0 and would silently prepend newText.
                raise _ToolFailure("oldText must not be empty")
            # One descriptor for reading and writing: the file edited is the file read.
            fd, st = self._open_existing(entry, requested, os.O_RDWR)
        big = st.st_size > _INLINE_IO_BYTES
        try:
            if big:
                data = await asyncio.to_thread(_pread_all, fd)
            else:
                data = _pread_all(fd)
            content = data.decode("utf-8", "replace").replace("\r\n", "\n")
            if old not in content:
                raise _ToolFailure(f"Could not find exact match for oldText in file {entry.path}")
        except BaseException:
            os.close(fd)
            raise
        edited = content.replace(old, new, 1).encode("utf-8")
        if big:
            await asyncio.to_thread(_write_fd, fd, edited, truncate=True)
        else:
            _write_fd(fd, edited, truncate=True)
        return {"path": entry.path, "newText": args["newText"], "oldText": args["oldText"]}

    async def _move_file(self, args: dict[str, Any]) -> dict[str, Any]:
        source_name: str = args["source"]
        destination_name: str = args["destination"]
        # Both checked before anything is touched (the destination's parents get created).
        self._fs.lexical(source_name)
        self._refuse_env(destination_name, self._fs.lexical(destination_name))
        missing = f"Source file {source_name} does not exist."
        with self._entry(source_name, missing=missing) as source:
            st = self._existing(source, missing)
            if stat.S_ISLNK(st.st_mode):
                self._fs.check_link(source)
            if source.path == self._root or self._fs.contains_storage(source.path):
                raise _ToolFailure(STORAGE_DENIED)
            self._refuse_env(source_name, source.path, st)
            if not _writable(st):
                raise _ToolFailure(f"Source file {source_name} is not writable")
            with self._entry(destination_name, create=True) as destination:
                if self._lstat(destination) is not None:
                    raise _ToolFailure(f"Destination {destination_name} already exists.")
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
        with self._entry(requested, missing=missing) as entry:
            st = self._existing(entry, missing)
            if stat.S_ISDIR(st.st_mode):
                raise _ToolFailure(
                    f"Path {requested} is a directory. Use the deleteDirectory tool instead."
                )
            if stat.S_ISLNK(st.st_mode):
                # A symlink is removed itself; its target (inside the workspace) stays.
                self._fs.check_link(entry)
            elif not _writable(st):
                raise _ToolFailure(f"File {requested} is not writable")
            self._refuse_env(requested, entry.path, st)
            os.unlink(entry.name, dir_fd=entry.dir_fd)
        return {"path": entry.path}

    def _get_file_info(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        missing = f"File or directory {requested} does not exist."
        with self._entry(requested, follow=True, missing=missing) as entry:
            st = self._existing(entry, missing)
            self._refuse_env(requested, entry.path, st)
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
            if self._fs.is_denied(full):
                continue
            try:
                st = item.stat(follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    # Shown as what it points to; hidden (like storage) when that is outside
                    # the workspace, in storage or missing.
                    with self._fs.entry(full, follow=True) as target:
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
        with self._entry(requested, follow=True, missing=missing, env_ok=True) as entry:
            try:
                fd = os.open(entry.name, _LIST_FLAGS, dir_fd=entry.dir_fd)
            except FileNotFoundError:
                raise _ToolFailure(missing) from None
            except NotADirectoryError:
                raise _ToolFailure(f"Path {requested} is not a directory.") from None
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
        with self._entry(requested, create=True) as entry:
            if self._lstat(entry) is not None:
                raise _ToolFailure(exists)
            try:
                os.mkdir(entry.name, 0o777, dir_fd=entry.dir_fd)
            except FileExistsError:
                raise _ToolFailure(exists) from None
        return {"path": entry.path}

    async def _delete_directory(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        missing = f"Directory {requested} does not exist."
        with self._entry(requested, missing=missing) as entry:
            st = self._existing(entry, missing)
            if stat.S_ISLNK(st.st_mode):
                self._fs.check_link(entry)
                raise _ToolFailure("Operation denied: target is a symbolic link")
            if not stat.S_ISDIR(st.st_mode):
                raise _ToolFailure(f"Path {requested} is not a directory.")
            if entry.path == self._root:
                raise _ToolFailure("Access denied - the workspace root cannot be deleted")
            if self._fs.contains_storage(entry.path):
                raise _ToolFailure(STORAGE_DENIED)
            if args.get("recursive", False):
                # shutil's descriptor-based rmtree: it opens nothing by path and follows no link.
                await asyncio.to_thread(shutil.rmtree, entry.name, dir_fd=entry.dir_fd)
            else:
                try:
                    os.rmdir(entry.name, dir_fd=entry.dir_fd)
                except OSError as error:
                    if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                        raise
                    raise _ToolFailure(
                        f"Directory {requested} is not empty. Use recursive: true to delete it "
                        "with its contents."
                    ) from None
        return {"path": entry.path}


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
            if os.stat(path).st_size > _MAX_PDF_BYTES:
                raise OSError(f"file is larger than {_MAX_PDF_BYTES // _MB}MB")
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
            fd = os.open(entry.name, os.O_RDONLY | _OPEN_FLAGS, dir_fd=entry.dir_fd)
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError("not a regular file")
            if fs.is_env_file(entry.path, st):
                raise OSError("env files hold secrets and are not read")
            if st.st_size > _MAX_PDF_BYTES:
                raise OSError(f"file is larger than {_MAX_PDF_BYTES // _MB}MB")
            return handle.read()
    finally:
        fs.close()
