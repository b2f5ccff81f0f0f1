# Two entry points that work on a fresh machine with Python 3.10+ and make:
#   make demo   runs examples/demo.py against its embedded local server
#   make test   runs ruff, mypy --strict and the whole pytest suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench mutation unasync

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

demo: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python examples/demo.py

test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python tools/unasync.py --check
	$(BIN)/python -m pytest

# make unasync   regenerates the sync driver and Redis store from their async sources
#                (tools/unasync.py); make test fails while they are stale.
unasync: $(BIN)/python
	$(BIN)/python tools/unasync.py

# make bench   runs benchmarks/run.py (a few minutes) and writes benchmarks/results/;
#              make bench BENCH_ARGS=--quick is the smoke pass.
bench: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e . -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

# make mutation   mutates the pure modules one change at a time and runs each one's unit tests
#                 (tools/mutation.py; not part of CI). make mutation MODULES=_headers,_retry
#                 picks modules; MUTATION_ARGS=--jobs=2 runs two test runs at once.
mutation: $(BIN)/python
	$(BIN)/python -c 'import pytest, hypothesis, trio' 2>/dev/null \
		|| $(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python tools/mutation.py $(if $(MODULES),--modules $(MODULES)) $(MUTATION_ARGS)
