# Streams: `make dev` runs the whole stack locally, `make test` runs every test.
# Both install what they need into .venv (and .venv-bq for the BigQuery emulator; `make test`
# also .venv-checkov).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BQ_VENV := .venv-bq
CHECKOV_VENV := .venv-checkov
# The functions' lock file (terraform/build.py): .venv installs the same versions.
LOCK := terraform/requirements.txt

.PHONY: deps test-deps dev test lint fmt openapi unit stop clean bench console collect reliability package \
	checkov

$(BIN)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# quickjs-ng installs the same modules as the older `quickjs`, whose extension would win:
	# an upgraded .venv drops both and gets quickjs-ng alone.
	if $(BIN)/pip show -q quickjs 2>/dev/null; then $(BIN)/pip uninstall -q -y quickjs quickjs-ng; fi
	# The runtime dependencies at the lock file's versions: the tests run what is deployed.
	$(BIN)/python terraform/build.py constraints > $(VENV)/runtime-constraints.txt
	$(BIN)/pip install --quiet -c $(VENV)/runtime-constraints.txt -e '.[dev]'
	touch $@

$(BQ_VENV)/.installed: emulators/requirements-bq.txt | $(BIN)/.installed
	$(BIN)/python -m emulators install-bq
	touch $@

deps: $(BIN)/.installed $(BQ_VENV)/.installed

# The web console (docs/CONSOLE.md): npm ci from the lock file, then vite build into console/dist,
# which the console function serves. Rebuilt when a source or the lock file changes.
CONSOLE_SOURCES := $(shell find console/src -type f 2>/dev/null) console/index.html \
	console/vite.config.ts console/tsconfig.json

console/node_modules/.installed: console/package.json console/package-lock.json
	cd console && npm ci --no-audit --no-fund
	touch $@

console/dist/index.html: console/node_modules/.installed $(CONSOLE_SOURCES)
	cd console && npm run build

console: console/dist/index.html  ## Build the web console into console/dist (npm ci, vite build)

# The browser SDKs ingest serves (docs/INGEST.md, Browsers and mobile apps): pinned npm packages
# (collect/package-lock.json) copied into collect/dist. Nothing is fetched from a CDN at run time.
collect/node_modules/.installed: collect/package.json collect/package-lock.json
	cd collect && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

collect/dist/manifest.json: collect/node_modules/.installed collect/build.mjs
	cd collect && npm run build

collect: collect/dist/manifest.json  ## Copy analytics.js 2.0 and RudderStack's SDK into collect/dist

# Every function's source zip for terraform (docs/DEPLOY.md, Builds), built files included:
# terraform/.build/functions/<name>.zip and its manifest. Terraform refuses to plan without them.
package: $(BIN)/.installed console collect  ## Build the functions' source zips; run before terraform plan
	$(BIN)/python terraform/build.py package

# checkov (pinned with its dependencies in tools/requirements-checkov.txt) in a venv of its own.
$(CHECKOV_VENV)/.installed: tools/requirements-checkov.txt
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --require-hashes -r tools/requirements-checkov.txt
	touch $@

checkov: $(BIN)/.installed $(CHECKOV_VENV)/.installed  ## checkov on terraform/ (the test that fails on unskipped findings)
	$(BIN)/pytest tests/unit/test_checkov.py -q

dev: deps console collect  ## Run emulators, functions and the gateway on http://127.0.0.1:8080 until Ctrl-C
	$(BIN)/python -m emulators.dev

# What the tests need, built two at a time: the installs wait mostly on downloads and unpacking,
# so on a fresh clone they overlap well even on two cores.
test-deps:
	$(MAKE) -j2 deps $(CHECKOV_VENV)/.installed console collect

test: test-deps  ## Lint, then unit, integration and end-to-end tests (emulators started by the tests)
	$(MAKE) lint
	$(BIN)/pytest

unit: $(BIN)/.installed $(CHECKOV_VENV)/.installed
	$(BIN)/pytest tests/unit

lint: $(BIN)/.installed  ## ruff, mypy and the import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

openapi: $(BIN)/.installed  ## Regenerate docs/openapi.json, the load balancer's routes and terraform/requirements.txt
	$(BIN)/streams openapi --output docs/openapi.json
	$(BIN)/streams edge-config --output terraform/modules/edge/routes.json
	$(BIN)/python terraform/build.py

stop: $(BIN)/.installed  ## Kill emulators and functions left by an interrupted run
	$(BIN)/python -m emulators stop

clean: stop
	rm -rf $(VENV) $(BQ_VENV) $(CHECKOV_VENV) .streams .pytest_cache .mypy_cache .ruff_cache
	rm -rf terraform/.build
	rm -rf console/node_modules console/dist collect/node_modules collect/dist

bench: deps  ## Benchmarks; JSON results in bench/results/
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.pipeline --batch-size 10
	$(BIN)/python -m bench.costrun
	$(BIN)/python -m bench.pipeline --sdk
	$(BIN)/python -m bench.contracts
	$(BIN)/python -m bench.transform
	$(BIN)/python -m bench.cache
	$(BIN)/python -m bench.coldstart
	$(BIN)/python -m bench.warehouse
	$(BIN)/python -m bench.cost

# The long reliability run (docs/RELIABILITY.md): the API fuzz (positive, negative and hostile
# cases, and every undeclared method) through every function entry point over in-memory fakes,
# then again over HTTP on a local stack of its own (emulators, functions and gateway on free
# ports), figures in bench/results/; then the property, isolation and security suites with many
# more examples than `make test` runs, then the short stack fuzz test, fault injection and the
# soak, each on a stack of its own: bench/results/faults-latest.json and soak-latest.json.
RELIABILITY_EXAMPLES ?= 60
RELIABILITY_STACK_EXAMPLES ?= 7
SOAK_MINUTES ?= 10
SOAK_RATE ?= 20
reliability: deps  ## Long API fuzz (in process and on a stack), properties, fault injection and soak; figures in bench/results/
	$(BIN)/python -m tests.reliability.fuzz --examples $(RELIABILITY_EXAMPLES) \
		--output bench/results/reliability-latest.json
	$(BIN)/python -m tests.reliability.fuzz --target stack --examples $(RELIABILITY_STACK_EXAMPLES) \
		--output bench/results/reliability-stack-latest.json
	STREAMS_PROPERTY_EXAMPLES=2000 STREAMS_FUZZ_EXAMPLES=10 $(BIN)/pytest tests/reliability -q
	$(BIN)/pytest -m reliability tests/reliability tests/e2e tests/integration -q
	$(BIN)/python -m tests.reliability.soak --minutes $(SOAK_MINUTES) --rate $(SOAK_RATE)
