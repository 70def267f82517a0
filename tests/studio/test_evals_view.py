"""The Evals view under Pilot (issue 17 item 4): the grid, running a set, comparing, opening a job.

The cases run for real on the team in perstack.toml, against a local fake OpenAI server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from studio.app import make_app
from studio.screens.evals import NO_SETS, EvalsScreen
from studio.screens.run import RunScreen
from tests.evals.helpers import EVALS, project
from tests.fakellm import FakeLLM
from tests.studio.helpers import fixed_now
from tests.studio.test_run_view import SIZE, shape, until


@pytest.fixture
def folder(tmp_path: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in fake_llm.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PERSTACK_STORAGE_PATH", raising=False)
    project(tmp_path, fake_llm)
    return tmp_path


def cell(screen: EvalsScreen, row: int, column: str) -> str:
    table = screen.table
    index = [c.label.plain for c in table.columns.values()].index(column)
    return str(table.get_row_at(row)[index])


async def open_evals(pilot: Any) -> EvalsScreen:
    await pilot.press("f7")
    await until(pilot, lambda: isinstance(pilot.app.screen, EvalsScreen))
    screen = pilot.app.screen
    assert isinstance(screen, EvalsScreen)
    return screen


async def run_set(pilot: Any, screen: EvalsScreen) -> None:
    before = len(screen.runs)
    await pilot.press("r")
    await until(pilot, lambda: len(screen.runs) == before + 1 and not screen.running)


async def test_run_an_eval_set_and_see_regressions(folder: Path) -> None:
    app = make_app(folder / "perstack.toml", now=fixed_now, watch=False, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evals(pilot)
        summary = screen.query_one("#evals-summary")
        assert "Not run yet: press r" in str(summary.render())
        assert "writer-evals (evals.toml, 3 cases)" in str(
            screen.query_one("#evals-title").render()
        )

        await run_set(pilot, screen)
        assert screen.table.row_count == 3
        assert [cell(screen, row, "Result") for row in range(3)] == ["PASS", "PASS", "FAIL"]
        assert cell(screen, 0, "Checks") == "✓✓✓✓"
        assert "2/3 cases passed" in str(summary.render())
        assert "no earlier run to compare with" in str(summary.render())
        assert len(list((folder / "perstack" / "evals" / "writer-evals").glob("*.json"))) == 1

        # The first case now asks for other text: it regresses; the third is fixed.
        (folder / "evals.toml").write_text(
            EVALS.replace("write hello.txt: hello world", "write hello.txt: hello planet").replace(
                'text = "farewell"', 'text = "goodbye"'
            )
        )
        await run_set(pilot, screen)
        assert cell(screen, 0, "Before") == "PASS ▼ regressed"
        assert cell(screen, 2, "Before") == "FAIL ▲ fixed"
        assert "· compared with the run of " in str(summary.render())
        assert "(2/3; [ older, ] newer)" in str(summary.render())
        detail = str(screen.query_one("#evals-detail").render())
        assert "✗ hello.txt contains 'hello world': hello.txt has no 'hello world'" in detail

        # Enter opens the case's job with its tree.
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and bool(shape(app.screen)))
        run_screen = app.screen
        assert isinstance(run_screen, RunScreen)
        assert shape(run_screen)[0] == (0, "writer", "done")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)


async def test_older_and_newer_pick_the_run_compared_with(folder: Path) -> None:
    app = make_app(folder / "perstack.toml", now=fixed_now, watch=False, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evals(pilot)
        for _ in range(3):
            await run_set(pilot, screen)
        assert screen.previous is screen.runs[1]
        await pilot.press("[")
        assert screen.previous is screen.runs[0]
        await pilot.press("[")  # there is no older one
        assert screen.previous is screen.runs[0]
        await pilot.press("]")
        assert screen.previous is screen.runs[1]


async def test_a_folder_without_an_eval_set_says_how_to_make_one(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text('[experts."a"]\ninstruction = "Help."\n')
    app = make_app(tmp_path / "perstack.toml", now=fixed_now, watch=False, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evals(pilot)
        assert str(screen.query_one("#evals-summary").render()) == NO_SETS
        assert not screen.table.display
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, EvalsScreen))


async def test_a_broken_eval_set_shows_its_problems(folder: Path) -> None:
    (folder / "evals.toml").write_text("[[cases]]\nname = 1\n")
    app = make_app(folder / "perstack.toml", now=fixed_now, watch=False, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evals(pilot)
        text = str(screen.query_one("#evals-summary").render())
        assert "This eval set has problems" in text
        assert "cases[0].name: Input should be a valid string" in text
