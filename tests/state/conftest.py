"""A throwaway PostgreSQL server for the whole session (see ``_pgserver``), and a fresh schema
per test so tests never see each other's state.

Tests that need PostgreSQL fail when it is not installed; set
``CONTENTSTACK_PERSONALIZE_SKIP_POSTGRES=1`` to skip them knowingly (CI never sets it, and
``.ci/run`` installs PostgreSQL when it is missing).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.state._pgserver import SKIP_ENV, PostgresServer, postgres_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: PostgreSQL tests skipped on request")
    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_schema() -> str:
    """A schema name no other test uses."""
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pg_url(postgres: PostgresServer, pg_schema: str) -> str:
    """A ``state=`` URL for this test's own schema."""
    return f"{postgres.url}?schema={pg_schema}"
