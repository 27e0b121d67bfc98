"""Apache Airflow, end to end: the provider's connection type and hook, and DAGs with the
operator run by Airflow's own ``dag.test()``, against the emulator served by another process.

Runs in its own environment (``nox -s airflow``), which migrates a throwaway metadata database
in ``AIRFLOW_HOME`` and makes ``airflow_dags/`` the DAGs folder before the tests start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DAGS = Path(__file__).resolve().parent / "airflow_dags"
if os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") != str(DAGS):
    pytest.skip("run with `nox -s airflow` (it prepares Airflow's home)", allow_module_level=True)
airflow = pytest.importorskip("airflow")

from airflow.models.xcom import XComModel  # noqa: E402
from airflow.utils.session import create_session  # noqa: E402

from tests.integrations._emulator import (  # noqa: E402
    EXAMPLES,
    EmulatorProcess,
    clean_env,
    emulator_process,
)

sys.path.insert(0, str(DAGS))
sys.path.insert(0, str(EXAMPLES / "integrations"))
import personalize_test_dags as dags  # noqa: E402
from _warehouse import build_warehouse  # noqa: E402

from contentstack_personalize.integrations.airflow import PersonalizeHook  # noqa: E402


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[EmulatorProcess]:
    with emulator_process() as running:
        warehouse = build_warehouse(tmp_path / "warehouse.db")
        monkeypatch.setenv(
            "AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(warehouse)})
        )
        monkeypatch.setenv(
            "AIRFLOW_CONN_PERSONALIZE_DEFAULT",
            json.dumps(
                {
                    "conn_type": "contentstack_personalize",
                    "login": running.project_uid,
                    "password": running.authtoken,
                    "extra": {
                        "state": str(tmp_path / "state.db"),
                        "edge_url": running.info["edge_url"],
                        "management_url": running.info["management_url"],
                    },
                }
            ),
        )
        yield running


def run_dag(dag: Any) -> tuple[str, dict[str, tuple[str, int]], dict[str, Any]]:
    """``dag.test()``: the run's state, each task's (state, try number), each task's XCom."""
    run = dag.test()
    tasks = {ti.task_id: (str(ti.state), ti.try_number) for ti in run.get_task_instances()}
    xcom: dict[str, Any] = {}
    with create_session() as session:
        for task_id in tasks:
            row = session.scalars(
                XComModel.get_many(run_id=run.run_id, dag_ids=dag.dag_id, task_ids=task_id)
            ).first()
            xcom[task_id] = None if row is None else row.value
    return str(run.state), tasks, xcom


def test_the_provider_registers_its_connection_type() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "contentstack-personalize" in manager.providers
    fields = manager.providers["contentstack-personalize"].data["connection-types"][0]
    assert fields["connection-type"] == PersonalizeHook.conn_type
    assert fields["ui-field-behaviour"]["relabeling"]["password"] == "Authtoken"


def test_a_sql_sync_adds_then_sends_nothing_and_an_outage_fails_after_retries(
    server: EmulatorProcess, capfd: pytest.CaptureFixture[str]
) -> None:
    state, tasks, xcom = run_dag(dags.sql_dag)
    assert (state, tasks["sync_users"]) == ("success", ("success", 1))
    first = xcom["sync_users"]
    assert (first["status"], first["added"], first["read"]) == ("succeeded", 499, 503)

    state, tasks, xcom = run_dag(dags.sql_dag)
    assert (xcom["sync_users"]["unchanged"], xcom["sync_users"]["requests"]) == (499, 0)

    server.stop()
    state, tasks, xcom = run_dag(dags.sql_dag)
    assert state == "failed"
    assert tasks["sync_users"] == ("failed", 2)  # an outage is retried (retries=1)
    output = capfd.readouterr()
    logs = output.out + output.err
    assert "connection failed" in logs
    assert server.authtoken not in logs + json.dumps(xcom)


def test_a_callable_source_and_a_configuration_error_that_is_not_retried(
    server: EmulatorProcess, capfd: pytest.CaptureFixture[str]
) -> None:
    state, tasks, xcom = run_dag(dags.callable_dag)
    assert state == "success" and xcom["sync_plans"]["added"] == 10

    state, tasks, _ = run_dag(dags.bad_dag)
    assert state == "failed"
    assert tasks["sync_users"] == ("failed", 1)  # retries=3, yet not retried
    output = capfd.readouterr()
    assert "tier" in output.out + output.err
    assert server.authtoken not in output.out + output.err


def test_an_aborted_run_fails_the_task(
    server: EmulatorProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # An unknown project and no authtoken: the Edge API refuses every user, the run stops early.
    monkeypatch.setenv(
        "AIRFLOW_CONN_PERSONALIZE_DEFAULT",
        json.dumps(
            {
                "conn_type": "contentstack_personalize",
                "login": "0123456789abcdef01234567",
                "extra": {"state": str(tmp_path / "s.db"), "edge_url": server.info["edge_url"]},
            }
        ),
    )
    state, tasks, xcom = run_dag(dags.callable_dag)
    assert state == "failed" and tasks["sync_plans"][0] == "failed"
    assert xcom["sync_plans"] is None


def test_the_hook_tests_its_connection(server: EmulatorProcess) -> None:
    ok, message = PersonalizeHook().test_connection()
    assert ok and server.project_uid in message
    assert server.authtoken not in message


def test_the_example_dag_runs_as_a_script(tmp_path: Path) -> None:
    env = {k: v for k, v in clean_env().items() if not k.startswith("AIRFLOW")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "integrations" / "airflow" / "users_dag.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "first DAG run: success, sync_users success" in done.stdout
    assert "second DAG run: success, sync_users success" in done.stdout
