"""Apache Airflow: a DAG that syncs a warehouse query into Personalize users.

    pip install 'contentstack-personalize[airflow]' apache-airflow-providers-sqlite
    python examples/integrations/airflow/users_dag.py      # dag.test() twice, on the emulator

In a deployment, put this file in the DAGs folder and create two connections: ``warehouse``
(any database connection whose hook gives a DB-API connection) and ``personalize_default``, of
the **Contentstack Personalize** type (Project UID, Authtoken, region, state). Run as a script,
it serves the bundled emulator, describes both connections as ``AIRFLOW_CONN_*`` variables, and
runs the DAG twice with ``dag.test()`` (in a throwaway Airflow home whose DAGs folder is this
one): the second run sends nothing.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

if __name__ == "__main__":  # a throwaway Airflow home, with this folder as its DAGs folder
    if "AIRFLOW_HOME" not in os.environ:
        os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="airflow-home-")
        atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], True)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parent)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from contentstack_personalize import Field
from contentstack_personalize.integrations.airflow import PersonalizeSyncOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

with DAG(
    dag_id="users_to_personalize",
    schedule="@hourly",
    start_date=dt.datetime(2025, 1, 1),
    catchup=False,
    tags=["personalize"],
) as dag:
    PersonalizeSyncOperator(
        task_id="sync_users",
        sql="SELECT * FROM users",
        sql_conn_id="warehouse",
        match_on="user_id",
        mapping={
            "plan": "plan",
            "lifetime_value": Field("lifetime_value", type=float),
            "is_vip": Field("is_vip", type=bool),
        },
        sync_name="airflow/users",
        sync_options={"create_missing_attributes": True},
        retries=2,
        retry_delay=dt.timedelta(minutes=5),
    )


def main() -> int:
    from airflow.utils.db import initdb

    from contentstack_personalize.testing import PersonalizeEmulator

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from _warehouse import build_warehouse

    initdb()  # the metadata database of the throwaway home

    emulator = PersonalizeEmulator(unknown_attribute="reject")
    with tempfile.TemporaryDirectory() as tmp, emulator.serve() as server:
        warehouse = build_warehouse(Path(tmp) / "warehouse.db")
        os.environ["AIRFLOW_CONN_WAREHOUSE"] = json.dumps(
            {"conn_type": "sqlite", "host": str(warehouse)}
        )
        os.environ["AIRFLOW_CONN_PERSONALIZE_DEFAULT"] = json.dumps(
            {
                "conn_type": "contentstack_personalize",
                "login": emulator.project_uid,
                "password": emulator.authtoken,
                "extra": {
                    "state": str(Path(tmp) / "state.db"),
                    "edge_url": server.edge_url,
                    "management_url": server.management_url,
                },
            }
        )
        for attempt in ("first", "second"):
            run = dag.test()
            (ti,) = run.get_task_instances()
            print(f"{attempt} DAG run: {run.state}, sync_users {ti.state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
