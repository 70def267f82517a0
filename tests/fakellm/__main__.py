"""Serve a FakeLLM as its own process: ``python -m tests.fakellm --port 0 --script r.json``."""

from __future__ import annotations

import sys

from .cli import serve

if __name__ == "__main__":
    serve(sys.argv[1:])
