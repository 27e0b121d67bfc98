"""The engine with its observers: the debugger, progress and alerts wired through ``Sync``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from contentstack_personalize import Debugger, SyncAbortedError
from contentstack_personalize.alerts import Alerts, RejectedAbove, RunFailed
from contentstack_personalize.sync import Sync
from contentstack_personalize.testing import PersonalizeEmulator

from .conftest import make_client, people


def test_debugger_records_the_run(
    emulator: PersonalizeEmulator, client: Any, tmp_path: Path
) -> None:
    emulator.set_faults(fail_nth={2: 503, 5: 400})
    export = tmp_path / "exchanges.jsonl"
    debugger = Debugger(export=export, persist=True)
    sync = Sync(client, match_on="user_id", mapping={"plan": "plan"}, debugger=debugger)
    result = sync.run(people(10))
    assert result.debugger is debugger
    assert debugger.seen == 11  # ten users, one retried
    [rejected] = [r for r in debugger.failed() if r.status == 400]
    assert result.rejected_rows[0].uid == rejected.user_uid
    assert [r.status for r in debugger.for_user(rejected.user_uid or "")] == [400]
    lines = export.read_text().splitlines()
    assert len(lines) == 11 and json.loads(lines[0])["api"] == "edge"
    assert len(sync.state.exchanges(sync.name, run_id=result.run_id)) == 11  # type: ignore[attr-defined]
    # detached after the run: a later request is not recorded
    client.users.set_attributes("x", {"plan": "y"})
    assert debugger.seen == 11


def test_debugger_true_makes_one_per_run(client: Any) -> None:
    sync = Sync(client, match_on="user_id", mapping={"plan": "plan"}, debugger=True)
    first = sync.run(people(3))
    second = sync.run(people(4))
    assert first.debugger is not None and second.debugger is not None
    assert first.debugger is not second.debugger
    assert len(second.debugger) == 1  # only user 4 was sent


def test_progress_callback_counts_every_row(client: Any) -> None:
    calls: list[tuple[int, int | None]] = []
    rows = [*people(20), {"user_id": None, "plan": "x"}]
    Sync(client, match_on="user_id", mapping={"plan": "plan"}).run(
        rows, progress=lambda done, total: calls.append((done, total))
    )
    assert calls[-1] == (21, 21)


def test_alerts_trigger_once_and_resolve(emulator: PersonalizeEmulator) -> None:
    received: list[Any] = []
    alerts = Alerts(rules=[RunFailed(), RejectedAbove(percent=10)], sinks=[received.append])
    with make_client(emulator) as client:
        sync = Sync(
            client, match_on="user_id", mapping={"plan": "plan"}, alerts=alerts, min_sample=5
        )
        emulator.set_faults(outage=True)
        with pytest.raises(SyncAbortedError) as info:
            sync.run(people(20))
        # One cause, one alert: the most severe failing rule, naming the other.
        assert [o.action for o in info.value.result.alerts] == ["trigger"]
        with pytest.raises(SyncAbortedError):
            sync.run(people(20))  # still failing: nobody is notified again
        assert len(received) == 1
        emulator.clear_faults()
        result = sync.run(people(20))
    assert result.status == "succeeded"
    assert sorted(a.action for a in received) == ["resolve", "trigger"]
    assert "alerts" in result.to_dict()


def test_a_broken_alert_sink_never_fails_the_sync(client: Any) -> None:
    def broken(alert: Any) -> None:
        raise RuntimeError("pager is down")

    sync = Sync(
        client,
        match_on="user_id",
        mapping={"plan": "plan"},
        alerts=Alerts(rules=[RunFailed()], sinks=[broken]),
    )
    with pytest.raises(ValueError, match="not found in any row"):
        sync.run([{"nope": 1}])  # a configuration error fails the run: the rule fires
    result = sync.run(people(2))
    assert result.status == "succeeded"


def test_a_bad_progress_argument_ends_the_run_record(client: Any) -> None:
    from contentstack_personalize import ConfigurationError

    sync = Sync(client, match_on="user_id", mapping={"plan": "plan"})
    with pytest.raises(ConfigurationError):
        sync.run(people(2), progress="loud")  # type: ignore[arg-type]
    assert sync.history()[0].status == "failed"
