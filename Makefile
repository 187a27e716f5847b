# Two entry points for a new user: `make demo` runs the main job, `make test` the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install system-deps demo lint test bench clean

$(BIN)/deploysim: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(BIN)/deploysim

install: $(BIN)/deploysim

# Debian packages the tests use for real: a Prometheus server (the executor's metric source) and
# Chromium (renders the HTML report). Needs root or sudo.
system-deps:
	@if command -v prometheus >/dev/null && command -v chromium >/dev/null; then echo "prometheus and chromium present"; \
	else SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus chromium; fi

demo: install
	$(BIN)/deploysim run scenarios/aws-typical.yaml --seed 1 --months 3

# Style and types: ruff and mypy, configured in pyproject.toml. `make test` runs them first.
lint: install
	$(BIN)/ruff check deploysim tests benchmarks scripts notebooks
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

# `make bench` prints every speed figure (about an hour on 2 cores); `make bench QUICK=1` a short run.
bench: install
	$(BIN)/python benchmarks/bench_all.py $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
