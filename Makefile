# FleetLink developer commands. Every target bootstraps .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k ingest -x"`.
PYTEST_ARGS ?=

.PHONY: run test lint unit format bench clean help

help:
	@echo "make run    start the embedded stack with a simulated fleet (fleetlink up)"
	@echo "make test   lint, type-check and run the whole test suite"
	@echo "make unit   only the tests that need no servers"
	@echo "make lint   ruff and mypy"
	@echo "make format apply ruff's formatting and safe fixes"
	@echo "make bench  ingest benchmark: fleetlink bench ingest (ARGS=\"--vehicles 500 --json\")"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/fleetlink up $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest -m "not integration and not e2e" $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/fleetlink bench ingest $(ARGS)

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
