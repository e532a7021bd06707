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

# Most tests wait on servers rather than compute: two workers, one test file each at a time
# (a file's stack fixture is started once). The CI-sized chaos run goes alone afterwards,
# as its kills and timings assume a machine it does not share with other stacks.
TEST_WORKERS ?= 2
test: lint typecheck
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not chaos" tests
	$(BIN)/pytest -q -m ci_chaos tests/chaos

chaos: setup
	METALGATE_CHAOS_CLUSTERS=200 $(BIN)/pytest -q -m chaos tests/chaos

bench: setup
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
