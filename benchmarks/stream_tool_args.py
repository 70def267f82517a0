"""Streamed tool arguments: 2 MB arriving in 16-byte deltas (target: under 3 s).

A fault campaign saw 141 s for this; the native clients assemble arguments in linear time.
litellm's own per-delta cost (about 0.5 ms) makes it slow on that path whatever we do, so the
litellm figure is measured only with ``--litellm`` (about a minute per run).

Run: ``.venv/bin/python benchmarks/stream_tool_args.py [--runs N] [--litellm]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from runtime.llm import GenerationRequest, ToolCallChunk, ToolSpec  # noqa: E402
from runtime.llm.factory import create_model  # noqa: E402
from runtime.schema.messages import TextPart, UserMessage  # noqa: E402
from tests.fakellm import FakeLLM, reply_tool_calls  # noqa: E402

SIZE = 2_000_000
TARGET_S = 3.0
TOOL = ToolSpec("writeTextFile", "Write a file", {"type": "object"})


async def once(fake: FakeLLM, api: str, client: str) -> float:
    text = "x" * SIZE
    fake.reset()
    fake.script(
        reply_tool_calls([("writeTextFile", {"path": "big.txt", "text": text})], chunk_size=16)
    )
    if api == "openai":
        model = create_model(
            "openai",
            "gpt-4.1",
            {"baseUrl": fake.base_url, "client": client},
            {"OPENAI_API_KEY": "k"},
        )
    else:
        model = create_model(
            "anthropic",
            "claude-sonnet-4-5",
            {"baseUrl": fake.anthropic_base_url, "client": client},
            {"ANTHROPIC_API_KEY": "k"},
        )
    request = GenerationRequest(
        messages=[UserMessage(contents=[TextPart(text="write")])], tools=[TOOL], timeout_ms=600_000
    )
    prepare = getattr(model, "prepare", None)
    if prepare is not None:
        await prepare()  # litellm's import is not part of the figure
    start = time.perf_counter()
    chunks = [chunk async for chunk in model.stream(request)]
    elapsed = time.perf_counter() - start
    (call,) = [c for c in chunks if isinstance(c, ToolCallChunk)]
    if len(json.loads(call.arguments)["text"]) != SIZE:
        raise SystemExit(f"{api}/{client}: the arguments arrived incomplete")
    await model.aclose()  # type: ignore[attr-defined]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--litellm", action="store_true", help="also measure the litellm path")
    args = parser.parse_args()
    clients = ["native", "litellm"] if args.litellm else ["native"]
    cases = [(api, client) for client in clients for api in ("openai", "anthropic")]
    times: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
    with FakeLLM() as fake:
        for _ in range(args.runs if not args.litellm else 1):
            for case in cases:  # interleaved: the machine is noisy
                times[case].append(asyncio.run(once(fake, *case)))
    for (api, client), samples in times.items():
        median = statistics.median(samples)
        verdict = "met" if median < TARGET_S else "NOT met"
        print(
            f"2 MB of tool arguments, {api} API, {client:<7} median {median:6.2f} s"
            f"   min–max {min(samples):.2f}–{max(samples):.2f} s"
            f"   target < {TARGET_S:.0f} s: {verdict}"
        )


if __name__ == "__main__":
    main()
