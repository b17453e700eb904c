# Quick start: `make demo` (the whole job offline), `make quick` (the test suite without the
# tests marked slow, for while you work) and `make test` (lint and every test, as CI runs).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: install demo test quick lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/intake-vbo demo --workdir demo-out

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install lint
	$(BIN)/pytest

quick: install  # two test processes (pytest-xdist): one per core
	$(BIN)/pytest -m "not slow" -n 2

bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf demo-out .sample-cache .pytest_cache
