"""``perstack start --web``: the studio served by textual-serve, seen in a real headless Chromium.

The test starts ``perstack start --demo --web`` on a free port of 127.0.0.1, opens the page in
Debian's Chromium through the DevTools protocol, and reads the screenshots with Tesseract until
the demo team's tree is on screen. Skipped, with the reason, where Chromium or Tesseract is
missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TESSERACT = shutil.which("tesseract")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or TESSERACT is None,
    reason="needs Debian's chromium and tesseract-ocr (.ci/run installs them)",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[str], log: Path) -> None:
    timeout = 60.0
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if process.poll() is not None:
                output = log.read_text()
                raise AssertionError(f"perstack start --web exited: {output}") from None
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on {port} after {timeout} s") from None
            time.sleep(0.05)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "studio", "start", "--demo", "--web", "--port", str(port)],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        _wait_for_port(port, server, tmp_path / "server.log")
        yield f"http://127.0.0.1:{port}/", server
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _read_text(image: Path) -> str:
    assert TESSERACT is not None
    done = subprocess.run(
        [TESSERACT, str(image), "stdout"], capture_output=True, text=True, check=True
    )
    return done.stdout


class Browser:
    """Headless Chromium driven over the DevTools protocol (aiohttp's websocket client)."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        self.profile = profile
        self.process = subprocess.Popen(
            [
                CHROMIUM,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "--window-size=1400,900",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._next = 0

    async def open(self, url: str, shots: Path, wanted: str) -> str:
        """Load ``url``; screenshot and read it until ``wanted`` shows; return the text read."""
        import aiohttp

        active = self.profile / "DevToolsActivePort"
        while True:  # Chromium writes its DevTools port here once it listens
            if await asyncio.to_thread(active.exists):
                break
            await asyncio.sleep(0.05)
        port = active.read_text().split()[0]
        async with aiohttp.ClientSession() as http:
            targets = await (await http.get(f"http://127.0.0.1:{port}/json")).json()
            page = next(target for target in targets if target["type"] == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:

                async def call(method: str, **params: Any) -> Any:
                    self._next += 1
                    await ws.send_json({"id": self._next, "method": method, "params": params})
                    async for message in ws:
                        data = json.loads(message.data)
                        if data.get("id") == self._next:
                            return data.get("result")
                    raise AssertionError("the DevTools connection closed")

                await call("Page.enable")
                await call("Page.navigate", url=url)
                text = ""
                while wanted not in text:
                    shot = await call("Page.captureScreenshot", format="png")
                    if not shot:  # the page is still loading
                        await asyncio.sleep(0.1)
                        continue
                    await asyncio.to_thread(shots.write_bytes, base64.b64decode(shot["data"]))
                    text = await asyncio.to_thread(_read_text, shots)
                # The page's own heading (textual-serve's splash, named by --web).
                found = await call(
                    "Runtime.evaluate",
                    expression="document.documentElement.outerHTML.includes('Perstack Studio')",
                )
                return f"{found['result']['value']}\n{text}"

    def close(self) -> None:
        """Stop the browser."""
        self.process.kill()
        self.process.wait(timeout=30)


async def test_the_studio_runs_in_a_browser(
    served: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    url, _ = served
    browser = Browser(Path(tempfile.mkdtemp(dir=tmp_path)))
    try:
        async with asyncio.timeout(120):
            text = await browser.open(url, tmp_path / "studio.png", wanted="game-studio")
    finally:
        browser.close()
    titled, screen = text.split("\n", 1)
    assert titled == "True"
    # The demo team's tree: the coordinator, then (soon) its delegates; and the demo model.
    assert "game-studio" in screen
    assert "demo" in screen
    assert (tmp_path / "studio.png").stat().st_size > 10_000


def test_web_listens_on_this_machine_only_unless_told(tmp_path: Path) -> None:
    from studio.start import build_parser

    args = build_parser().parse_args(["--demo", "--web"])
    assert (args.host, args.port) == ("127.0.0.1", 8000)
