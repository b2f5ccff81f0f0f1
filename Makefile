# Two entry points that work on a fresh machine with Python 3.10+ and make:
#   make demo   runs examples/demo.py against its embedded local server
#   make test   runs ruff, mypy --strict and the whole pytest suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench

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
	$(BIN)/python -m pytest

# make bench   runs benchmarks/run.py (a few minutes) and writes benchmarks/results/;
#              make bench BENCH_ARGS=--quick is the smoke pass.
bench: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e . -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)
