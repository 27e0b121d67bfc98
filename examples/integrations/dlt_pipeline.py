"""dlt: load a SQL database table into Personalize users with the Personalize destination.

    pip install 'contentstack-personalize[dlt]'
    python examples/integrations/dlt_pipeline.py [--real]

Without ``--real`` it serves the bundled emulator on loopback and points dlt's configuration at
it. With ``--real`` the credentials come from dlt's configuration as in production:
``.dlt/secrets.toml`` ``[destination.personalize]`` ``project_uid``, ``authtoken``, ``region``
and ``state`` (or the ``DESTINATION__PERSONALIZE__*`` variables). The pipeline runs twice; the
second run reads every row again and sends nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dlt
from _warehouse import build_warehouse
from dlt.sources.sql_database import sql_table

from contentstack_personalize import Field
from contentstack_personalize.integrations.dlt import personalize_destination
from contentstack_personalize.sync import SQLiteState
from contentstack_personalize.testing import PersonalizeEmulator

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

destination = personalize_destination(
    table="users",
    match_on="user_id",
    mapping={
        "plan": "plan",
        "lifetime_value": Field("lifetime_value", type=float),
        "is_vip": Field("is_vip", type=bool),
    },
    create_missing_attributes=True,
)


@contextlib.contextmanager
def emulated_personalize(state: Path) -> Iterator[None]:
    """Serve the emulator and give dlt its address the way dlt reads configuration."""
    emulator = PersonalizeEmulator(unknown_attribute="reject")
    with emulator.serve() as server:
        values = {
            "PROJECT_UID": emulator.project_uid,
            "AUTHTOKEN": emulator.authtoken,
            "EDGE_URL": server.edge_url,
            "MANAGEMENT_URL": server.management_url,
            "STATE": str(state),
        }
        for key, value in values.items():
            os.environ[f"DESTINATION__PERSONALIZE__{key}"] = value
        yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="use dlt's configured credentials")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = build_warehouse(Path(tmp) / "warehouse.db")
        state = Path(tmp) / "personalize_state.db"
        pipeline = dlt.pipeline(
            "users_to_personalize", destination=destination, pipelines_dir=f"{tmp}/pipelines"
        )
        with contextlib.ExitStack() as stack:
            if not args.real:
                stack.enter_context(emulated_personalize(state))
            for attempt in ("first", "second"):
                info = pipeline.run(sql_table(credentials=f"sqlite:///{warehouse}", table="users"))
                print(f"{attempt} load: {info.loads_ids}")
        if not args.real:
            store = SQLiteState(state)
            for run in reversed(store.runs("dlt/users")):
                print(f"run {run.run_id}: {run.status} {run.counts}")
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
