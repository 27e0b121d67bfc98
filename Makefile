# Two commands matter (see README): `make sync` runs a real sync against the bundled emulator,
# `make test` runs the whole suite plus ruff and mypy --strict. Both create or reuse .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: venv sync test lint typecheck pytest docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

sync: $(STAMP)
	$(PY) examples/quickstart.py

lint: $(STAMP)
	$(PY) -m ruff check contentstack_personalize tests examples benchmarks
	$(PY) -m ruff format --check contentstack_personalize tests examples benchmarks

typecheck: $(STAMP)
	$(PY) -m mypy --strict contentstack_personalize

pytest: $(STAMP)
	$(PY) -m pytest

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet

test: lint typecheck pytest docs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site
