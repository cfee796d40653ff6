# The two commands of the README: `make up` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pytest's status 5 says a tier selected no test (ARGS narrowed it away): not a failure.
PYTEST_TIER = $(BIN)/python -m pytest $(ARGS) -m

.PHONY: setup system up lint test test-fast test-broker bench clean

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

# The gate before any test: ruff, then mypy on the installed package names (both report).
lint: setup
	status=0; $(BIN)/ruff check . || status=1; $(BIN)/python scripts/typecheck.py || status=1; exit $$status

# Everything, in order: the gate, the in-process tier, then the tier that starts a broker,
# workers, Prometheus or other processes. Stops at the first that fails.
test: setup system
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory test-fast
	$(MAKE) --no-print-directory test-broker

# In-process tests share no state but the CPU: one pytest process per core, and the tests of
# one scenario in one process (tests/conftest.py), so its traffic is generated once.
test-fast: setup
	$(PYTEST_TIER) "not broker" -n auto --dist loadgroup || test $$? -eq 5

# Broker tests mostly wait on processes and offsets: two at a time, each pytest process with
# its own embedded broker (886 s one at a time, 473 s two at a time, on 2 cores).
test-broker: setup system
	$(PYTEST_TIER) broker -n 2 --dist loadgroup || test $$? -eq 5

bench: setup
	$(BIN)/python benchmarks/produce.py

clean:
	rm -rf $(VENV) .bankguard .pytest_cache .mypy_cache .ruff_cache build/typecheck
