"""What a tool result says about its call: the one rule for "this tool call failed".

Perstack's tools report most failures in band, as a normal result the model reads: the base
skill answers ``{"error": "<Error.name>", "message": "..."}`` and a failed MCP call comes back as
text starting with "Error calling tool". ``perstack log`` marks such a result ✗, and so do the
studio's tree and every other view: they all ask :func:`tool_result_failed`.

No pydantic here: ``perstack log`` asks it for every result it prints and starts without the
runtime's models.
"""

from __future__ import annotations

import json


def tool_result_failed(text: str, *, is_error: bool | None = None) -> bool:
    """Whether a tool result reports a failure.

    Args:
        text: The result's first text part.
        is_error: The result's ``isError`` flag, when the runtime set one (an unknown tool,
            invalid arguments, a crashed skill).

    Returns:
        True when ``is_error`` is set, when the text starts with "error" (any case), or when it
        is a JSON object whose ``error`` is a string (Perstack's base-skill convention).
    """
    if is_error:
        return True
    if text[:5].lower() == "error":
        return True
    # Only a result that mentions the key is decoded: results can be megabytes of JSON.
    if text.startswith("{") and '"error"' in text:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return False
        return isinstance(data, dict) and isinstance(data.get("error"), str)
    return False
