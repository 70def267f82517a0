"""Config input never crashes: mutated perstack.toml files load or raise ConfigError, nothing else.

The inputs are seeded mutations of the real files in ``tests/fixtures/configs`` (byte flips,
truncation, lines deleted or repeated, ``#`` and TOML tokens inserted, deep ``[[[[`` nesting,
``a.a.a...`` keys, megabyte strings, invalid UTF-8, NULs, bad ``envPath`` entries...). Each goes
through :func:`runtime.config.loader.load_config` from a file,
:func:`runtime.config.diagnostics.diagnose` and, when it loads, :func:`runtime.config.env.load_env`.
A failure names the seed and the case and saves the input; ``benchmarks/fuzz_config.py --seed S
--case N`` replays one case. The benchmark
also runs 10,000 cases and reports parse times, which tests do not assert.

A few inputs also go through ``perstack run`` in a subprocess: exit 2, a message, no traceback.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import traceback
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from runtime.config.diagnostics import diagnose
from runtime.config.env import load_env
from runtime.config.loader import load_config
from runtime.errors import ConfigError

CORPUS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "configs"
SEED = 8
"""The seed of the suite's run; the benchmark takes any."""
COUNT = 2000
MAX_INPUT_BYTES = 3_000_000
"""Inputs are cut here: well over the 1 MiB limit, and mutations that repeat a long line
cannot make gigabytes."""

Mutation = Callable[[random.Random, bytes], bytes]


@cache
def corpus() -> tuple[bytes, ...]:
    """The real files every input starts from."""
    return tuple(path.read_bytes() for path in sorted(CORPUS_DIR.rglob("*.toml")))


# Mutations -----------------------------------------------------------------------------------

_INTERESTING_BYTES = b"[]{}\"'#=.,\n\r\t \\\x00\x1b\x7f\xff"
_TOKENS = (
    b'"""',
    b"'''",
    b"[[",
    b"]]",
    b"[",
    b"]",
    b"{",
    b"}",
    b"=",
    b".",
    b",",
    b'"',
    b"'",
    b"\\",
    b"\\u",
    b"\\U0010FFFF",
    b"true",
    b"True",
    b"1e999",
    b"-0x1",
    b"nan",
    b"+inf",
    b"1979-05-27T07:32:00Z",
    b"07:32:00",
    b"99999999999999999999999",
    b"\r",
    b"\xef\xbb\xbf",
    "\u202e".encode(),
    b"\x1b[31m",
    b"\x00",
)
_VALUES = (
    b"#oops",
    b"",
    b"[",
    b"{",
    b"}",
    b"true",
    b"TRUE",
    b'"',
    b'"""',
    b"'''",
    b"1",
    b"-1",
    b"0",
    b"1.5",
    b"99999999999999999999999",
    b"inf",
    b"nan",
    b"[1, 2]",
    b'["a", 1]',
    b"[[]]",
    b"{a = 1}",
    b"{}",
    b"1979-05-27",
    b"'x'",
    b'"\\ud800"',
    b'"\\u0000"',
    b"unquoted words",
    b'"x" "y"',
    b'"' + b"\\" * 33 + b'"',
)


def _position(rng: random.Random, data: bytes) -> int:
    return rng.randrange(len(data) + 1)


def _insert(rng: random.Random, data: bytes, piece: bytes) -> bytes:
    at = _position(rng, data)
    return data[:at] + piece + data[at:]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def flip_bits(rng: random.Random, data: bytes) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if buffer:
            buffer[rng.randrange(len(buffer))] ^= 1 << rng.randrange(8)
    return bytes(buffer)


def set_bytes(rng: random.Random, data: bytes) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if buffer:
            buffer[rng.randrange(len(buffer))] = rng.choice(_INTERESTING_BYTES)
    return bytes(buffer)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: _position(rng, data)]


