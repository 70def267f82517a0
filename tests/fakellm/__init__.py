"""A scripted fake of OpenAI's chat completions and Anthropic's Messages API on 127.0.0.1.

It is a real HTTP server, so the code under test goes through its whole HTTP stack (litellm, the
OpenAI SDK, httpx/aiohttp, a native client) and a ``perstack run`` subprocess can reach it through
``OPENAI_BASE_URL`` or ``ANTHROPIC_BASE_URL``. It runs in a daemon thread of the test process
(stdlib ``ThreadingHTTPServer``: no event loop to share, starts in about a millisecond), or as its
own process::

    # prints the base URL, then serves until killed
    python -m tests.fakellm --port 0 --script replies.json

Usage from a test::

    fake.script(reply_tool_calls([("readTextFile", {"path": "a.txt"})]), reply_text("done"))
    ...  # point the code at fake.base_url with provider "openai" and any API key
    assert fake.requests[0]["messages"][0]["role"] == "system"

Two APIs, one script. The route decides the wire format of the reply:

- ``POST <any prefix>/chat/completions``: OpenAI chat completions (JSON, or SSE ``data:`` chunks
  ending in ``data: [DONE]``; a usage chunk when ``stream_options.include_usage``). Reasoning
  streams as ``reasoning_content``.
- ``POST <any prefix>/messages``: Anthropic Messages (``/v1/messages``; also ``/v1/v1/messages``,
  which litellm builds from an ``api_base`` ending in ``/v1``). JSON, or SSE with ``event:`` names:
  ``message_start``, ``ping``, then per content block (thinking with a ``signature_delta``, text,
  tool_use with ``input_json_delta`` pieces) ``content_block_start`` / ``content_block_delta`` /
  ``content_block_stop``, then ``message_delta`` (stop_reason, output_tokens) and
  ``message_stop``. Finish reasons map stop→end_turn, tool_calls→tool_use, length→max_tokens;
  errors use ``{"type": "error", "error": {"type", "message"}}``. Use :meth:`FakeLLM.anthropic_env`.

Every model request pops the next scripted reply (``default`` when the queue is empty, else a 500
that says the script is exhausted) and is recorded in ``requests``, ``request_headers``,
``request_times`` and ``request_paths``. Replies are plain data built by the ``reply_*`` helpers,
or a callable ``(request_body) -> Reply`` for replies that depend on the request:

- :func:`reply_text`, :func:`reply_tool_calls`, :func:`reply_length`: successful answers;
- :func:`reply_error`: an HTTP error in the route's error shape;
- :func:`reply_delay`: answer late (timeouts);
- :func:`reply_disconnect`: stream some text, then break the chunked framing mid-event;
- :func:`reply_truncated_stream`: stream some text, then end cleanly with no finish at all;
- :func:`reply_malformed_stream`: stream some text, then a data line that is not JSON, then end;
- :func:`reply_stream_error`: stream some text, then an in-stream error event;
- :func:`reply_raw`: exactly this status, body and content type (an HTML page, non-JSON "JSON").

The stream faults (disconnect, truncated, malformed, stream error) stream whether or not the
request asked for a stream.

Streams are written in batches of events (one flush per ~64 KiB, each event still separate on the
wire), so megabytes of tool arguments in tiny deltas are served fast; ``chunk_delay`` makes every
event its own flushed write again.

A server in another process is driven over HTTP: ``POST /_fake/script`` with a JSON list of reply
objects (see :func:`reply_from_json`), ``GET /_fake/requests``, ``POST /_fake/reset``.
"""

from __future__ import annotations

from .cli import serve as serve
from .fake import FakeLLM, no_proxy_env
from .replies import (
    ChatReply,
    DelayReply,
    DisconnectReply,
    ErrorReply,
    MalformedStreamReply,
    RawReply,
    Reply,
    ScriptItem,
    StreamErrorReply,
    TruncatedStreamReply,
    reply_delay,
    reply_disconnect,
    reply_error,
    reply_from_json,
    reply_length,
    reply_malformed_stream,
    reply_raw,
    reply_stream_error,
    reply_text,
    reply_tool_calls,
    reply_truncated_stream,
)
from .replies import FakeToolCall as FakeToolCall
from .wire import Api as Api

__all__ = [
    "ChatReply",
    "DelayReply",
    "DisconnectReply",
    "ErrorReply",
    "FakeLLM",
    "MalformedStreamReply",
    "no_proxy_env",
    "RawReply",
    "Reply",
    "ScriptItem",
    "StreamErrorReply",
    "TruncatedStreamReply",
    "reply_delay",
    "reply_disconnect",
    "reply_error",
    "reply_from_json",
    "reply_length",
    "reply_malformed_stream",
    "reply_raw",
    "reply_stream_error",
    "reply_text",
    "reply_tool_calls",
    "reply_truncated_stream",
]
