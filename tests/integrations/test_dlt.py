"""dlt, end to end: a real dlt pipeline from a SQL database into the Personalize destination,
against the emulator served by another process. Runs in its own environment (``nox -s dlt``)."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

dlt = pytest.importorskip("dlt")
pytest.importorskip("sqlalchemy")

from dlt.common.destination.exceptions import (  # noqa: E402
    DestinationTerminalException,
    DestinationTransientException,
)
from dlt.pipeline.exceptions import PipelineStepFailed  # noqa: E402
from dlt.sources.sql_database import sql_table  # noqa: E402

from contentstack_personalize import Field  # noqa: E402
from contentstack_personalize.integrations.dlt import personalize_destination  # noqa: E402
from contentstack_personalize.sync import SQLiteState  # noqa: E402
from tests.integrations._emulator import (  # noqa: E402
    EXAMPLES,
    EmulatorProcess,
    clean_env,
    emulator_process,
)

sys.path.insert(0, str(EXAMPLES / "integrations"))
from _warehouse import build_warehouse  # noqa: E402

MAPPING = {
    "plan": "plan",
    "lifetime_value": Field("lifetime_value", type=float),
    "is_vip": Field("is_vip", type=bool),
}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[EmulatorProcess]:
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", "1")
    with emulator_process() as running:
        for key, value in {
            "PROJECT_UID": running.project_uid,
            "AUTHTOKEN": running.authtoken,
            "EDGE_URL": running.info["edge_url"],
            "MANAGEMENT_URL": running.info["management_url"],
            "STATE": str(tmp_path / "state.db"),
        }.items():
            monkeypatch.setenv(f"DESTINATION__PERSONALIZE__{key}", value)
        yield running


def pipeline(tmp_path: Path, **options: object) -> object:
    destination = personalize_destination(
        table="users",
        match_on="user_id",
        mapping=MAPPING,
        create_missing_attributes=True,
        **options,
    )
    return dlt.pipeline(
        "users_to_personalize", destination=destination, pipelines_dir=str(tmp_path / "p")
    )


def runs(tmp_path: Path) -> list[dict[str, object]]:
    store = SQLiteState(tmp_path / "state.db")
    try:
        return [{"status": r.status, **r.counts} for r in store.runs("dlt/users")]
    finally:
        store.close()


def test_first_load_adds_rerun_sends_nothing_outage_is_retryable(
    server: EmulatorProcess,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    db = build_warehouse(tmp_path / "warehouse.db")
    p = pipeline(tmp_path)
    source = lambda: sql_table(credentials=f"sqlite:///{db}", table="users")  # noqa: E731

    info = p.run(source())
    assert not info.has_failed_jobs
    first = runs(tmp_path)[0]
    assert (first["status"], first["read"], first["added"], first["invalid"]) == (
        "succeeded",
        504,
        499,
        5,
    )

    p.run(source())
    second = runs(tmp_path)[0]
    assert (second["unchanged"], second["requests"]) == (499, 0)

    server.stop()
    with pytest.raises(PipelineStepFailed) as failed:
        p.run(source())
    chain = []
    exc: BaseException | None = failed.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert any(isinstance(e, DestinationTransientException) for e in chain), chain
    assert not any(isinstance(e, DestinationTerminalException) for e in chain)
    output = capsys.readouterr()
    everything = caplog.text + output.out + output.err + "".join(map(str, chain))
    assert server.authtoken not in everything


def test_a_configuration_error_is_terminal(server: EmulatorProcess, tmp_path: Path) -> None:
    db = build_warehouse(tmp_path / "warehouse.db")
    destination = personalize_destination(
        table="users", match_on="customer_id", mapping=MAPPING, create_missing_attributes=True
    )
    p = dlt.pipeline("bad_match", destination=destination, pipelines_dir=str(tmp_path / "p"))
    with pytest.raises(PipelineStepFailed) as failed:
        p.run(sql_table(credentials=f"sqlite:///{db}", table="users"))
    text = str(failed.value)
    assert "customer_id" in text
    chain = []
    exc: BaseException | None = failed.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert any(isinstance(e, DestinationTerminalException) for e in chain), chain


def test_another_table_is_refused(server: EmulatorProcess, tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    with pytest.raises(PipelineStepFailed, match="syncs the table 'users', not 'orders'"):
        p.run([{"user_id": "u1", "plan": "gold"}], table_name="orders")


def test_the_example_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "integrations" / "dlt_pipeline.py")],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "'added': 499" in done.stdout and "'unchanged': 499" in done.stdout
    assert "'requests': 0" in done.stdout
