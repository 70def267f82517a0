"""The studio's widgets: the team tree, the perstack.toml editor and the problems list."""
