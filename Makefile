# Two commands matter (see README): `make sync` runs a real sync against the bundled emulator,
# `make test` runs the whole suite plus ruff and mypy --strict. Both create or reuse .venv.
# Each installs what it needs and no more: `make sync` the package alone (its runtime
# dependencies), `make test` adds the [dev] extra (test tools, pandas/polars/pyarrow, docs,
# ruff, mypy) to the same .venv. A stamp per level redoes an install only when
# pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BASE_STAMP := $(VENV)/.stamp-base
DEV_STAMP := $(VENV)/.stamp-dev

.PHONY: venv sync test lint typecheck pytest docs integrations system-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# The package and its runtime dependencies: all the quickstart needs.
$(BASE_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

# Everything `make test` runs; it includes the package, so the base stamp is fresh too.
$(DEV_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(BASE_STAMP) $@

venv: $(DEV_STAMP)

sync: $(BASE_STAMP)
	$(PY) examples/quickstart.py

lint: $(DEV_STAMP)
	$(PY) -m ruff check contentstack_personalize tests examples benchmarks
	$(PY) -m ruff format --check contentstack_personalize tests examples benchmarks

typecheck: $(DEV_STAMP)
	$(PY) -m mypy --strict contentstack_personalize

# Node.js/npm (and the JS SDK from tests/js's lock file), PostgreSQL 15 and nginx, which the
# suite starts for real; installed from Debian only when missing (scripts/system-deps.sh).
system-deps:
	scripts/system-deps.sh

pytest: $(DEV_STAMP) system-deps
	$(PY) -m pytest

docs: $(DEV_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet

test: lint typecheck pytest docs

# The integrations (dlt, Dagster, Prefect, Airflow), each tested in its own environment under
# .venv/nox/ (noxfile.py): the tools pin conflicting versions of the same libraries.
integrations: $(DEV_STAMP)
	scripts/system-deps.sh --with-java
	$(PY) -m nox

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site
