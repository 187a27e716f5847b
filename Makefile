# Two entry points for a new user: `make demo` runs the main job, `make test` the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test bench clean

$(BIN)/deploysim: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(BIN)/deploysim

install: $(BIN)/deploysim

demo: install
	$(BIN)/deploysim run scenarios/aws-typical.yaml --seed 1 --months 3

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/bench_simulate.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
