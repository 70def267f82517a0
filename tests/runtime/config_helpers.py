"""Shared helpers of the perstack.toml loading tests (tests/runtime/test_config_*.py):
the fixture corpus in tests/fixtures/configs and loading one of its files."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.config.loader import LoadedConfig, parse_config
from runtime.config.problems import ConfigFileError

CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "configs"
VALID = sorted(CONFIGS.glob("*.toml"))
INVALID = sorted((CONFIGS / "invalid").glob("*.toml"))


def load_fixture(name: str) -> LoadedConfig:
    path = CONFIGS / name
    return parse_config(path.read_text(encoding="utf-8"), path=path)


def error_of(name: str) -> ConfigFileError:
    with pytest.raises(ConfigFileError) as info:
        load_fixture(name)
    return info.value
