# Two commands on a fresh clone: `make run` (the app) and `make test` (the whole suite).
# The first use creates .venv and installs the project with its dev tools.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest screenshots clean

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

# The README's pictures: the tests that check those screens take them (Chromium, offscreen
# Qt) into artifacts/; this runs those tests and copies the pictures into docs/screenshots/.
SHOTS := overview fleet device-filled history-two-channels audit-log devices-1000 \
	reports-availability station-window station-window-dark
SHOT_TESTS := tests/e2e/test_overview_e2e.py tests/e2e/test_live_dashboard.py \
	tests/e2e/test_history_filled.py tests/e2e/test_audit_e2e.py tests/e2e/test_long_tables.py \
	tests/e2e/test_reports_e2e.py tests/desktop/window/test_theme.py
screenshots: $(STAMP)
	PP_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q $(SHOT_TESTS)
	mkdir -p docs/screenshots
	cp $(SHOTS:%=artifacts/%.png) docs/screenshots/

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
