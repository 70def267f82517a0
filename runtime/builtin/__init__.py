"""Experts built into the runtime.

They resolve in any directory; a local definition of the same key in perstack.toml wins.
"""

from __future__ import annotations

from runtime.config import ExpertConfig


def builtin_experts() -> dict[str, ExpertConfig]:
    """The built-in experts by key."""
    from runtime.builtin.create_expert import CREATE_EXPERT_KEY, create_expert_config

    return {CREATE_EXPERT_KEY: create_expert_config()}
