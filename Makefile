# One entry point for every check; .ci/run calls `make check` on a clean checkout.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Only folders that exist: a fresh checkout may not have every one yet.
SRC := $(wildcard runtime studio tests snapshots benchmarks)

.PHONY: check setup fmt fmt-check lint typecheck imports test snapshots-update demo dev console bench

check: setup fmt-check lint typecheck imports test

# The venv is (re)built when pyproject.toml changes, so a clean checkout needs nothing by hand.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

fmt: setup
	$(BIN)/ruff format $(SRC)
	$(BIN)/ruff check --fix $(SRC)

fmt-check: setup
	$(BIN)/ruff format --check --no-cache $(SRC)

lint: setup
	$(BIN)/ruff check --no-cache $(SRC)

# runtime is strict (pyproject.toml); the studio gets mypy's defaults.
typecheck: setup
	$(BIN)/mypy runtime studio

imports: setup
	$(BIN)/lint-imports

# Two workers: the suite spends much of its time waiting on subprocesses, servers and screens,
# so on 2 cores it takes about half as long (the 4-minute budget of make check).
test: setup
	$(BIN)/python -m pytest -q -n 2

snapshots-update: setup
	$(BIN)/python -m pytest snapshots --snapshot-update

bench: setup
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script; done

# The README's first command: the same venv `make check` uses, then the demo team (no API key).
demo: setup
	$(BIN)/perstack start --demo

# The studio under Textual's devtools: run `make console` in a second terminal first to see
# print() output, logs and events. ARGS replaces the demo: make dev ARGS="my-expert 'a query'".
dev: setup
	$(BIN)/textual run --dev -c $(BIN)/perstack start $(or $(ARGS),--demo)

console: setup
	$(BIN)/textual console
