# ANT developer tasks. `make test` works on a bare machine: it builds .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 6060

.PHONY: all run test lint unit bench clean venv format

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/ant serve --fake-gpus 4 --host 127.0.0.1 --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks run.py
	$(BIN)/ruff format --check src tests benchmarks run.py
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks run.py
	$(BIN)/ruff check --fix src tests benchmarks run.py

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

test: lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/dispatch.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