def delete_lines(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    for _ in range(rng.randint(1, 3)):
        if len(lines) > 1:
            del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def duplicate_lines(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    at = rng.randrange(len(lines))
    times = min(rng.choice((2, 3, 10, 1000, 12000)), MAX_INPUT_BYTES // (len(lines[at]) + 1) + 1)
    lines[at:at] = [lines[at]] * times
    return b"\n".join(lines)


def swap_lines(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def insert_hash(rng: random.Random, data: bytes) -> bytes:
    return _insert(rng, data, b"#")


def insert_token(rng: random.Random, data: bytes) -> bytes:
    return _insert(rng, data, rng.choice(_TOKENS))


def replace_value(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    assignments = [index for index, line in enumerate(lines) if b"=" in line]
    if not assignments:
        return data
    index = rng.choice(assignments)
    key = lines[index].split(b"=", 1)[0]
    lines[index] = key + b"= " + rng.choice(_VALUES)
    return b"\n".join(lines)


def deep_nesting(rng: random.Random, data: bytes) -> bytes:
    depth = rng.choice((10, 31, 32, 33, 100, 999, 1000, 5000, 100_000))
    opener = rng.choice((b"[", b"{a=", b"[{a=", b"[[", b"{ a = [ "))
    closer = {b"[": b"]", b"{a=": b"}", b"[{a=": b"}]", b"[[": b"]]", b"{ a = [ ": b"] }"}[opener]
    body = opener * depth + (b"1" + closer * depth if rng.random() < 0.5 else b"")
    if rng.random() < 0.5:
        return _insert(rng, data, body)
    lines = _lines(data)
    lines.insert(rng.randrange(len(lines) + 1), b"deep = " + body)
    return b"\n".join(lines)


def dotted_key(rng: random.Random, data: bytes) -> bytes:
    parts = rng.choice((5, 31, 32, 33, 100, 1000, 20_000, 100_000))
    part = rng.choice((b"a", b'"a"', b"'a'", b"experts", b"a ", b"\xc3\xa9"))
    key = b".".join([part] * parts)
    line = rng.choice((key + b" = 1", b"[" + key + b"]", b"[[" + key + b"]]", b"x = {" + key))
    lines = _lines(data)
    lines.insert(rng.randrange(len(lines) + 1), line)
    return b"\n".join(lines)


def huge_string(rng: random.Random, data: bytes) -> bytes:
    size = rng.choice((300, 5_000, 100_000, 1_100_000, 2_000_000))
    filler = rng.choice((b"x", b"\\\\", b"\xc3\xa9", b'"', b"a.", b"\n"))
    blob = filler * (size // len(filler))
    shape = rng.randrange(6)
    if shape == 0:  # inside an existing string
        at = data.find(b'"', rng.randrange(len(data) + 1))
        return data if at < 0 else data[: at + 1] + blob + data[at + 1 :]
    if shape == 1:
        return b'model = "' + blob + b'"\n' + data
    if shape == 2:
        return b'"' + blob + b'" = 1\n' + data
    if shape == 3:
        return b"model = " + blob + b"\n" + data
    if shape == 4:
        return data + b'\n[experts."' + blob[:300] + b'"]\nversion = "' + blob + b'"\n'
    return data + b"\n# " + blob


def invalid_utf8(rng: random.Random, data: bytes) -> bytes:
    return _insert(rng, data, rng.choice((b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80")))


def insert_nul(rng: random.Random, data: bytes) -> bytes:
    return _insert(rng, data, b"\x00" * rng.randint(1, 3))


def splice(rng: random.Random, data: bytes) -> bytes:
    other = rng.choice(corpus())
    return data[: _position(rng, data)] + other[_position(rng, other) :]


def line_endings(rng: random.Random, data: bytes) -> bytes:
    return data.replace(b"\n", rng.choice((b"\r\n", b"\r", b"\n\n", b"\x0c\n")))


def env_path(rng: random.Random, data: bytes) -> bytes:
    entry = rng.choice(
        (
            b"a" * 300,
            b"dir/" * 1100,
            b"\\u0000",
            b"a\\u0000b",
            b"~nosuchuser-perstack/.env",
            b"/",
            b".",
            b"",
            b"/dev/null",
            b"/proc/self/root/" + b"x/" * 50,
            b"\\u001b[31m.env",
            b"../" * 2000 + b".env",
        )
    )
    return b'envPath = ["' + entry + b'"]\n' + data


def many_keys(rng: random.Random, data: bytes) -> bytes:
    count = rng.choice((100, 5000, 10_001, 30_000))
    shape = rng.choice((b"k%d = %d\n", b"modle%d = %d\n", b'[experts."e%d"]\n#%d\n'))
    return b"".join(shape % (i, i) for i in range(count)) + data


def json_schema(rng: random.Random, data: bytes) -> bytes:
    depth = rng.choice((10, 5000, 9000))
    schema = rng.choice((b"[" * depth, b'{"a":' * depth + b"1" + b"}" * depth, b"{", b"[]"))
    return data + (
        b'\n[experts."fuzz".skills."ask"]\ntype = "interactiveSkill"\n'
        b'[experts."fuzz".skills."ask".tools."q"]\ninputJsonSchema = \'' + schema + b"'\n"
    )


MUTATIONS: dict[str, tuple[Mutation, int]] = {
    "flip_bits": (flip_bits, 12),
    "set_bytes": (set_bytes, 12),
    "truncate": (truncate, 8),
    "delete_lines": (delete_lines, 8),
    "duplicate_lines": (duplicate_lines, 6),
    "swap_lines": (swap_lines, 5),
    "insert_hash": (insert_hash, 8),
    "insert_token": (insert_token, 12),
    "replace_value": (replace_value, 12),
    "deep_nesting": (deep_nesting, 5),
    "dotted_key": (dotted_key, 5),
    "huge_string": (huge_string, 3),
    "invalid_utf8": (invalid_utf8, 4),
    "insert_nul": (insert_nul, 4),
    "splice": (splice, 5),
    "line_endings": (line_endings, 3),
    "env_path": (env_path, 5),
    "many_keys": (many_keys, 2),
    "json_schema": (json_schema, 2),
}
"""Every mutation with its weight."""


def case(seed: int, index: int) -> tuple[str, bytes]:
    """Input ``index`` of the run seeded ``seed``: (the mutations applied, the file's bytes).

    Each case has its own generator, so any one can be rebuilt alone.
    """
    rng = random.Random(f"{seed}:{index}")
    data = rng.choice(corpus())
    names = rng.choices(
        list(MUTATIONS), weights=[weight for _, weight in MUTATIONS.values()], k=rng.randint(1, 3)
    )
    for name in names:
        data = MUTATIONS[name][0](rng, data)[:MAX_INPUT_BYTES]
    return "+".join(names), data


# Checking one input ----------------------------------------------------------------------------


def check_input(data: bytes, workdir: Path) -> str:
    """Load ``data`` as ``workdir/perstack.toml`` every way a user can; ``"ok"`` or ``"error"``.

    Raises:
        Exception: Anything but a ConfigError (or an internal error from ``diagnose``), which
            is the bug this looks for.
    """
    path = workdir / "perstack.toml"
    path.write_bytes(data)
    text = data.decode("utf-8", errors="replace")
    for item in diagnose(text):
        if item.message.startswith("internal error"):
            raise AssertionError(f"diagnose: {item.message}")
    try:
        loaded = load_config(None, workdir)
    except ConfigError:
        return "error"
    try:
        load_env(loaded.config.env_path, workdir, environ={})
    except ConfigError:
        return "error"
    return "ok"


def test_mutated_files_load_or_raise_config_error(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    failures: list[str] = []
    outcomes = {"ok": 0, "error": 0}
    for index in range(COUNT):
        names, data = case(SEED, index)
        try:
            outcomes[check_input(data, workdir)] += 1
        except Exception as error:
            saved = tmp_path / f"fuzz-{SEED}-{index}.toml"
            saved.write_bytes(data)
            where = traceback.extract_tb(error.__traceback__)[-1]
            failures.append(
                f"case {index} ({names}): {type(error).__name__}: {str(error)[:200]} at "
                f"{Path(where.filename).name}:{where.lineno}; input saved to {saved}; replay "
                f"with benchmarks/fuzz_config.py --seed {SEED} --case {index}"
            )
    assert not failures, f"{len(failures)} of {COUNT} inputs crashed:\n" + "\n".join(failures[:10])
    # Both outcomes happen, or the mutations are too weak (or too strong) to mean anything.
    assert outcomes["ok"] > COUNT // 50 and outcomes["error"] > COUNT // 2, outcomes


def test_cases_are_reproducible() -> None:
    assert case(SEED, 7) == case(SEED, 7)
    assert case(SEED, 7) != case(SEED + 1, 7)


# Through the command line -------------------------------------------------------------------

_CLI_CASES = {
    "deep nesting": (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", [], "too deeply nested"),
    "missing value": (b"model = #oops\n", [], "perstack.toml:1: invalid TOML: Invalid value"),
    "long envPath": (
        b'envPath = ["' + b"a" * 300 + b'"]\n',
        [],
        "perstack.toml:1 envPath[0]: has a file or directory name of 300 bytes",
    ),
    "over 1 MiB": (b'model = "' + b"x" * 1_500_000 + b'"\n', [], "too large: 1,500,011 bytes"),
    "long bad value": (
        b'[experts.x]\ninstruction = "hi"\nversion = "' + b"9" * 900_000 + b'"\n',
        [],
        "(900,000 characters)",
    ),
    "dotted key": (b".".join([b"a"] * 20_000) + b" = 1\n", [], "too many parts in one dotted key"),
    "invalid UTF-8": (b'model = "caf\xe9"\n', [], "perstack.toml:1: not valid UTF-8"),
    "NUL": (b'model = "a\x00"\n', [], "perstack.toml:1: invalid TOML"),
    "long --env-path": (
        b'[experts.x]\ninstruction = "hi"\n',
        ["--env-path", "b" * 300],
        "envPath / --env-path entry 'bbbb",
    ),
    "unknown ~user in envPath": (
        b'envPath = ["~nosuchuser-perstack/.env"]\n[experts.x]\ninstruction = "hi"\n',
        [],
        "starts with ~ but names no user",
    ),
}


@pytest.mark.parametrize("name", list(_CLI_CASES))
def test_the_cli_exits_2_with_a_short_message(tmp_path: Path, name: str) -> None:
    data, options, expected = _CLI_CASES[name]
    (tmp_path / "perstack.toml").write_bytes(data)
    environ = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    environ.pop("PERSTACK_STORAGE_PATH", None)
    result = subprocess.run(
        [sys.executable, "-m", "studio", "run", "x", "y", *options],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert expected in result.stderr, result.stderr[:2000]
    assert len(result.stderr) < 2000, result.stderr[:2000]
    assert result.stdout == ""
