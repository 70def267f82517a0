"""Unit tests of the query layer: --step, --filter semantics, paging, context and helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runtime.jobs.records import EventRecord, EventSource
from runtime.jobs.runs import step_ranges
from runtime.log.filters import LogError, StepFilter, parse_filter, parse_step
from runtime.log.query import Criteria, nearest, select


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", StepFilter("==", 5)),
        (">5", StepFilter(">", 5)),
        (">=5", StepFilter(">=", 5)),
        ("<5", StepFilter("<", 5)),
        ("<=5", StepFilter("<=", 5)),
        ("1-10", StepFilter("range", 1, 10)),
        (" 1 - 10 ", StepFilter("range", 1, 10)),
        (">= 7", StepFilter(">=", 7)),
        ("0", StepFilter("==", 0)),
    ],
)
def test_parse_step(text: str, expected: StepFilter) -> None:
    assert parse_step(text) == expected


def test_step_matches() -> None:
    assert [s for s in range(8) if parse_step("2-4").matches(s)] == [2, 3, 4]
    assert [s for s in range(8) if parse_step(">5").matches(s)] == [6, 7]
    assert [s for s in range(8) if parse_step("<=1").matches(s)] == [0, 1]


@pytest.mark.parametrize("text", ["5-2", ">=x", "-1", "1-", "5,6", "> ", "=5", "1e3"])
def test_parse_step_rejects(text: str) -> None:
    with pytest.raises(LogError) as caught:
        parse_step(text)
    assert caught.value.exit_code == 2
    assert "^" in caught.value.message


EVENT: dict[str, Any] = {
    "type": "callTools",
    "stepNumber": 3,
    "ok": True,
    "ratio": 0.5,
    "toolCalls": [
        {"toolName": "readTextFile", "args": {"path": "a.txt", "tags": ["x", "y"]}},
        {"toolName": "writeTextFile", "args": {"path": "b.txt"}},
    ],
    "nested": [[1, 2], [3]],
    "nothing": None,
}


@pytest.mark.parametrize(
    ("expression", "matches"),
    [
        ('.toolCalls[].toolName == "writeTextFile"', True),
        ('.toolCalls[].toolName == "deleteFile"', False),
        (".toolCalls[].toolName != readTextFile", True),  # any element differs
        (".toolCalls[0].toolName == readTextFile", True),
        (".toolCalls[-1].toolName == writeTextFile", True),
        (".toolCalls[5].toolName == writeTextFile", False),
        (".toolCalls[].args.tags[] == y", True),
        (".toolCalls[].args.tags == y", True),  # a path ending on an array fans out too
        (".nested[][] == 3", True),
        (".stepNumber == 3", True),
        (".stepNumber == 3.0", True),
        (".stepNumber >= 3", True),
        (".stepNumber > 3", False),
        (".stepNumber < 3.5", True),
        (".stepNumber <= -1", False),
        ('.stepNumber == "3"', False),
        (".ok == true", True),
        (".ok == 1", False),  # true is not 1
        (".ok != false", True),
        (".ratio == 0.5", True),
        (".ratio > 1e-3", True),
        (".missing == x", False),
        (".missing != x", False),  # absent fields never match
        (".nothing != x", False),
        (".type == 'callTools'", True),
        ('.type == "call\\u0054ools"', True),
        (".type==callTools", True),
        ("  .type   ==   callTools  ", True),
        (".$weird == 1", False),
        (".type.inner == x", False),  # path through a string
        (".toolCalls[].args.path == 'it\\'s'", False),
    ],
)
def test_filter_semantics(expression: str, matches: bool) -> None:
    assert parse_filter(expression).matches(EVENT) is matches


def test_filter_values() -> None:
    assert parse_filter(".a == 12").value == 12
    assert isinstance(parse_filter(".a == 12").value, int)
    assert parse_filter(".a == 1.5").value == 1.5
    assert parse_filter(".a == -2").value == -2
    assert parse_filter(".a == true").value is True
    assert parse_filter('.a == "true"').value == "true"
    assert parse_filter(".a == 'it\\'s'").value == "it's"
    assert parse_filter('.a == "say \\"hi\\""').value == 'say "hi"'
    assert parse_filter(".a == bare-word").value == "bare-word"
    assert parse_filter(".a[] == x").path == ("a", None)
    assert parse_filter(".a[2].b == x").path == ("a", 2, "b")


def record(index: int, event_type: str, step: int | None) -> EventRecord:
    raw = b"{}"
    item = EventRecord("run", Path("x"), index + 1, (raw, 0, 2), (event_type, step, index, None))
    item.index = index
    return item


def test_select_pages_then_adds_context() -> None:
    records = [record(i, "callTools" if i % 3 == 0 else "other", i) for i in range(12)]
    source = EventSource(lambda _: None)
    selection = select(records, Criteria(type="callTools", take=2, offset=1, context=1), source)
    assert [r.index for r in selection.matched] == [0, 3, 6, 9]
    assert [r.index for r in selection.page] == [3, 6]
    assert [(r.index, ctx) for r, ctx in selection.shown] == [
        (2, True),
        (3, False),
        (4, True),
        (5, True),
        (6, False),
        (7, True),
    ]
    assert selection.context_count == 4


def test_select_context_at_the_edges() -> None:
    records = [record(i, "x", i) for i in range(3)]
    selection = select(records, Criteria(take=0, context=5), EventSource(lambda _: None))
    assert [r.index for r, _ in selection.shown] == [0, 1, 2]
    assert selection.context_count == 0


def test_select_with_take_zero_returns_everything() -> None:
    records = [record(i, "x", i) for i in range(250)]
    selection = select(records, Criteria(take=0), EventSource(lambda _: None))
    assert len(selection.page) == 250
    assert len(select(records, Criteria(), EventSource(lambda _: None)).page) == 100


def test_step_ranges() -> None:
    assert step_ranges([1, 2, 3, 6, 8, 9]) == [(1, 3), (6, 6), (8, 9)]
    assert step_ranges([]) == []


def test_nearest() -> None:
    ids = ["abcdef", "abcxyz", "zzzzzz", "qwerty"]
    assert nearest("abcd", ids) == ["abcdef", "abcxyz"]
    assert nearest("qwerti", ids) == ["qwerty"]
    assert nearest("nothing", ids) == []


def test_lines_with_crlf_blank_lines_and_no_final_newline(tmp_path: Path) -> None:
    from runtime.jobs.records import load_events
    from runtime.jobs.store import Storage

    storage = Storage(tmp_path)
    folder = storage.run_dir("job", "run")
    folder.mkdir(parents=True)
    lines = [
        b'{"id":"a","timestamp":2,"jobId":"job","runId":"run","type":"skillConnected"}',
        b"",
        b'  {"type":"retry","stepNumber":4,"timestamp":1,"reason":"x"}  ',
        b'{"id":"c","timestamp":3,"jobId":"job","runId":"run","expertKey":"e","stepNumber":5,'
        b'"type":"completeRun","text":"ok"}',
    ]
    (folder / "events.jsonl").write_bytes(b"\r\n".join(lines))
    warnings: list[str] = []
    source = EventSource(warnings.append)
    records = load_events(storage, "job", ["run"], source)
    assert [(r.type, r.step, r.timestamp, r.line_number) for r in records] == [
        ("retry", 4, 1, 3),
        ("skillConnected", None, 2, 1),
        ("completeRun", 5, 3, 4),
    ]
    assert records[2].expert_key == "e"
    assert source.payload(records[2]) == {
        "id": "c",
        "timestamp": 3,
        "jobId": "job",
        "runId": "run",
        "expertKey": "e",
        "stepNumber": 5,
        "type": "completeRun",
        "text": "ok",
    }
    assert warnings == []


def test_empty_events_file(tmp_path: Path) -> None:
    from runtime.jobs.records import load_events
    from runtime.jobs.store import Storage

    storage = Storage(tmp_path)
    storage.run_dir("job", "run").mkdir(parents=True)
    (storage.run_dir("job", "run") / "events.jsonl").write_bytes(b"")
    assert load_events(storage, "job", ["run"], EventSource(lambda _: None)) == []


def test_memory_mapped_and_read_files_give_the_same_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runtime.jobs.records as query
    from tests.log.conftest import JobBuilder, log

    b = JobBuilder(tmp_path / "perstack")
    segment = b.start("run-1", "solo", "hello")
    segment.tools("readTextFile")
    segment.complete("done")
    read = log(b.root, "--json", "--take", "0").out
    monkeypatch.setattr(query, "_MMAP_THRESHOLD", 1)
    mapped = log(b.root, "--json", "--take", "0").out
    assert mapped == read
