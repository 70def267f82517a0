"""OpenTelemetry traces, received by a real OTLP/HTTP endpoint on 127.0.0.1.

The receiver decodes each export with the official ``opentelemetry-proto`` messages; the tests
assert the span tree (job → runs → model calls and tool calls, delegates under the tool call that
started them) and the GenAI attributes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from runtime import RunSetting, parse_config, run
from runtime.jobs import Jobs
from studio.demo import DEMO_CONFIG, DEMO_EXPERT, DEMO_QUERY, demo_model
from tests.fakellm import FakeLLM


@dataclass
class ReceivedSpan:
    name: str
    span_id: bytes
    parent_id: bytes
    trace_id: bytes
    attributes: dict[str, Any]
    error: bool
    start: int
    end: int


class Receiver:
    """An OTLP/HTTP trace endpoint: POST /v1/traces with a protobuf ExportTraceServiceRequest."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with receiver._lock:
                    receiver.paths.append(self.path)
                    receiver._add(request)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _add(self, request: ExportTraceServiceRequest) -> None:
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: _value(a.value) for a in span.attributes}
                    self.spans.append(
                        ReceivedSpan(
                            span.name,
                            span.span_id,
                            span.parent_span_id,
                            span.trace_id,
                            attributes,
                            span.status.code == 2,
                            span.start_time_unix_nano,
                            span.end_time_unix_nano,
                        )
                    )

    def tree(self) -> list[tuple[int, str]]:
        """(depth, name) of every span, parents first, children in start order."""
        children: dict[bytes, list[ReceivedSpan]] = {}
        for span in self.spans:
            children.setdefault(span.parent_id, []).append(span)
        out: list[tuple[int, str]] = []

        def visit(span: ReceivedSpan, depth: int) -> None:
            out.append((depth, span.name))
            for child in sorted(children.get(span.span_id, []), key=lambda s: (s.start, s.name)):
                visit(child, depth + 1)

        for root in children.get(b"", []):
            visit(root, 0)
        return out


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


async def demo_job(workspace: Path) -> str:
    config = parse_config(DEMO_CONFIG.read_text(), path=workspace / "perstack.toml")
    setting = RunSetting(expert_key=DEMO_EXPERT, query=DEMO_QUERY, workspace=workspace)
    checkpoint = await run(setting, lambda _: None, model=demo_model(), config=config)
    return checkpoint.job_id


async def test_a_stored_team_job_becomes_one_trace_shaped_like_the_team(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.log import main as log_main

    job_id = await demo_job(tmp_path)
    monkeypatch.chdir(tmp_path)
    import io

    out, err = io.StringIO(), io.StringIO()
    assert log_main(["--otel", receiver.url, "--job", job_id], stdout=out, stderr=err) == 0, err
    assert out.getvalue().startswith(f"Sent job {job_id} as a trace of ")
    assert receiver.paths and set(receiver.paths) == {"/v1/traces"}
    assert len({span.trace_id for span in receiver.spans}) == 1
    tree = receiver.tree()
    assert tree[0] == (0, "invoke_workflow game-studio")
    assert tree[1] == (1, "invoke_agent game-studio")
    # Each delegate runs under the execute_tool span of the call that started it.
    for delegate in ("level-designer", "programmer"):
        at = tree.index((2, f"execute_tool {delegate}"))
        assert tree[at + 1] == (3, f"invoke_agent @demo/{delegate}")
    assert (2, "chat demo-scripted (no API key)") in tree  # the coordinator's own model calls
    chats = [s for s in receiver.spans if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert chats and all(s.attributes["gen_ai.usage.input_tokens"] > 0 for s in chats)
    assert all("gen_ai.response.finish_reasons" in s.attributes for s in chats)
    tools = [
        s for s in receiver.spans if s.attributes.get("gen_ai.operation.name") == "execute_tool"
    ]
    assert {s.attributes["gen_ai.tool.name"] for s in tools} >= {"level-designer", "writeTextFile"}
    assert all(s.attributes["gen_ai.tool.call.id"] for s in tools)
    runs = [
        s for s in receiver.spans if s.attributes.get("gen_ai.operation.name") == "invoke_agent"
    ]
    assert {s.attributes["perstack.run.status"] for s in runs} >= {"completed"}
    assert all(s.end >= s.start > 0 for s in receiver.spans)
    assert len(receiver.spans) == int(out.getvalue().split(" of ")[1].split()[0])
    # Stored and live give the same trace: the job's own timestamps.
    jobs = Jobs.for_workspace(tmp_path)
    first = next(iter(jobs.events(job_id, messages=False)))
    assert min(s.start for s in receiver.spans) == first.timestamp * 1_000_000


def test_perstack_run_traces_to_the_standard_endpoint_variable(
    tmp_path: Path, receiver: Receiver, fake_llm: FakeLLM
) -> None:
    """A live run (a real perstack run process against the fake model server)."""
    from tests.fakellm import reply_text, reply_tool_calls

    (tmp_path / "perstack.toml").write_text('[experts."solo"]\ninstruction = "Work alone."\n')
    fake_llm.script(
        reply_tool_calls([("readTextFile", {"path": "missing.txt"})]),
        reply_text("Done."),
    )
    env = {**fake_llm.process_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
    done = subprocess.run(
        [sys.executable, "-m", "studio", "run", "solo", "read it", "--provider", "openai"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    names = [name for _, name in receiver.tree()]
    assert names[:2] == ["invoke_workflow solo", "invoke_agent solo"]
    tool = next(s for s in receiver.spans if s.name == "execute_tool readTextFile")
    assert tool.error  # the base skill's in-band error: the one rule for failed results
    chat = next(s for s in receiver.spans if s.attributes.get("gen_ai.operation.name") == "chat")
    assert chat.attributes["gen_ai.provider.name"] == "openai"
    assert chat.attributes["gen_ai.request.model"]


def test_without_the_flag_or_variable_nothing_of_telemetry_is_imported(tmp_path: Path) -> None:
    probe = (
        "import sys, argparse\n"
        "from runtime.cli import start_tracing\n"
        "assert start_tracing(None, None) is None\n"
        "print(any(m.startswith(('opentelemetry', 'runtime.telemetry')) for m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OTEL_EXPORTER_OTLP_ENDPOINT"}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


async def test_a_run_started_in_the_studio_is_traced(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TUI traces its runs when the standard variable is set, as perstack run does."""
    from studio.run_app import make_run_app
    from tests.studio.test_run_view import SIZE, finished

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    (tmp_path / "perstack.toml").write_text(DEMO_CONFIG.read_text())
    app = make_run_app(
        workspace=tmp_path,
        expert_key=DEMO_EXPERT,
        query=DEMO_QUERY,
        language_model=demo_model(),
        cursor_blink=False,
    )
    async with app.run_test(size=SIZE) as pilot:
        screen = await finished(pilot)
        job_id = screen.controller.job_id
    names = [name for _, name in receiver.tree()]
    assert names[:2] == [f"invoke_workflow {DEMO_EXPERT}", f"invoke_agent {DEMO_EXPERT}"]
    assert any(span.attributes.get("gen_ai.conversation.id") == job_id for span in receiver.spans)
