"""Dagster: an asset that syncs a warehouse table into Personalize users, with the run's counts
as materialization metadata.

    pip install 'contentstack-personalize[dagster]'
    python examples/integrations/dagster_assets.py        # materializes twice, on the emulator
    dagster dev -f examples/integrations/dagster_assets.py   # the same assets in Dagster's UI

Credentials are ``EnvVar``s: ``CONTENTSTACK_PERSONALIZE_PROJECT_UID``, ``CONTENTSTACK_AUTHTOKEN``
and ``PERSONALIZE_STATE_URL`` (an SQLite path, or a PostgreSQL URL on workers that come and
go). Run directly, the script serves the bundled emulator and sets them to point at it.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from _warehouse import build_warehouse
from dagster import Definitions, EnvVar, MaterializeResult, asset, materialize

from contentstack_personalize import Field
from contentstack_personalize.integrations.dagster import PersonalizeResource
from contentstack_personalize.testing import PersonalizeEmulator

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

MAPPING: dict[str, str | Field] = {
    "plan": "plan",
    "lifetime_value": Field("lifetime_value", type=float),
    "is_vip": Field("is_vip", type=bool),
}


@asset
def warehouse_users() -> list[dict[str, Any]]:
    """The users model, read from the warehouse (a SQLite file here)."""
    with sqlite3.connect(os.environ["WAREHOUSE_PATH"]) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM users")]


@asset
def personalize_users(
    personalize: PersonalizeResource, warehouse_users: list[dict[str, Any]]
) -> MaterializeResult:
    """The users' attributes in Contentstack Personalize, synced incrementally."""
    return personalize.run_sync(
        warehouse_users,
        match_on="user_id",
        mapping=MAPPING,
        name="dagster/users",
        create_missing_attributes=True,
    )


defs = Definitions(
    assets=[warehouse_users, personalize_users],
    resources={
        "personalize": PersonalizeResource(
            project_uid=EnvVar("CONTENTSTACK_PERSONALIZE_PROJECT_UID"),
            authtoken=EnvVar("CONTENTSTACK_AUTHTOKEN"),
            state=EnvVar("PERSONALIZE_STATE_URL"),
            edge_url=os.environ.get("CONTENTSTACK_PERSONALIZE_EDGE_URL"),
            management_url=os.environ.get("CONTENTSTACK_PERSONALIZE_MANAGEMENT_URL"),
        )
    },
)


def main() -> int:
    emulator = PersonalizeEmulator(unknown_attribute="reject")
    with tempfile.TemporaryDirectory() as tmp, emulator.serve() as server:
        os.environ.update(
            {
                "WAREHOUSE_PATH": str(build_warehouse(Path(tmp) / "warehouse.db")),
                "CONTENTSTACK_PERSONALIZE_PROJECT_UID": emulator.project_uid,
                "CONTENTSTACK_AUTHTOKEN": emulator.authtoken,
                "PERSONALIZE_STATE_URL": str(Path(tmp) / "state.db"),
            }
        )
        resource = PersonalizeResource(
            project_uid=EnvVar("CONTENTSTACK_PERSONALIZE_PROJECT_UID"),
            authtoken=EnvVar("CONTENTSTACK_AUTHTOKEN"),
            state=EnvVar("PERSONALIZE_STATE_URL"),
            edge_url=server.edge_url,
            management_url=server.management_url,
        )
        for attempt in ("first", "second"):
            result = materialize(
                [warehouse_users, personalize_users], resources={"personalize": resource}
            )
            meta = result.asset_materializations_for_node("personalize_users")[0].metadata
            counts = {k: meta[k].value for k in ("read", "added", "unchanged", "requests")}
            print(f"{attempt} materialization: {meta['status'].value} {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
