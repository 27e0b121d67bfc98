"""Prefect: a flow that syncs a warehouse query into Personalize users, with its credentials in
a Block and the run as an artifact.

    pip install 'contentstack-personalize[prefect]'
    python examples/integrations/prefect_flow.py      # twice, on the bundled emulator

In production, save the credentials once (the UI masks the secrets) and load them by name::

    PersonalizeCredentials(project_uid="...", authtoken="...", region="eu",
                           state="postgresql://...").save("production")

Run as a script, it serves the emulator, saves a block pointing at it in a temporary Prefect
database, and runs the flow twice: the second run sends nothing.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from _warehouse import build_warehouse

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import flow
from prefect.testing.utilities import prefect_test_harness

from contentstack_personalize import Field
from contentstack_personalize.integrations.prefect import (
    PersonalizeCredentials,
    personalize_sync,
)
from contentstack_personalize.sync import from_sql
from contentstack_personalize.testing import PersonalizeEmulator

MAPPING: dict[str, str | Field] = {
    "plan": "plan",
    "lifetime_value": Field("lifetime_value", type=float),
    "is_vip": Field("is_vip", type=bool),
}


@flow(name="users-to-personalize")
def users_to_personalize(
    warehouse: str, block: str = "production", retries: int = 2, retry_delay_seconds: float = 60
) -> dict[str, Any]:
    """Read the users model from the warehouse and sync it; only outages are retried."""
    credentials = PersonalizeCredentials.load(block)
    sync_task = personalize_sync.with_options(
        retries=retries, retry_delay_seconds=retry_delay_seconds
    )
    with sqlite3.connect(warehouse) as connection:
        return sync_task(
            credentials,
            from_sql(connection, "SELECT * FROM users"),
            match_on="user_id",
            mapping=MAPPING,
            name="prefect/users",
            create_missing_attributes=True,
        )


def main() -> int:
    emulator = PersonalizeEmulator(unknown_attribute="reject")
    with (
        tempfile.TemporaryDirectory() as tmp,
        emulator.serve() as server,
        prefect_test_harness(server_startup_timeout=180),
    ):
        warehouse = build_warehouse(Path(tmp) / "warehouse.db")
        PersonalizeCredentials(
            project_uid=emulator.project_uid,
            authtoken=emulator.authtoken,
            state=str(Path(tmp) / "state.db"),
            edge_url=server.edge_url,
            management_url=server.management_url,
        ).save("emulator")
        for attempt in ("first", "second"):
            counts = users_to_personalize(str(warehouse), block="emulator")
            print(
                f"{attempt} run: {counts['status']} added {counts['added']}, "
                f"unchanged {counts['unchanged']}, requests {counts['requests']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
