# Li2 Lab: the two commands of the README are `make demo` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PIP     := $(BIN)/pip install -c requirements/constraints.txt
STAMP   := $(VENV)/.installed

.PHONY: install demo test test-fast bench lint format mutate clean

$(STAMP): pyproject.toml client/pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(PIP) -q -e '.[worker,dev]' -e './client[all]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python bench/bench_trainer.py --write BENCHMARKS.md

# Mutation testing of the science core (model, optim, trainer, timeline, scaling): docs/testing.md.
mutate: $(STAMP)
	bash scripts/mutate.sh

# Lint: import-linter layer contracts, ruff (lint + format), mypy, hadolint. `.ci/run` runs it first.
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

# Apply ruff's fixes and formatting in place.
format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var demo-out .pytest_cache
