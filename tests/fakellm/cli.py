"""``python -m tests.fakellm``: a FakeLLM as its own process."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Sequence

from .fake import FakeLLM
from .replies import reply_from_json, reply_text


def serve(argv: Sequence[str] | None = None) -> None:
    """Run a FakeLLM as its own process; prints the base URL on stdout, then serves until killed."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakellm", description=serve.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", help="JSON file with a list of replies (see reply_from_json)")
    parser.add_argument("--default-text", help="answer this text when the script is empty")
    args = parser.parse_args(argv)
    default = reply_text(args.default_text) if args.default_text is not None else None
    fake = FakeLLM(port=args.port, default=default)
    if args.script:
        with open(args.script, encoding="utf-8") as f:
            fake.script(*(reply_from_json(item) for item in json.load(f)))
    print(fake.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.close()
