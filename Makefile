# Two commands do everything on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tests and CI pin XLA to the host CPU so the suite is the same on every machine.
JOBS ?= 2

.PHONY: run test test-all bench setup clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/deepglass run runs/configs/compare_small.toml --out results/compare_small --force

test: $(STAMP)
	$(VENV)/bin/ruff check .
	JAX_PLATFORMS=cpu $(PY) -m pytest -n $(JOBS) --dist loadfile -q

test-all: $(STAMP)
	JAX_PLATFORMS=cpu $(PY) -m pytest -n $(JOBS) --dist loadfile -q -m ''

bench: $(STAMP)
	$(VENV)/bin/deepglass bench

clean:
	rm -rf $(VENV) results .pytest_cache
