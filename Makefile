# Every target bootstraps the virtual environment in .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint typecheck unit chaos bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

# Extra flags reach `metalgate up`: make run ARGS="--api-port 9080"
run: setup
	$(BIN)/metalgate up $(ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy .

test: lint typecheck
	$(BIN)/pytest -q -m "not chaos or ci_chaos" tests

chaos: setup
	METALGATE_CHAOS_CLUSTERS=200 $(BIN)/pytest -q -m chaos tests/chaos

bench: setup
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
