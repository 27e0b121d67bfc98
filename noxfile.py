"""The integrations' tests, each in its own environment: dlt, Dagster, Prefect and Airflow pin
conflicting versions of the same libraries, so they cannot share the main ``.venv``; the Dask,
Spark and Ray runners are too heavy for it (PySpark alone is about 300 MB).

    make integrations            # all of them (what CI runs after `make test`)
    .venv/bin/python -m nox -s dlt     # one of them

Each session installs the package with its extra (and pytest) into ``.venv/nox/<session>`` with
uv, then runs that tool's tests against the emulator. Environments are reused between runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

HERE = Path(__file__).resolve().parent

nox.options.envdir = ".venv/nox"
nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

TEST_DEPS = ["pytest>=8", "pytest-asyncio>=0.23"]
# No tool may phone home from a test run.
QUIET = {
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "DAGSTER_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "SCARF_ANALYTICS": "false",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def _test(session: nox.Session, extra: str, *deps: str) -> None:
    session.install("-e", f".[{extra}]", *deps, *TEST_DEPS)
    session.run(
        "python",
        "-m",
        "pytest",
        f"tests/integrations/test_{extra}.py",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env=QUIET,
    )


@nox.session
def dlt(session: nox.Session) -> None:
    """The dlt destination, with a SQL database source."""
    _test(session, "dlt", "dlt[sql_database]")


@nox.session
def dagster(session: nox.Session) -> None:
    """The Dagster resource, materialized with ``dagster.materialize``."""
    _test(session, "dagster")


@nox.session
def prefect(session: nox.Session) -> None:
    """The Prefect block and task, under Prefect's test harness."""
    _test(session, "prefect")


@nox.session
def dask(session: nox.Session) -> None:
    """A distributed run over a Dask DataFrame on a ``distributed.LocalCluster`` (two worker
    processes), a worker killed mid-partition included."""
    _test(session, "dask")


@nox.session
def spark(session: nox.Session) -> None:
    """A distributed run over a PySpark DataFrame in local mode (needs a Java 17+ runtime:
    ``.ci/run`` installs one), its Python workers killed mid-partition included."""
    _test(session, "spark")


@nox.session
def ray(session: nox.Session) -> None:
    """A distributed run written through a Ray Data ``Datasink``, Ray in local mode (two CPUs),
    the worker running a write killed mid-partition included."""
    _test(session, "ray")


@nox.session
def airflow(session: nox.Session) -> None:
    """The Airflow provider (hook, connection type, operator), run with ``dag.test()`` in a
    throwaway Airflow home whose DAGs folder is ``tests/integrations/airflow_dags``."""
    session.install("-e", ".[airflow]", "apache-airflow-providers-sqlite", *TEST_DEPS)
    home = Path(session.create_tmp()).resolve() / "airflow-home"
    shutil.rmtree(home, ignore_errors=True)
    env = {
        **QUIET,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(HERE / "tests" / "integrations" / "airflow_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    session.run("airflow", "db", "migrate", env=env, silent=True)
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/integrations/test_airflow.py",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env=env,
    )
