# The two commands of the README: `make up` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup monitoring up test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

monitoring:
	scripts/install-monitoring.sh

up: setup monitoring
	$(BIN)/bankguard up $(ARGS)

test: setup monitoring
	$(BIN)/python -m pytest $(ARGS)

bench: setup
	$(BIN)/python benchmarks/produce.py

clean:
	rm -rf $(VENV) .bankguard .pytest_cache
