# The two set-up commands: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
PYTEST_ARGS ?=
# Test files run on this many pytest-xdist workers, each file on one (most tests wait on servers, not the CPU).
PYTEST_WORKERS ?= 3
XDIST = -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

.PHONY: demo test test-quick lint typecheck install dev clean images stack-secrets stack-up stack-down stack-smoke

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

## make lint: ruff (lint and format check) over the code and the tests; `ruff format` fixes the formatting
lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## make typecheck: mypy over the package as installed: platform/, assets/ and sensors/ linked under `mlplatform`
typecheck: $(TEST_STAMP)
	rm -rf build/typecheck && mkdir -p build/typecheck/mlplatform
	cp -rs $(CURDIR)/platform/. build/typecheck/mlplatform/
	ln -s $(CURDIR)/assets build/typecheck/mlplatform/assets
	ln -s $(CURDIR)/sensors build/typecheck/mlplatform/sensors
	cd build/typecheck && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p mlplatform

## make test: install what the tests need and run them all (CI runs this), with the slowest 25 and the total time
test: lint typecheck
	bash tests/setup/postgres.sh
	bash tests/setup/observability.sh
	VENV=$(VENV) bash tests/setup/browser.sh
	PYTHON=$(PYTHON) bash tests/setup/airflow_venv.sh
	bash tests/setup/docker.sh
	$(BIN)/python -m pytest $(XDIST) --durations=25 $(PYTEST_ARGS)

## make test-quick: the inner loop, unit and in-process tests (not `slow`, see tests/plugins/speed.py); no set-up
test-quick: lint typecheck
	$(BIN)/python -m pytest $(XDIST) -m "not slow" --durations=10 $(PYTEST_ARGS)

## make dev: the Dagster UI on http://127.0.0.1:3000 over the same embedded home as the demo
dev: $(STAMP)
	$(BIN)/mlplatform dev

clean:
	rm -rf .mlplatform

## The compose stack (docs/stack.md). `make images` builds the platform and Airflow images from this checkout;
## BASE_IMAGE=<image> builds them FROM another base (tests/setup/docker.sh uses a local Debian base).
DOCKER ?= docker
COMPOSE ?= docker-compose --project-directory deploy -f deploy/docker-compose.yml --env-file deploy/.env
BASE_IMAGE ?= python:3.11-slim-bookworm
PLATFORM_IMAGE ?= mlplatform/platform:0.1.0
AIRFLOW_IMAGE ?= mlplatform/airflow:3.3.2

images:
	$(DOCKER) build --build-arg BASE_IMAGE=$(BASE_IMAGE) -f deploy/images/platform/Dockerfile -t $(PLATFORM_IMAGE) .
	$(DOCKER) build --build-arg BASE_IMAGE=$(BASE_IMAGE) -f deploy/images/airflow/Dockerfile -t $(AIRFLOW_IMAGE) deploy

## make stack-secrets: deploy/.env from deploy/.env.example with strong random secrets (kept if it exists)
stack-secrets:
	bash deploy/stack-secrets.sh deploy/.env

## make stack-up: build the images, write deploy/.env if missing, start everything (Grafana, Loki, Alloy included)
## and wait until every service is healthy. UIs on 127.0.0.1: docs/stack.md.
STACK_PROFILES ?= --profile observability
stack-up: images stack-secrets
	$(COMPOSE) $(STACK_PROFILES) up -d
	python3 deploy/stack.py wait --env deploy/.env

## make stack-down: stop and remove the containers (the volumes, i.e. the data, stay: add -v by hand to drop them)
stack-down:
	$(COMPOSE) $(STACK_PROFILES) down

## make stack-smoke: through the stack's own endpoints: load iris, train, promote, ask the Production model
stack-smoke:
	python3 deploy/stack.py smoke --env deploy/.env
