# The two commands of the README: `make up` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup system up test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

system:
	scripts/install-system-packages.sh

up: setup system
	$(BIN)/bankguard up $(ARGS)

test: setup system
	$(BIN)/python -m pytest $(ARGS)

bench: setup
	$(BIN)/python benchmarks/produce.py

clean:
	rm -rf $(VENV) .bankguard .pytest_cache
