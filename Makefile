# Quick start: `make demo` (the whole job offline), `make quick` (the test suite without the
# tests marked slow, for while you work) and `make test` (lint and every test, as CI runs).
# `make test-floors` and `make test-newest`: lint and the quick suite at the lowest versions
# pyproject.toml allows (Python 3.10) and at the newest ones (Python 3.13), as CI runs too.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

# uv (from PyPI, into $(VENV)) makes the floors' and the newest venvs.
UV = $(BIN)/uv
export UV_PYTHON_DOWNLOADS = never
PYTHON_FLOOR ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10.*/bin/python3.10) python3.10)
PYTHON_NEWEST ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13.*/bin/python3.13) python3.13)
# Releases after this day are not installed, in either venv (the newest's direct dependencies,
# both venvs' transitive ones): the same versions on every run. Bump it on purpose.
NEWEST_DATE := $(shell cat .ci/newest-date)
FLOORS = .venv-floors
NEWEST = .venv-newest
QUICK = -m "not slow" -n 2

.PHONY: install demo test quick lint bench clean uv test-floors test-newest notebooks

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/intake-vbo demo --workdir demo-out

# Re-execute the tutorials in docs/ against the sample release (on a loopback S3 server) and
# write their outputs into them, scrubbed of ports and temporary paths.
notebooks: install
	$(BIN)/python -m intake_vbo.sample.notebooks docs/*.ipynb

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install lint
	$(BIN)/pytest

quick: install  # two test processes (pytest-xdist): one per core
	$(BIN)/pytest -m "not slow" -n 2

uv: $(UV)

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv
	$(UV) --version

# Every floor as an exact pin (.ci/floors.py): lowest-direct alone may take a higher version of
# a direct dependency when the newest transitive ones ask for it.
$(FLOORS)/.installed: pyproject.toml .ci/floors.py .ci/newest-date | $(UV)
	rm -rf $(FLOORS)
	$(UV) venv --quiet --python $(PYTHON_FLOOR) $(FLOORS)
	$(PYTHON) .ci/floors.py > $(FLOORS)/floors.txt
	$(UV) pip install --quiet --python $(FLOORS)/bin/python --resolution lowest-direct \
		--exclude-newer $(NEWEST_DATE) --constraint $(FLOORS)/floors.txt -e '.[test]'
	touch $@

$(NEWEST)/.installed: pyproject.toml .ci/newest-date | $(UV)
	rm -rf $(NEWEST)
	$(UV) venv --quiet --python $(PYTHON_NEWEST) $(NEWEST)
	$(UV) pip install --quiet --python $(NEWEST)/bin/python --exclude-newer $(NEWEST_DATE) \
		-e '.[test]'
	touch $@

test-floors: ENV = $(FLOORS)
test-newest: ENV = $(NEWEST)
test-floors test-newest: test-%:
	@.ci/timed "$*: venv and install" $(MAKE) --no-print-directory $(ENV)/.installed
	@$(UV) pip list --python $(ENV)/bin/python \
		| grep -iE '^(pandas|pyarrow|duckdb|numpy|h5py|hdmf|pynwb|dask|moto|boto3|ruff) '
	@.ci/timed "$*: lint" sh -c '$(ENV)/bin/ruff check . && $(ENV)/bin/ruff format --check .'
	@.ci/timed "$*: quick suite" $(ENV)/bin/pytest $(QUICK)

bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf demo-out .sample-cache .pytest_cache $(FLOORS) $(NEWEST)
