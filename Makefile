# ANT developer tasks. `make test` works on a bare machine: it builds .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 6060

UI_STAMP := frontend/node_modules/.installed
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: all run test lint unit bench soak clean venv format ui types ui-test chromium promtool tsp ray-jobs profiler

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP) ui
	$(BIN)/ant serve --fake-gpus 4 --host 127.0.0.1 --port $(PORT)

$(UI_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $(UI_STAMP)

# The web UI, built into the package (src/ant_scheduler/web, git-ignored) and served at /.
ui: $(UI_STAMP)
	cd frontend && npm run build

# The package: a wheel (and sdist) in dist/ with the web UI inside (setup.py refuses one without).
.PHONY: dist
dist: $(STAMP) ui
	$(BIN)/python -m build --outdir dist

# TypeScript types from the API's OpenAPI schema (a test fails when they are stale): Python
# writes the schema, openapi-typescript (its options: `npm run types` in frontend/package.json)
# turns it into types.ts.
types: $(STAMP) $(UI_STAMP)
	mkdir -p build
	$(BIN)/python -m ant_scheduler.api.openapi > build/openapi.json
	cd frontend && npm run --silent types -- ../build/openapi.json -o src/api/types.ts

ui-test: $(UI_STAMP)
	cd frontend && npx vitest run

# Browser tests drive Debian's Chromium through Playwright (`playwright install` is not needed).
chromium:
	@test -x /usr/bin/chromium || ($(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq --no-install-recommends chromium)

# promtool checks /metrics, the Grafana dashboard's queries and the example scrape config
# (tests/api/test_metrics_promtool.py). It comes from Debian's `prometheus` package, unpacked
# into the venv rather than installed, so that no Prometheus server is set up and started.
promtool: $(STAMP)
	@command -v promtool >/dev/null || test -x $(BIN)/promtool || ( \
		mkdir -p build/promtool && cd build/promtool && rm -f prometheus_*.deb && \
		(apt-get download -qq prometheus 2>/dev/null || \
			($(SUDO) apt-get update -qq && apt-get download -qq prometheus)) && \
		dpkg-deb --fsys-tarfile prometheus_*.deb | tar -xO ./usr/bin/promtool > promtool && \
		install -m 755 promtool ../../$(BIN)/promtool && rm -f prometheus_*.deb promtool)

# The README's screenshots (docs/screenshots/*.png): a busy `ant serve --fake-gpus` in Chromium,
# pictured by tests/e2e/test_ui_screenshots.py. Run it after a change to the pages it shows.
.PHONY: screenshots
screenshots: $(STAMP) ui chromium
	ANT_WRITE_DOC_SCREENSHOTS=1 $(BIN)/pytest -q tests/e2e/test_ui_screenshots.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks run.py
	$(BIN)/ruff format --check src tests benchmarks run.py
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks run.py
	$(BIN)/ruff check --fix src tests benchmarks run.py

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

test: lint ui ui-test chromium promtool
	$(BIN)/pytest -q -n 2 --dist loadgroup

# task-spooler is the peer the benchmarks measure ANT against, in the same run.
tsp:
	@command -v tsp >/dev/null || ($(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq --no-install-recommends task-spooler)

# Ray Jobs, the peer of ANT on Ray, needs Ray's dashboard: ray[default], for the benchmarks only.
ray-jobs: $(STAMP)
	$(BIN)/python -m pip install --quiet 'ray[default]'

# py-spy samples ANT's event loop for benchmarks/versus_tsp.py's breakdown (benchmarks only).
profiler: $(STAMP)
	$(BIN)/python -m pip install --quiet py-spy

bench: $(STAMP) tsp ray-jobs profiler
	$(BIN)/python benchmarks/versus_tsp.py
	$(BIN)/python benchmarks/dispatch.py
	$(BIN)/python benchmarks/suite.py
	$(BIN)/python benchmarks/big_queues.py
	$(BIN)/python benchmarks/policy_queue.py
	$(BIN)/python benchmarks/cli_latency.py
	$(BIN)/python benchmarks/ray_executor.py
	$(BIN)/python benchmarks/event_bytes.py

# The long reliability runs: 200 random kills, 10x the fuzzing examples.
soak: $(STAMP) ui chromium
	ANT_CRASH_ROUNDS=200 ANT_FUZZ_EXAMPLES=1500 $(BIN)/pytest -q tests/reliability --timeout 3600

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
