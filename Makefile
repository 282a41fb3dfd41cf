# Two commands matter: `make run` (the main job) and `make test` (the test suite). Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt -e '.[test]'
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/analog-sweep run sweeps/quickstart.yaml

test: $(STAMP)
	$(BIN)/python -m pytest

# Skips the checks marked slow; CI runs everything through `make test`.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	$(BIN)/python bench/trial_overhead.py

clean:
	rm -rf $(VENV) sweep-store .pytest_cache
