# Two commands on a fresh clone: `make run` (the app) and `make test` (the whole suite).
# The first use creates .venv and installs the project with its dev tools.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The first look: broker, server and three simulated stations in one process (data in ./data).
# Flags go in ARGS, e.g. make run ARGS=--reset-admin-password (make takes --flags for itself).
run: $(STAMP)
	$(BIN)/precisionpulse demo --via-make $(ARGS)

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
