"""Prefect, end to end: the example's flow, with its credentials in a saved Block, run under
Prefect's test harness against the emulator served by another process. Runs in its own
environment (``nox -s prefect``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

prefect = pytest.importorskip("prefect")

from prefect import flow  # noqa: E402
from prefect.artifacts import Artifact  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from contentstack_personalize.integrations.prefect import (  # noqa: E402
    PersonalizeCredentials,
    PersonalizeSyncFailed,
    personalize_sync,
)
from contentstack_personalize.sync import SQLiteState  # noqa: E402
from tests.integrations._emulator import (  # noqa: E402
    EXAMPLES,
    USERS_CSV,
    EmulatorProcess,
    emulator_process,
)

sys.path.insert(0, str(EXAMPLES / "integrations"))
from _warehouse import build_warehouse  # noqa: E402
from prefect_flow import users_to_personalize  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def harness() -> Iterator[None]:
    # A temporary Prefect server and database for the whole module (it is slow to start).
    with prefect_test_harness(server_startup_timeout=300):
        yield


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmulatorProcess]:
    with emulator_process() as running:
        PersonalizeCredentials(
            project_uid=running.project_uid,
            authtoken=running.authtoken,
            state=str(tmp_path / "state.db"),
            edge_url=running.info["edge_url"],
            management_url=running.info["management_url"],
        ).save("emulator", overwrite=True)
        yield running


def history(tmp_path: Path, name: str) -> list[Any]:
    store = SQLiteState(tmp_path / "state.db")
    try:
        return store.runs(name)
    finally:
        store.close()


def test_the_flow_adds_then_sends_nothing_and_an_outage_retries_then_fails(
    server: EmulatorProcess,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    warehouse = str(build_warehouse(tmp_path / "warehouse.db"))

    first = users_to_personalize(warehouse, block="emulator")
    assert (first["status"], first["read"], first["added"], first["invalid"]) == (
        "succeeded",
        504,
        499,
        5,
    )
    second = users_to_personalize(warehouse, block="emulator")
    assert (second["unchanged"], second["requests"]) == (499, 0)

    artifact = Artifact.get("personalize-prefect-users")
    assert artifact is not None
    assert "| unchanged | 499 |" in str(artifact.data) and "http" not in str(artifact.data)

    server.stop()
    state = users_to_personalize(
        warehouse, block="emulator", retries=1, retry_delay_seconds=0, return_state=True
    )
    assert state.is_failed()
    with pytest.raises(PersonalizeSyncFailed) as failed:
        state.result()
    assert failed.value.outcome == "retry" and failed.value.retryable
    # Retried once: two failed runs after the two good ones.
    statuses = [r.status for r in history(tmp_path, "prefect/users")]
    assert statuses[2:] == ["succeeded", "succeeded"]
    assert len(statuses) == 4 and set(statuses[:2]) <= {"failed", "aborted"}
    output = capsys.readouterr()
    assert server.authtoken not in caplog.text + output.out + output.err + str(failed.value)


@flow
def misconfigured() -> dict[str, Any]:
    credentials = PersonalizeCredentials.load("emulator")
    return personalize_sync.with_options(retries=2, retry_delay_seconds=0)(
        credentials, str(USERS_CSV), match_on="user_id", mapping={"plan": "plan"}, name="bad"
    )


def test_a_configuration_error_is_not_retried(server: EmulatorProcess, tmp_path: Path) -> None:
    state = misconfigured(return_state=True)
    assert state.is_failed()
    with pytest.raises(PersonalizeSyncFailed, match="not custom attributes") as failed:
        state.result()
    assert failed.value.outcome == "config" and not failed.value.retryable
    assert len(history(tmp_path, "bad")) == 1  # no retry


def test_the_block_keeps_secrets_out_of_its_repr(server: EmulatorProcess) -> None:
    block = PersonalizeCredentials.load("emulator")
    assert server.authtoken not in repr(block) and server.authtoken not in str(block.model_dump())
    assert block.get_client().project_uid == server.project_uid
