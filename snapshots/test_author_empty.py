"""Snapshots of the empty state: no perstack.toml yet."""

from __future__ import annotations

from textual.widgets import Input

from snapshots.helpers import SIZE, VARIANTS, wait_until
from studio.screens.create_config import CreateConfigScreen


class TestEmptyState:
    def test_no_config_offers_to_create_one(self, snap_compare, studio_app) -> None:
        """You should see a centred card "No perstack.toml here yet".

        It explains what a perstack.toml is, says it will be created as perstack.toml in the
        current directory, asks for the "Key of the first expert" (prefilled "my-expert", the
        field focused with its text selected, so typing replaces it) and offers two buttons, Quit
        and "Create perstack.toml".
        """
        assert snap_compare(studio_app(None), terminal_size=SIZE)

    @VARIANTS
    def test_in_each_size_and_theme(self, snap_compare, studio_app, size, theme) -> None:
        """You should see the "No perstack.toml here yet" card, centred, in each variant.

        The same card as test_no_config_offers_to_create_one in a small (80×24) or large
        (160×48) terminal, dark or light: the explanation wraps inside the card, the key field
        holds "my-expert" (selected) and the Quit and "Create perstack.toml" buttons stay on
        the card. The footer shows only ^q Quit, f1 Help and ^p palette.
        """
        assert snap_compare(studio_app(None, theme=theme), terminal_size=size)

    def test_refuses_a_bad_key(self, snap_compare, studio_app) -> None:
        """You should see the card keeping "My Expert" with a red reason under the field.

        Enter was pressed on the key "My Expert": the card says, in red, "'My Expert' is not a
        valid expert key: use lowercase letters, digits, '-' and '_'." and no file is created
        (the card stays).
        """

        async def bad_key(pilot) -> None:
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, CreateConfigScreen))
            pilot.app.screen.query_one(Input).value = "My Expert"
            await pilot.press("enter")
            await pilot.pause()

        assert snap_compare(studio_app(None), terminal_size=SIZE, run_before=bad_key)
