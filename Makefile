# Two commands for a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test check lint typecheck unit serve bench bench-quota clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or: make PYTHON=python3 ...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,demo]'
	@touch $(STAMP)

## Run the system on the embedded defaults (SQLite file, sample district) and keep serving.
demo: $(STAMP)
	$(BIN)/patrolsync demo

## Everything CI runs: lint, types, the direction of imports, the whole test suite (PostgreSQL and Redis must be up).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest --cov=sync --cov-report=term --cov-fail-under=95

## Tests without lint (quicker while working).
unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

bench: $(STAMP)
	$(BIN)/python bench/sync.py --quick

## The quota worker's weekly evaluation vs one raw SQL aggregate (PostgreSQL must be up).
bench-quota: $(STAMP)
	$(BIN)/python bench/quota.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache patrolsync.db*
