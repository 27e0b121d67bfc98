"""Dagster, end to end: assets materialized with ``dagster.materialize`` and the resource
configured through ``EnvVar``, against the emulator served by another process. Runs in its own
environment (``nox -s dagster``)."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

dagster = pytest.importorskip("dagster")

from dagster import EnvVar, MaterializeResult, asset, materialize  # noqa: E402

from contentstack_personalize import Field  # noqa: E402
from contentstack_personalize.integrations.dagster import PersonalizeResource  # noqa: E402
from tests.integrations._emulator import (  # noqa: E402
    EXAMPLES,
    USERS_CSV,
    EmulatorProcess,
    clean_env,
    emulator_process,
)

MAPPING: dict[str, str | Field] = {
    "plan": "plan",
    "lifetime_value": Field("lifetime_value", type=float),
}


@asset
def personalize_users(personalize: PersonalizeResource) -> MaterializeResult:
    return personalize.run_sync(
        str(USERS_CSV), match_on="user_id", mapping=MAPPING, create_missing_attributes=True
    )


@asset
def misconfigured(personalize: PersonalizeResource) -> MaterializeResult:
    return personalize.run_sync(str(USERS_CSV), match_on="customer_id", mapping=MAPPING)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[EmulatorProcess]:
    monkeypatch.setenv("DAGSTER_DISABLE_TELEMETRY", "1")
    with emulator_process() as running:
        monkeypatch.setenv("TEST_PROJECT_UID", running.project_uid)
        monkeypatch.setenv("TEST_AUTHTOKEN", running.authtoken)
        monkeypatch.setenv("TEST_STATE", str(tmp_path / "state.db"))
        yield running


def resource(server: EmulatorProcess) -> PersonalizeResource:
    return PersonalizeResource(
        project_uid=EnvVar("TEST_PROJECT_UID"),
        authtoken=EnvVar("TEST_AUTHTOKEN"),
        state=EnvVar("TEST_STATE"),
        edge_url=server.info["edge_url"],
        management_url=server.info["management_url"],
    )


def metadata(result: Any, node: str = "personalize_users") -> dict[str, Any]:
    meta = result.asset_materializations_for_node(node)[0].metadata
    return {key: value.value for key, value in meta.items()}


def failure_of(result: Any) -> Any:
    (event,) = result.get_step_failure_events()
    return event.step_failure_data.user_failure_data


def test_materialize_adds_then_sends_nothing_and_an_outage_fails(
    server: EmulatorProcess, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    resources = {"personalize": resource(server)}

    first = materialize([personalize_users], resources=resources)
    meta = metadata(first)
    assert first.success
    assert (meta["status"], meta["read"], meta["added"], meta["invalid"]) == (
        "succeeded",
        504,
        499,
        5,
    )
    assert "| added | 499 |" in meta["summary"] and "http" not in meta["summary"]

    second = metadata(materialize([personalize_users], resources=resources))
    assert (second["unchanged"], second["requests"]) == (499, 0)

    server.stop()
    down = materialize([personalize_users], resources=resources, raise_on_error=False)
    assert not down.success
    failure = failure_of(down)
    assert failure.metadata["outcome"].value == "retry"
    assert "connection failed" in failure.description
    events = "\n".join(str(e) for e in down.all_events)
    output = capsys.readouterr()
    assert server.authtoken not in events + caplog.text + output.out + output.err


def test_a_configuration_error_fails_without_retries(server: EmulatorProcess) -> None:
    result = materialize(
        [misconfigured], resources={"personalize": resource(server)}, raise_on_error=False
    )
    assert not result.success
    failure = failure_of(result)
    assert failure.metadata["outcome"].value == "config"
    assert "not custom attributes" in failure.description


def test_the_example_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "integrations" / "dagster_assets.py")],
        cwd=tmp_path,
        env={**clean_env(), "DAGSTER_DISABLE_TELEMETRY": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "first materialization: succeeded {'read': 504, 'added': 499" in done.stdout
    assert "'unchanged': 499, 'requests': 0}" in done.stdout
