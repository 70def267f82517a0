"""``perstack log --json``: the document (its contract is docs/log-json.md) and its encoding."""

from __future__ import annotations

import json
import re

from runtime.jobs.records import JSON
from runtime.log.query import LogResult
from runtime.log.render import BIDI_AND_SEPARATORS

_HIDDEN_IN_JSON = re.compile(rf"[\x7f-\x9f{BIDI_AND_SEPARATORS}]")
"""What json.dumps (``ensure_ascii=False``) leaves raw that :func:`render.visible
<runtime.log.render.visible>` escapes."""


def json_document(result: LogResult) -> JSON:
    """The ``--json`` document (see docs/log-json.md for the contract)."""
    selection = result.selection
    events: list[JSON] = []
    context_ids: list[str] = []
    for record, is_context in selection.shown:
        payload = result.source.full_payload(record)
        if payload is None:
            continue
        events.append(payload)
        if is_context:
            context_ids.append(str(payload.get("id")))
    document: JSON = {
        "job": result.job,
        "events": events,
        "summary": result.summary,
        "isLatestJob": result.is_latest_job,
        "storagePath": str(result.storage_path),
        "totalEventsBeforeLimit": len(selection.matched),
        "matchedAfterPagination": len(selection.page),
    }
    if context_ids:
        document["contextEventIds"] = context_ids
    if result.run is not None:
        document["run"] = result.run.to_dict()
    if result.checkpoint is not None:
        document["checkpoint"] = result.checkpoint
    if result.checkpoints is not None:
        document["checkpoints"] = result.checkpoints
    if result.runs is not None:
        document["runs"] = [run.to_dict() for run in result.runs]
    if result.tree is not None:
        document["delegationTree"] = [node.to_dict() for node in result.tree]
    return document


def render_json(result: LogResult, *, pretty: bool = False) -> str:
    r"""``--json`` output: compact on one line, or indented by two spaces with ``pretty``.

    Text stays exact, yet the output holds no character a terminal acts on: those json.dumps
    leaves raw (DEL, C1, bidi controls, U+2028/9, lone surrogates) only ever occur inside
    strings, where a ``\uXXXX`` escape decodes to the same character.
    """
    document = json_document(result)
    if pretty:
        text = json.dumps(document, ensure_ascii=False, indent=2)
    else:
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    if _HIDDEN_IN_JSON.search(text) is None:
        return text
    return _HIDDEN_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
