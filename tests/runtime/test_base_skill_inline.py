"""The base skill's image and PDF tools (readImageFile, readPdfFile) and
``inline_file_results``, which turns their results into inline image and file parts
(§6)."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

from runtime.schema.messages import FileInlinePart, ImageInlinePart, TextPart
from runtime.skills.base import BaseSkill, inline_file_results
from runtime.skills.types import ToolOutcome
from tests.runtime.base_skill_helpers import (  # noqa: F401 - the fixtures skill and ws
    fail,
    fail_message,
    ok,
    run_args,
    skill_fixture,
    text_of,
    ws_fixture,
)


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


TINY_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 10 10]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


async def test_read_image_file_returns_path_type_and_size(skill: BaseSkill, ws: Path) -> None:
    png = tiny_png()
    (ws / "dot.PNG").write_bytes(png)
    (ws / "photo.jpeg").write_bytes(b"\xff\xd8\xff")
    assert await ok(skill, "readImageFile", path="dot.PNG") == {
        "path": str(ws / "dot.PNG"),
        "mimeType": "image/png",
        "size": len(png),
    }
    assert (await ok(skill, "readImageFile", path="photo.jpeg"))["mimeType"] == "image/jpeg"


async def test_read_image_file_failures(skill: BaseSkill, ws: Path) -> None:
    (ws / "pic.bmp").write_bytes(b"BM")
    assert "Unsupported image format .bmp" in await fail_message(
        skill, "readImageFile", path="pic.bmp"
    )
    assert await fail_message(skill, "readImageFile", path="none.png") == (
        "File none.png does not exist."
    )
    with (ws / "huge.png").open("wb") as handle:
        handle.truncate(15 * 1024 * 1024 + 1)
    message = await fail_message(skill, "readImageFile", path="huge.png")
    assert message == "Image file too large (15.0MB). Maximum supported size is 15MB."


async def test_read_pdf_file(skill: BaseSkill, ws: Path) -> None:
    (ws / "doc.pdf").write_bytes(TINY_PDF)
    assert await ok(skill, "readPdfFile", path="doc.pdf") == {
        "path": str(ws / "doc.pdf"),
        "mimeType": "application/pdf",
        "size": len(TINY_PDF),
    }
    (ws / "doc.txt").write_text("x", encoding="utf-8")
    assert await fail_message(skill, "readPdfFile", path="doc.txt") == (
        "File doc.txt is not a PDF file."
    )
    with (ws / "huge.pdf").open("wb") as handle:
        handle.truncate(30 * 1024 * 1024 + 1)
    message = await fail_message(skill, "readPdfFile", path="huge.pdf")
    assert message == "PDF file too large (30.0MB). Maximum supported size is 30MB."


async def test_inline_file_results_for_a_png(skill: BaseSkill, ws: Path) -> None:
    png = tiny_png()
    (ws / "dot.png").write_bytes(png)
    outcome = inline_file_results(
        "readImageFile", await skill.call("readImageFile", {"path": "dot.png"})
    )
    assert not outcome.is_error
    [part] = outcome.contents
    assert isinstance(part, ImageInlinePart)
    assert part.mime_type == "image/png"
    assert base64.b64decode(part.encoded_data) == png


async def test_inline_file_results_for_a_pdf(skill: BaseSkill, ws: Path) -> None:
    (ws / "doc.pdf").write_bytes(TINY_PDF)
    outcome = inline_file_results(
        "readPdfFile", await skill.call("readPdfFile", {"path": "doc.pdf"})
    )
    [part] = outcome.contents
    assert isinstance(part, FileInlinePart)
    assert part.mime_type == "application/pdf"
    assert base64.b64decode(part.encoded_data) == TINY_PDF


def test_inline_file_results_read_failure(tmp_path: Path) -> None:
    missing = tmp_path / "gone.png"
    result = json.dumps({"path": str(missing), "mimeType": "image/png", "size": 1})
    outcome = inline_file_results("readImageFile", ToolOutcome(contents=[TextPart(text=result)]))
    assert outcome.is_error
    assert text_of(outcome) == f'Failed to read file "{missing}": No such file or directory'


def test_inline_file_results_leaves_other_results_alone() -> None:
    plain = ToolOutcome(contents=[TextPart(text='{"path":"/x","mimeType":"image/png","size":1}')])
    assert inline_file_results("readTextFile", plain) is plain
    error = ToolOutcome(
        contents=[TextPart(text='{"path":"/x","mimeType":"image/png"}')], is_error=True
    )
    assert inline_file_results("readImageFile", error) is error
    not_json = ToolOutcome(contents=[TextPart(text="an image, trust me")])
    assert inline_file_results("readImageFile", not_json) is not_json
    no_mime = ToolOutcome(contents=[TextPart(text='{"path":"/x"}')])
    assert inline_file_results("readPdfFile", no_mime) is no_mime


def test_inline_file_results_inside_a_workspace_reads_only_inside(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "img").mkdir(parents=True)
    (ws / "img/a.png").write_bytes(tiny_png())
    (tmp_path / "out.png").write_bytes(tiny_png())
    (ws / "img/link.png").symlink_to(tmp_path / "out.png")
    (ws / ".env.png").write_bytes(tiny_png())

    def inline(path: Path) -> ToolOutcome:
        info = {"path": str(path), "mimeType": "image/png", "size": 1}
        outcome = ToolOutcome(contents=[TextPart(text=json.dumps(info))])
        return inline_file_results("readImageFile", outcome, workspace=ws)

    good = inline(ws / "img/a.png")
    assert isinstance(good.contents[0], ImageInlinePart)
    for path, reason in [
        (tmp_path / "out.png", "Access denied - path outside allowed directories"),
        (ws / "img/link.png", "Too many levels of symbolic links"),
        (ws / ".env.png", "env files hold secrets"),
    ]:
        outcome = inline(path)
        assert outcome.is_error
        assert text_of(outcome).startswith(f'Failed to read file "{path}": {reason}')
