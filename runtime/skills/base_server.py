"""Serve the base skill over MCP stdio, for clients other than our own runtime.

The runtime calls :class:`~runtime.skills.base.BaseSkill` in process; this server exposes the same
tools, with the same JSON schemas and results, to any MCP client::

    python -m runtime.skills.base_server --workspace /path/to/workspace

stdout carries only the protocol. Diagnostics go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from runtime.schema.messages import FileInlinePart, ImageInlinePart, TextPart
from runtime.skills.base import BaseSkill
from runtime.skills.types import ResultPart
from runtime.version import __version__

__all__ = ["build_server", "main", "serve"]

_Context = ServerRequestContext[dict[str, Any]]


def _content(part: ResultPart) -> types.ContentBlock:
    if isinstance(part, TextPart):
        return types.TextContent(text=part.text)
    if isinstance(part, ImageInlinePart):
        return types.ImageContent(data=part.encoded_data, mime_type=part.mime_type)
    assert isinstance(part, FileInlinePart)
    blob = types.BlobResourceContents(
        uri=f"data:{part.mime_type}", mime_type=part.mime_type, blob=part.encoded_data
    )
    return types.EmbeddedResource(resource=blob)


def build_server(skill: BaseSkill) -> Server[dict[str, Any]]:
    """A low-level MCP server named ``@perstack/base`` that delegates every call to ``skill``.

    The low-level server is used (not ``MCPServer``) so the advertised input schemas are exactly
    the skill's, and so nothing configures the root logger.

    Args:
        skill: The base skill that runs the tools; the caller closes it.

    Returns:
        The server, ready for :meth:`Server.run` or an in-process ``mcp.Client``.
    """
    tools = [
        types.Tool(
            name=definition.name,
            description=definition.description,
            input_schema=definition.input_schema,
        )
        for definition in skill.tools()
    ]

    async def list_tools(
        ctx: _Context, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: _Context, params: types.CallToolRequestParams) -> types.CallToolResult:
        outcome = await skill.call(params.name, params.arguments or {})
        return types.CallToolResult(
            content=[_content(part) for part in outcome.contents], is_error=outcome.is_error
        )

    return Server(
        skill.name,
        version=__version__,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve(workspace: Path, *, storage_dir: Path | None = None) -> None:
    """Serve the base skill for ``workspace`` over stdin/stdout until the client disconnects.

    Args:
        workspace: The directory the tools are confined to.
        storage_dir: A storage directory to deny besides ``workspace/perstack``.
    """
    skill = BaseSkill(workspace, storage_dir=storage_dir)
    server = build_server(skill)
    try:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
    finally:
        await skill.close()


def build_parser(prog: str = "perstack base") -> argparse.ArgumentParser:
    """The parser of the base skill's server command."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve the @perstack/base skill over MCP stdio.",
    )
    parser.add_argument(
        "--workspace",
        type=Path,
        default=None,
        help="directory the tools may use (default: the current directory)",
    )
    parser.add_argument(
        "--storage-dir",
        type=Path,
        default=None,
        help="storage directory to deny besides <workspace>/perstack",
    )
    return parser


def main(
    argv: Sequence[str] | None = None, *, prog: str = "python -m runtime.skills.base_server"
) -> int:
    """Command-line entry point: ``python -m runtime.skills.base_server [--workspace PATH]``.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.
        prog: The command name its help and errors show (``perstack base`` from the CLI).

    Returns:
        The process exit code: 0 after a clean disconnect, 2 for a bad workspace.
    """
    options = build_parser(prog).parse_args(argv)
    workspace: Path = options.workspace if options.workspace is not None else Path.cwd()
    if not workspace.is_dir():
        print(f"base server: workspace {workspace} is not a directory", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(workspace, storage_dir=options.storage_dir))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
