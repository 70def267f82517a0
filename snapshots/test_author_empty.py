"""Snapshot of the empty state: no perstack.toml yet."""

from __future__ import annotations

from snapshots.helpers import SIZE


class TestEmptyState:
    def test_no_config_offers_to_create_one(self, snap_compare, studio_app) -> None:
        """You should see a centred card "No perstack.toml here yet".

        It explains what a perstack.toml is, says it will be created as perstack.toml in the
        current directory, asks for the "Key of the first expert" (prefilled "my-expert", the
        field focused with its text selected, so typing replaces it) and offers two buttons, Quit
        and "Create perstack.toml".
        """
        assert snap_compare(studio_app(None), terminal_size=SIZE)
