# Formwork — the two quick-start commands are `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Front-end files from npm (package-lock.json) copied to formwork/static/vendor/, and the
# compiled Babel catalogs (.mo); both are git-ignored build output.
ASSETS := formwork/static/vendor/.built-stamp
CATALOGS := $(wildcard formwork/translations/*/LC_MESSAGES/messages.po)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint pytest pytest-dates test-pg clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(ASSETS): package.json package-lock.json scripts/build_assets.py $(CATALOGS) | $(STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python scripts/build_assets.py
	touch $(ASSETS)

install: $(STAMP) $(ASSETS)

## Serve the app on http://127.0.0.1:8000 (SQLite in instance/), creating what it needs: the
## module packs with their demo data (a second run keeps what is there).
run: install
	$(BIN)/formwork init
	$(BIN)/formwork demo
	$(BIN)/gunicorn --workers 2 --bind $(HOST):$(PORT) --access-logfile - wsgi:app

## Lint, type-check and run the whole test suite (browser tests only when /usr/bin/chromium exists),
## then the date-sensitive tests again with the test clock a year ahead (a time bomb fails there).
test: install lint pytest pytest-dates

lint: install
	$(BIN)/ruff check formwork tests bench scripts wsgi.py
	$(BIN)/ruff format --check formwork tests bench scripts wsgi.py
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

pytest-dates: install
	FORMWORK_TEST_CLOCK_SHIFT_DAYS=365 $(BIN)/pytest -m dates

## The suite against PostgreSQL on 127.0.0.1:5432 (database `test`).
test-pg: install
	FORMWORK_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test $(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
