# certfleet: `make run` starts the all-in-one server; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export CERTFLEET_TEST_PG ?= postgresql+psycopg://certfleet:certfleet@127.0.0.1:5432/certfleet_test

.PHONY: run test lint unit services bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/certfleet serve --init

services:
	scripts/test-services.sh

lint: $(VENV)/.test-installed
	$(BIN)/ruff check --no-cache src tests bench docs/hooks
	$(BIN)/ruff format --check --no-cache src tests bench docs/hooks
	$(BIN)/mypy
	$(BIN)/lint-imports

# Two workers (pytest-xdist): the integration tests mostly wait on real servers and clients,
# so a second worker overlaps that waiting; worksteal keeps both busy to the end (plain
# load scheduling left one idle behind the other's queue of long tests).
PYTEST_ARGS ?= -n 2 --dist worksteal

unit: $(VENV)/.test-installed
	$(BIN)/pytest $(PYTEST_ARGS)

test: $(VENV)/.test-installed services lint unit

bench: $(VENV)/.test-installed services
	$(BIN)/python bench/issuance.py

# The documentation site into site/ (CLI and REST references generated from the code).
docs: $(VENV)/.test-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache src/*.egg-info
