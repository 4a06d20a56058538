# The two set-up commands: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
PYTEST_ARGS ?=

.PHONY: demo test test-quick install dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --progress-bar off -e .
	touch $@

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --progress-bar off -e '.[test]'
	touch $@

install: $(STAMP)

## make demo: create .venv, install, run the whole lifecycle on the embedded default (./.mlplatform)
demo: $(STAMP)
	$(BIN)/mlplatform demo

## make test: install what the tests need and run them all (CI runs this), with the slowest 25 and the total time
test: $(TEST_STAMP)
	bash tests/setup/postgres.sh
	bash tests/setup/observability.sh
	VENV=$(VENV) bash tests/setup/browser.sh
	PYTHON=$(PYTHON) bash tests/setup/airflow_venv.sh
	$(BIN)/python -m pytest --durations=25 $(PYTEST_ARGS)

## make test-quick: the inner loop, unit and in-process tests (not `slow`, see tests/plugins/speed.py); no set-up
test-quick: $(TEST_STAMP)
	$(BIN)/python -m pytest -m "not slow" --durations=10 $(PYTEST_ARGS)

## make dev: the Dagster UI on http://127.0.0.1:3000 over the same embedded home as the demo
dev: $(STAMP)
	mkdir -p $${DAGSTER_HOME:-$(CURDIR)/.mlplatform/dagster}
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.mlplatform/dagster} $(BIN)/dagster dev -w workspace.yaml

clean:
	rm -rf .mlplatform
