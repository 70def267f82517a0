"""perstack.toml: its schema, loading, diagnostics, key positions, tomlkit authoring and env files.

This package's namespace is the public API the studio and embedders use; its modules are
internal and may be reorganised. Names load on first use, so importing one part (the run
path needs the schema and the loader) never pays for the others (tomlkit authoring).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime._lazy import lazy_exports

if TYPE_CHECKING:
    from runtime.config.authoring import (
        ConfigDocument,
        ConfigEditError,
        backup_config,
        minimal_config,
        save_config,
        three_way_merge,
        unified_diff,
    )
    from runtime.config.diagnostics import Diagnostic, diagnose
    from runtime.config.env import load_env
    from runtime.config.loader import config_path, find_config
    from runtime.config.locate import TomlLocator, read_key
    from runtime.config.problems import CONFIG_FILE_NAME
    from runtime.config.resolve import effective_settings
    from runtime.config.schema import (
        BASE_SKILL_NAME,
        EXPERT_KEY_RE,
        EXPERT_NAME_RE,
        SEMVER_RE,
        TAG_RE,
        split_expert_ref,
    )

_EXPORTS: dict[str, str] = {
    "BASE_SKILL_NAME": "runtime.config.schema",
    "CONFIG_FILE_NAME": "runtime.config.problems",
    "ConfigDocument": "runtime.config.authoring",
    "ConfigEditError": "runtime.config.authoring",
    "Diagnostic": "runtime.config.diagnostics",
    "EXPERT_KEY_RE": "runtime.config.schema",
    "EXPERT_NAME_RE": "runtime.config.schema",
    "SEMVER_RE": "runtime.config.schema",
    "TAG_RE": "runtime.config.schema",
    "TomlLocator": "runtime.config.locate",
    "backup_config": "runtime.config.authoring",
    "config_path": "runtime.config.loader",
    "find_config": "runtime.config.loader",
    "diagnose": "runtime.config.diagnostics",
    "effective_settings": "runtime.config.resolve",
    "load_env": "runtime.config.env",
    "minimal_config": "runtime.config.authoring",
    "read_key": "runtime.config.locate",
    "save_config": "runtime.config.authoring",
    "three_way_merge": "runtime.config.authoring",
    "split_expert_ref": "runtime.config.schema",
    "unified_diff": "runtime.config.authoring",
}


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = [
    "BASE_SKILL_NAME",
    "CONFIG_FILE_NAME",
    "ConfigDocument",
    "ConfigEditError",
    "Diagnostic",
    "EXPERT_KEY_RE",
    "EXPERT_NAME_RE",
    "SEMVER_RE",
    "TAG_RE",
    "TomlLocator",
    "backup_config",
    "config_path",
    "find_config",
    "diagnose",
    "effective_settings",
    "load_env",
    "minimal_config",
    "read_key",
    "save_config",
    "split_expert_ref",
    "three_way_merge",
    "unified_diff",
]
