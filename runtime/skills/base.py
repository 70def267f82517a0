"""The built-in base skill ``@perstack/base``: files, commands and a todo list (reference §6).

Tool names, parameters and result shapes are Perstack's (§6.3), so an expert written for Perstack
works unchanged. Where we differ (§18.7): failures are flagged ``is_error``, ``writeTextFile``,
``createDirectory`` and ``moveFile`` create missing parent directories, and the todo list belongs
to one :class:`BaseSkill` (one run) instead of the whole process.

Every path a tool receives goes through :meth:`BaseSkill._resolve`: it must stay inside the
workspace after symlinks are resolved, and the storage directory is off limits.
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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from runtime.config import BASE_SKILL_NAME
from runtime.env import PROTECTED_ENV_NAMES, SAFE_ENV_NAMES
from runtime.messages import FileInlinePart, ImageInlinePart, TextPart
from runtime.skills.types import ResultPart, SkillKind, ToolDefinition, ToolOutcome

if TYPE_CHECKING:
    from runtime.sandbox import Sandbox

__all__ = ["BaseSkill", "inline_file_results"]

_MB = 1024 * 1024
_MAX_IMAGE_BYTES = 15 * _MB
_MAX_PDF_BYTES = 30 * _MB
_MAX_EXEC_OUTPUT = 10 * _MB
_DEFAULT_EXEC_TIMEOUT_MS = 60_000

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


def _read_bytes_nofollow(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _write_text_nofollow(path: str, text: str, *, append: bool) -> None:
    flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_APPEND if append else os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.write(text.encode("utf-8"))


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
    ) -> None:
        self._sandbox = sandbox
        self._allowed_domains = tuple(allowed_domains)
        self._root = os.path.realpath(os.path.expanduser(workspace))
        self._root_prefix = self._root if self._root.endswith(os.sep) else self._root + os.sep
        denied = [os.path.join(self._root, "perstack")]
        if storage_dir is not None:
            storage = os.path.join(self._root, os.path.expanduser(storage_dir))
            denied += [os.path.normpath(storage), os.path.realpath(storage)]
        # Compared case-folded: on a case-insensitive file system PERSTACK/ is the same directory.
        # Only directories strictly inside the workspace matter; the rest is denied anyway.
        self._denied = sorted(
            {d.casefold() for d in denied if d.startswith(self._root_prefix) and d != self._root}
        )
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
        except _ShapedFailure as failure:
            return ToolOutcome(contents=[TextPart(text=_dumps(failure.payload))], is_error=True)
        except OSError as error:
            return _failure(type(error).__name__, _os_message(error))
        except Exception as error:  # a tool bug must reach the model, not end the run (§18.4)
            return _failure(type(error).__name__, str(error) or repr(error))
        return ToolOutcome(contents=[TextPart(text=_dumps(result))])

    async def close(self) -> None:
        """Kill commands still running from ``exec``."""
        for process in list(self._processes):
            _kill_group(process)
        for process in list(self._processes):
            with contextlib.suppress(TimeoutError, ProcessLookupError):
                async with asyncio.timeout(2):
                    await process.wait()
        self._processes.clear()

    # Paths ----------------------------------------------------------------------------------

    def _inside(self, path: str) -> bool:
        return path == self._root or path.startswith(self._root_prefix)

    def _is_denied(self, path: str) -> bool:
        folded = path.casefold()
        return any(folded == d or folded.startswith(d + os.sep) for d in self._denied)

    def _check_storage(self, path: str) -> None:
        if self._is_denied(path):
            raise _ToolFailure("Access denied - perstack directory is not allowed")

    def _contains_storage(self, path: str) -> bool:
        prefix = path.casefold() + os.sep
        return any(denied.startswith(prefix) for denied in self._denied)

    def _resolve(self, requested: str) -> str:
        """The absolute path ``requested`` names, checked against the workspace rules (§6.2).

        Directories on the way are resolved; the last component is kept as written so a
        symlink can be recognised (and refused) by the tools that read or write content.
        """
        if requested == "~" or requested.startswith("~/"):
            requested = os.path.expanduser("~") + requested[1:]
        # Working on the normalised path (not the raw one) keeps "link/.." from meaning
        # something different to the OS than to this check.
        lexical = os.path.normpath(os.path.join(self._root, requested))
        if not self._inside(lexical):
            raise _ToolFailure(
                f"Access denied - path outside allowed directories: {lexical} not in {self._root}"
            )
        self._check_storage(lexical)
        if lexical == self._root:
            return self._root
        parent, leaf = os.path.split(lexical)
        real_parent = os.path.realpath(parent)
        target = os.path.join(real_parent, leaf)
        real = os.path.realpath(target)
        # The parent matters on its own: unlinking or renaming acts on a symlink itself, so a
        # link outside the workspace must not be reachable even if it points back inside.
        if not (self._inside(real_parent) and self._inside(real)):
            raise _ToolFailure("Access denied - symlink target outside allowed directories")
        self._check_storage(target)
        self._check_storage(real)
        return target

    def _resolve_content(self, requested: str) -> tuple[str, os.stat_result | None]:
        """Like :meth:`_resolve` for tools that read or write content: no symlink, no FIFO."""
        path = self._resolve(requested)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return path, None
        if stat.S_ISLNK(st.st_mode):
            raise _ToolFailure("Operation denied: target is a symbolic link")
        if stat.S_ISDIR(st.st_mode):
            raise _ToolFailure(f"Path {requested} is a directory.")
        if not stat.S_ISREG(st.st_mode):
            raise _ToolFailure(f"Path {requested} is not a regular file.")
        return path, st

    def _resolve_directory(self, requested: str) -> str:
        path = self._resolve(requested)
        if not os.path.isdir(path):
            raise _ToolFailure(f"Directory {requested} does not exist.")
        return path

    def _existing_content(self, requested: str) -> tuple[str, os.stat_result]:
        path, st = self._resolve_content(requested)
        if st is None:
            raise _ToolFailure(f"File {requested} does not exist.")
        return path, st

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
        cwd = self._resolve_directory(args["cwd"])
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
        path, st = self._existing_content(args["path"])
        if st.st_size > _INLINE_IO_BYTES:
            data = await asyncio.to_thread(_read_bytes_nofollow, path)
        else:
            data = _read_bytes_nofollow(path)
        # Decoded leniently, as Node does: one stray byte should not make a whole file unreadable.
        lines = data.decode("utf-8", "replace").split("\n")
        start: int = args.get("from", 0)
        end: int = args.get("to", len(lines))
        return {"path": path, "content": "\n".join(lines[start:end]), "from": start, "to": end}

    def _checked_media(self, requested: str, limit: int, label: str) -> tuple[str, int]:
        path, st = self._existing_content(requested)
        if st.st_size > limit:
            raise _ToolFailure(
                f"{label} file too large ({st.st_size / _MB:.1f}MB). Maximum supported size is "
                f"{limit // _MB}MB."
            )
        return path, st.st_size

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
        path, st = self._resolve_content(args["path"])
        text: str = args["text"]
        if st is not None and not _writable(st):
            raise _ToolFailure(f"File {args['path']} is not writable")
        if st is None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        if len(text) > _INLINE_IO_BYTES:
            await asyncio.to_thread(_write_text_nofollow, path, text, append=False)
        else:
            _write_text_nofollow(path, text, append=False)
        return {"path": path, "text": text}

    async def _append_text_file(self, args: dict[str, Any]) -> dict[str, Any]:
        path, st = self._existing_content(args["path"])
        text: str = args["text"]
        if not _writable(st):
            raise _ToolFailure(f"File {args['path']} is not writable")
        if len(text) > _INLINE_IO_BYTES:
            await asyncio.to_thread(_write_text_nofollow, path, text, append=True)
        else:
            _write_text_nofollow(path, text, append=True)
        return {"path": path, "text": text}

    async def _edit_text_file(self, args: dict[str, Any]) -> dict[str, Any]:
        path, st = self._existing_content(args["path"])
        if not _writable(st):
            raise _ToolFailure(f"File {args['path']} is not writable")
        old = args["oldText"].replace("\r\n", "\n")
        new = args["newText"].replace("\r\n", "\n")
        if not old:
            # An empty oldText "matches" at offset 0 and would silently prepend newText.
            raise _ToolFailure("oldText must not be empty")
        big = st.st_size > _INLINE_IO_BYTES
        if big:
            data = await asyncio.to_thread(_read_bytes_nofollow, path)
        else:
            data = _read_bytes_nofollow(path)
        content = data.decode("utf-8", "replace").replace("\r\n", "\n")
        if old not in content:
            raise _ToolFailure(f"Could not find exact match for oldText in file {path}")
        edited = content.replace(old, new, 1)
        if big:
            await asyncio.to_thread(_write_text_nofollow, path, edited, append=False)
        else:
            _write_text_nofollow(path, edited, append=False)
        return {"path": path, "newText": args["newText"], "oldText": args["oldText"]}

    def _prepare_move(self, args: dict[str, Any]) -> tuple[str, str]:
        source = self._resolve(args["source"])
        destination = self._resolve(args["destination"])
        try:
            st = os.lstat(source)
        except FileNotFoundError:
            raise _ToolFailure(f"Source file {args['source']} does not exist.") from None
        if source == self._root or self._contains_storage(source):
            raise _ToolFailure("Access denied - perstack directory is not allowed")
        if not _writable(st):
            raise _ToolFailure(f"Source file {args['source']} is not writable")
        if os.path.lexists(destination):
            raise _ToolFailure(f"Destination {args['destination']} already exists.")
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        return source, destination

    async def _move_file(self, args: dict[str, Any]) -> dict[str, Any]:
        source, destination = self._prepare_move(args)
        try:
            os.rename(source, destination)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            # Another file system (a bind mount inside the workspace): copy, then delete.
            await asyncio.to_thread(shutil.move, source, destination)
        return {"source": source, "destination": destination}

    def _delete_file(self, args: dict[str, Any]) -> dict[str, Any]:
        path = self._resolve(args["path"])
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise _ToolFailure(f"File {args['path']} does not exist.") from None
        if stat.S_ISDIR(st.st_mode):
            raise _ToolFailure(
                f"Path {args['path']} is a directory. Use the deleteDirectory tool instead."
            )
        if not _writable(st) and not stat.S_ISLNK(st.st_mode):
            raise _ToolFailure(f"File {args['path']} is not writable")
        # A symlink is removed itself; its target (inside the workspace) stays.
        os.unlink(path)
        return {"path": path}

    def _get_file_info(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        path = self._resolve(requested)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise _ToolFailure(f"File or directory {requested} does not exist.") from None
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
            "permissions": {
                "readable": os.access(path, os.R_OK),
                "writable": os.access(path, os.W_OK),
                "executable": os.access(path, os.X_OK),
            },
        }

    def _list_entries(self, directory: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for name in sorted(os.listdir(directory)):
            full = os.path.join(directory, name)
            if self._is_denied(full):
                continue
            try:
                st = os.stat(full)
            except OSError:
                continue  # dangling symlink, or gone since listdir
            if os.path.islink(full):
                # A link leading out of the workspace or into storage is hidden like storage.
                real = os.path.realpath(full)
                if not self._inside(real) or self._is_denied(real):
                    continue
            items.append(
                {
                    "name": name,
                    "path": name,
                    "type": "directory" if stat.S_ISDIR(st.st_mode) else "file",
                    "size": st.st_size,
                    "modified": _iso(st.st_mtime),
                }
            )
        return items

    def _stat_directory(self, requested: str) -> tuple[str, str, os.stat_result]:
        path = self._resolve(requested)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise _ToolFailure(f"Directory {requested} does not exist.") from None
        if not stat.S_ISDIR(st.st_mode):
            raise _ToolFailure(f"Path {requested} is not a directory.")
        # Listed through its real path so the storage check sees through a symlinked directory.
        return path, os.path.realpath(path), st

    async def _list_directory(self, args: dict[str, Any]) -> dict[str, Any]:
        path, real, st = self._stat_directory(args["path"])
        if st.st_size > _INLINE_LISTING_BYTES:
            items = await asyncio.to_thread(self._list_entries, real)
        else:
            items = self._list_entries(real)
        return {"path": path, "items": items}

    def _create_directory(self, args: dict[str, Any]) -> dict[str, Any]:
        path = self._resolve(args["path"])
        if os.path.lexists(path):
            raise _ToolFailure(f"Directory {args['path']} already exists.")
        os.makedirs(path)
        return {"path": path}

    async def _delete_directory(self, args: dict[str, Any]) -> dict[str, Any]:
        requested: str = args["path"]
        path = self._resolve(requested)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise _ToolFailure(f"Directory {requested} does not exist.") from None
        if stat.S_ISLNK(st.st_mode):
            raise _ToolFailure("Operation denied: target is a symbolic link")
        if not stat.S_ISDIR(st.st_mode):
            raise _ToolFailure(f"Path {requested} is not a directory.")
        if path == self._root:
            raise _ToolFailure("Access denied - the workspace root cannot be deleted")
        if self._contains_storage(path):
            raise _ToolFailure("Access denied - perstack directory is not allowed")
        if args.get("recursive", False):
            await asyncio.to_thread(shutil.rmtree, path)
        else:
            try:
                os.rmdir(path)
            except OSError as error:
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                raise _ToolFailure(
                    f"Directory {requested} is not empty. Use recursive: true to delete it "
                    "with its contents."
                ) from None
        return {"path": path}


def inline_file_results(tool_name: str, outcome: ToolOutcome) -> ToolOutcome:
    """Replace a ``readImageFile``/``readPdfFile`` result with the file's bytes (§5.9).

    Applied by the agent loop to every skill's results, keyed on the tool name as Perstack does.
    Anything that is not a successful ``{path, mimeType, size}`` JSON text is returned unchanged.
    This reads the file synchronously (up to 30 MB).

    Args:
        tool_name: The tool that produced ``outcome``.
        outcome: The tool's result.

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
        # Another skill may hand us any path: never read more than the base tools would allow.
        if os.stat(path).st_size > _MAX_PDF_BYTES:
            raise OSError(f"file is larger than {_MAX_PDF_BYTES // _MB}MB")
        data = Path(path).read_bytes()
    except OSError as error:
        reason = error.strerror or str(error)
        return ToolOutcome.error(f'Failed to read file "{path}": {reason}')
    encoded = base64.b64encode(data).decode("ascii")
    inline: ResultPart = part_type(encoded_data=encoded, mime_type=mime_type)
    return ToolOutcome(contents=[inline])
