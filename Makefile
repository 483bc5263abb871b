# The README's two commands: `make demo` and `make test`. Each sets everything up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/gan-*)
TEST_PLUGINS := $(wildcard tests/plugins/gancore-test-*)
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test dev lint type clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# gancore with every first-party plugin, editable, plus the dev tools.
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt $(PLUGINS:%=%/pyproject.toml)
	$(BIN)/python -m pip install --quiet -e ".[dev]" $(PLUGINS:%=-e %)
	touch $@

dev: $(VENV)/.installed

# Train the default example: digits DCGAN, a few minutes on 2 CPU cores, offline.
demo: $(VENV)/.installed
	$(BIN)/gan train examples/digits-dcgan.toml --run-dir runs/digits-dcgan-$$(date +%Y%m%d-%H%M%S)

# The whole test matrix (tox: core, each plugin, all, lint, type).
test: $(VENV)/.installed
	$(BIN)/tox run

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

type: $(VENV)/.installed
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .tox
