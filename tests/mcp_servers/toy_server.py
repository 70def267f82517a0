"""A small MCP server for the MCP-skill tests, written with the mcp SDK (``MCPServer``).

Run as a script (the tests spawn it with the venv's python and a bare environment, so it must not
rely on the repository being importable)::

    python tests/mcp_servers/toy_server.py [--transport stdio|sse|streamable-http] [--port N]
        [--exit-before-handshake CODE] [--name NAME]

Tools cover every shape the client must handle: plain text, the server's environment and working
directory, ``isError`` results, JSON-RPC errors, a crash, a hang, every content block type, an
empty result, structured content only, stderr output, and output far over the client's limits
(huge text, many images, a flood of stderr).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys

import anyio
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
PDF = base64.b64encode(b"%PDF-1.4 fake").decode()


def build(name: str) -> MCPServer:
    server = MCPServer(name, version="9.9.9", log_level="WARNING")

    @server.tool(description="Echo the text back")
    def echo(text: str) -> str:
        return text

    @server.tool(description="The server's environment variables as JSON")
    def environment() -> str:
        return json.dumps(dict(os.environ))

    @server.tool(description="The server's working directory")
    def whereami() -> str:
        return os.getcwd()

    @server.tool(description="One HTTP request header (empty on stdio)")
    def header(name: str, ctx: Context) -> str:
        headers = ctx.headers or {}
        return str(headers.get(name.lower(), ""))

    @server.tool(description="Report a failure in-band (isError)")
    def fail(message: str) -> CallToolResult:
        return CallToolResult(content=[types.TextContent(text=message)], is_error=True)

    @server.tool(description="Answer with a JSON-RPC error")
    def protocol_error() -> str:
        raise MCPError(INVALID_PARAMS, "the arguments are not acceptable")

    @server.tool(description="Exit the process in the middle of the call")
    def crash() -> str:
        print("about to crash", file=sys.stderr, flush=True)
        os._exit(3)

    @server.tool(description="Never answer")
    async def hang() -> str:
        await anyio.sleep(3600)
        return "unreachable"

    @server.tool(description="Every content block type")
    def mixed() -> CallToolResult:
        return CallToolResult(
            content=[
                types.TextContent(text="first"),
                types.TextContent(text=""),
                types.ImageContent(data=PNG, mime_type="image/png"),
                types.EmbeddedResource(
                    resource=types.TextResourceContents(uri="file:///a.txt", text="resource text")
                ),
                types.EmbeddedResource(
                    resource=types.BlobResourceContents(
                        uri="file:///a.pdf", blob=PDF, mime_type="application/pdf"
                    )
                ),
                types.AudioContent(data=PNG, mime_type="audio/wav"),
                types.ResourceLink(uri="file:///b.txt", name="b"),
            ]
        )

    @server.tool(description="Nothing at all")
    def empty(flag: bool = False) -> CallToolResult:
        return CallToolResult(content=[])

    @server.tool(description="Only structured content")
    def structured() -> CallToolResult:
        return CallToolResult(content=[], structured_content={"answer": 42})

    @server.tool(description="Write to stderr")
    def shout(text: str) -> str:
        print(text, file=sys.stderr, flush=True)
        return "ok"

    @server.tool(description="A text result of `size` characters, in `parts` text blocks")
    def big(size: int, parts: int = 1) -> CallToolResult:
        text = ("0123456789" * (size // 10 + 1))[:size]
        step = max(1, -(-size // parts))
        blocks = [types.TextContent(text=text[i : i + step]) for i in range(0, size, step)]
        return CallToolResult(content=list(blocks))

    @server.tool(description="`count` PNG images of `size` bytes each, then a text block")
    def images(count: int, size: int) -> CallToolResult:
        data = base64.b64encode(b"\x89PNG" + b"\0" * (size - 4)).decode()
        content: list[types.ContentBlock] = [
            types.ImageContent(data=data, mime_type="image/png") for _ in range(count)
        ]
        return CallToolResult(content=[*content, types.TextContent(text="caption")])

    @server.tool(description="Write `size` bytes of stderr: lines of `line` bytes, then one long")
    def spew(size: int, line: int = 1000, long: int = 0) -> str:
        row = "e" * (line - 1) + "\n"
        for _ in range(size // line):
            sys.stderr.write(row)
        if long:
            sys.stderr.write("L" * long + "\n")
        sys.stderr.flush()
        return "spewed"

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", default="stdio", choices=["stdio", "sse", "streamable-http"])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--name", default="toy")
    parser.add_argument("--exit-before-handshake", type=int, default=None)
    options = parser.parse_args()
    if options.exit_before_handshake is not None:
        print("toy server: refusing to start", file=sys.stderr, flush=True)
        sys.exit(options.exit_before_handshake)
    print(f"toy server {options.name} starting", file=sys.stderr, flush=True)
    server = build(options.name)
    if options.transport == "stdio":
        server.run()
    elif options.transport == "sse":
        server.run("sse", host="127.0.0.1", port=options.port)
    else:
        server.run("streamable-http", host="127.0.0.1", port=options.port)


if __name__ == "__main__":
    main()
