# Streams: `make dev` runs the whole stack locally, `make test` runs every test.
# Both install what they need into .venv (and .venv-bq for the BigQuery emulator).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BQ_VENV := .venv-bq

.PHONY: deps dev test lint fmt openapi unit stop clean bench

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(BQ_VENV)/.installed: emulators/requirements-bq.txt | $(BIN)/.installed
	$(BIN)/python -m emulators install-bq
	touch $@

deps: $(BIN)/.installed $(BQ_VENV)/.installed

dev: deps  ## Run emulators, functions and the gateway on http://127.0.0.1:8080 until Ctrl-C
	$(BIN)/python -m emulators.dev

test: deps lint  ## Lint, then unit, integration and end-to-end tests (emulators started by the tests)
	$(BIN)/pytest

unit: $(BIN)/.installed
	$(BIN)/pytest tests/unit

lint: $(BIN)/.installed  ## ruff, mypy and the import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

openapi: $(BIN)/.installed  ## Regenerate docs/openapi.json, the gateway config and terraform/requirements.txt
	$(BIN)/streams openapi --output docs/openapi.json
	$(BIN)/streams gateway-config --output terraform/modules/api/openapi.yaml.tftpl
	$(BIN)/python terraform/build.py

stop: $(BIN)/.installed  ## Kill emulators and functions left by an interrupted run
	$(BIN)/python -m emulators stop

clean: stop
	rm -rf $(VENV) $(BQ_VENV) .streams .pytest_cache .mypy_cache .ruff_cache

bench: deps  ## Benchmarks; JSON results in bench/results/
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.contracts
	$(BIN)/python -m bench.transform
