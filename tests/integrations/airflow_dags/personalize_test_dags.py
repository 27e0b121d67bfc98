"""DAGs for tests/integrations/test_airflow.py (this folder is the tests' DAGs folder)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from contentstack_personalize import Field
from contentstack_personalize.integrations.airflow import PersonalizeSyncOperator

MAPPING = {"plan": "plan", "lifetime_value": Field("lifetime_value", type=float)}

with DAG(dag_id="personalize_sql", schedule=None, start_date=dt.datetime(2025, 1, 1)) as sql_dag:
    PersonalizeSyncOperator(
        task_id="sync_users",
        sql="SELECT * FROM users WHERE user_id >= {{ params.since }}",
        sql_conn_id="warehouse",
        match_on="user_id",
        mapping=MAPPING,
        sync_name="airflow/users",
        sync_options={"create_missing_attributes": True},
        params={"since": "''"},
        retries=1,
        retry_delay=dt.timedelta(seconds=0),
    )


def plans() -> list[dict[str, str]]:
    return [{"user_id": f"c{i}", "plan": "gold"} for i in range(10)]


with DAG(
    dag_id="personalize_callable", schedule=None, start_date=dt.datetime(2025, 1, 1)
) as callable_dag:
    PersonalizeSyncOperator(
        task_id="sync_plans",
        rows_callable=plans,
        match_on="user_id",
        mapping={"plan": "plan"},
        sync_name="airflow/plans",
        sync_options={"create_missing_attributes": True},
    )

with DAG(
    dag_id="personalize_misconfigured", schedule=None, start_date=dt.datetime(2025, 1, 1)
) as bad_dag:
    PersonalizeSyncOperator(
        task_id="sync_users",
        rows_callable=plans,
        match_on="user_id",
        mapping={"tier": "tier"},  # no such column: a configuration error
        sync_name="airflow/bad",
        retries=3,
        retry_delay=dt.timedelta(seconds=0),
    )
