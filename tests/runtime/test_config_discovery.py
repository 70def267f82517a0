"""Finding perstack.toml: the nearest file up from the working directory, --config paths and
directories, and the labels that name the file in messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.config.loader import find_config, load_config
from runtime.config.problems import ConfigFileError
from runtime.errors import ConfigError


def _no_config_above(path: Path) -> bool:
    return not any((parent / "perstack.toml").exists() for parent in path.parents)


def test_discovery_from_a_nested_subdirectory(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text('[experts."a"]\ninstruction = "x"\n')
    nested = tmp_path / "src" / "deep"
    nested.mkdir(parents=True)
    loaded = load_config(cwd=nested)
    assert loaded.path == tmp_path / "perstack.toml"
    assert loaded.label == "../../perstack.toml"
    assert loaded.base_dir == tmp_path
    assert find_config(None, nested) == tmp_path / "perstack.toml"


def test_the_nearest_file_wins(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text('model = "outer"\n')
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "perstack.toml").write_text('model = "inner"\n')
    assert load_config(cwd=tmp_path / "inner").config.model == "inner"


def test_labels_name_the_file_in_error_messages(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text('[experts."a"]\n')
    (tmp_path / "sub").mkdir()
    with pytest.raises(ConfigFileError) as info:
        load_config(cwd=tmp_path / "sub")
    assert str(info.value) == '../perstack.toml:1 experts."a".instruction: field required'


def test_config_option_relative_to_cwd(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "team.toml").write_text('model = "m"\nmodle = "typo"\n')
    loaded = load_config("configs/team.toml", cwd=tmp_path)
    assert loaded.path == tmp_path / "configs" / "team.toml"
    assert loaded.label == "configs/team.toml"
    assert [str(w) for w in loaded.warnings] == [
        "configs/team.toml:2 modle: unknown key (ignored; did you mean model?)"
    ]


def test_config_option_absolute_path(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text("")
    assert load_config(str(path), cwd=Path("/")).path == path


def test_missing_config_option_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("nope.toml", cwd=tmp_path)
    assert str(info.value) == 'Given config path "nope.toml" is not found'


def test_config_option_pointing_at_a_directory(tmp_path: Path) -> None:
    """--config DIR means DIR/perstack.toml, for perstack run as for perstack start."""
    (tmp_path / "proj").mkdir()
    with pytest.raises(ConfigError) as info:
        load_config("proj", cwd=tmp_path)
    assert str(info.value) == (
        'Given config path "proj" is a directory without a perstack.toml; create one there or '
        "pass the toml file's path"
    )
    (tmp_path / "proj" / "perstack.toml").write_text('[experts."a"]\ninstruction = "x"\n')
    assert load_config("proj", cwd=tmp_path).path == tmp_path / "proj" / "perstack.toml"


def test_run_and_start_agree_on_config_directories(tmp_path: Path) -> None:
    from runtime.config import find_config
    from studio.session import locate_config

    project = tmp_path / "proj"
    project.mkdir()
    (project / "perstack.toml").write_text('[experts."a"]\ninstruction = "x"\n')
    for given in ("proj", "proj/", "proj/perstack.toml", str(project)):
        assert find_config(given, tmp_path) == locate_config(given, tmp_path)
        assert find_config(given, tmp_path) == project / "perstack.toml"
    # Without a file, start offers to create it where run says it is missing.
    (project / "perstack.toml").unlink()
    assert locate_config("proj", tmp_path) == project / "perstack.toml"
    with pytest.raises(ConfigError, match="directory without a perstack.toml"):
        find_config("proj", tmp_path)


def test_no_config_anywhere(tmp_path: Path) -> None:
    if not _no_config_above(tmp_path):
        pytest.skip("a perstack.toml exists above the temporary directory")
    with pytest.raises(ConfigError) as info:
        load_config(cwd=tmp_path)
    assert str(info.value) == (
        f"perstack.toml not found in {tmp_path} or any parent directory. "
        "Create one or specify --config <path>."
    )
