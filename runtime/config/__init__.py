"""perstack.toml: its schema, loading, diagnostics, tomlkit authoring and env files."""
