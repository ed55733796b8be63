# One entry point for people and CI. `make install` is idempotent: it (re)installs only when
# pyproject.toml or constraints.txt changed since the last install.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test check bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: install
	$(VENV)/bin/model-trainer demo

test: install
	rm -f .coverage .coverage.*
	$(PY) -m pytest --cov --cov-report=term-missing

check: install
	$(PY) -m mypy
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .coverage
