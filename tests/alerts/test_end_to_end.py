"""A real Sync against the emulator, then alerts evaluated on its result and its state store:
an outage triggers RunFailed (once), recovery resolves it, and a shrinking source trips
RowsDropped against the run history the engine wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from contentstack_personalize import AuthToken, PersonalizeError
from contentstack_personalize.alerts import (
    Alert,
    Alerts,
    RejectedAbove,
    RowsDropped,
    RunFailed,
    Webhook,
    verify_signature,
)
from contentstack_personalize.sync import Sync
from contentstack_personalize.testing import PersonalizeEmulator
from tests.sync.conftest import make_client, people

HOOK = "https://ops.example.com/hooks/personalize"


def test_alerts_over_real_runs(tmp_path: Path) -> None:
    emulator = PersonalizeEmulator(seed=1)
    seen: list[Alert] = []
    alerts = Alerts(
        rules=[RunFailed(severity="critical"), RejectedAbove(percent=5), RowsDropped(percent=50)],
        sinks=[seen.append, Webhook(HOOK, secret="e2e-secret-123")],
    )
    with (
        make_client(emulator) as client,
        Sync(
            client,
            match_on="user_id",
            mapping={"plan": "plan_tier", "ltv": "lifetime_value"},
            state=str(tmp_path / "state.db"),
            raise_on_abort=False,
            min_sample=10,
            concurrency=2,
        ) as sync,
        respx.mock() as router,  # the emulator's transport is not touched by respx
    ):
        hook = router.post(HOOK).mock(return_value=httpx.Response(200))

        first = sync.run(people(100))
        assert first.status == "succeeded"
        assert alerts.evaluate(first, sync.state) == []

        emulator.set_faults(outage=True)
        down = sync.run(people(100, start=200))
        assert down.status == "aborted"
        outcomes = alerts.evaluate(down, sync.state)
        # One cause, one alert: the outage aborted the run AND got its rows rejected; the
        # run_failed alert names rejected_above_5 instead of a second page for the same outage.
        assert sorted((o.rule, o.sink, o.ok) for o in outcomes) == [
            ("run_failed", "list.append", True),
            ("run_failed", "webhook", True),
        ]
        assert "Also failing, not alerted separately: rejected_above_5 (" in seen[0].message
        assert seen[0].details["also_failing"] == ["rejected_above_5"]
        body = hook.calls.last.request.content
        assert verify_signature(
            body, hook.calls.last.request.headers["x-signature-256"], "e2e-secret-123"
        )
        assert json.loads(body)["sync_name"] == sync.name

        # Still down: nobody is told twice.
        again = sync.run(people(100, start=200))
        assert again.status == "aborted"
        assert alerts.evaluate(again, sync.state) == []

        emulator.set_faults()
        back = sync.run(people(30, start=200))  # recovers, but the source shrank to 30 rows
        assert back.status == "succeeded"
        outcomes = alerts.evaluate(back, sync.state)

    told = [(a.rule, a.action) for a in seen]
    assert told == [
        ("run_failed", "trigger"),
        ("run_failed", "resolve"),
        ("rows_dropped_50", "trigger"),
    ]
    dropped = seen[-1]
    assert dropped.details["previous_read"] == 100 and dropped.details["read"] == 30
    assert seen[0].severity == "critical"
    assert "stopped" in seen[0].message or "aborted" in seen[0].message
    assert hook.call_count == 3


def _scheduled_run(client: Any, path: Path, rows: list[dict[str, Any]], **kw: Any) -> Any:
    """One scheduled run, as a job does it: a new ``Sync`` on the same state file (so the
    pre-flight runs, as in a new process), and ``run()``. A Management outage during the
    pre-flight aborts the run (``raise_on_abort=False`` returns its result); whether it raises
    or returns an aborted result, the alerts below must behave the same. Returns the result
    (``None`` when the run raised)."""
    with Sync(
        client,
        match_on="user_id",
        mapping={"plan": "plan_tier"},
        state=str(path),
        create_missing_attributes=True,
        raise_on_abort=False,
        **kw,
    ) as sync:
        try:
            return sync.run(rows)
        except PersonalizeError:
            return None


def test_sync_alerts_cover_a_management_outage_during_preflight(tmp_path: Path) -> None:
    """The documented way, Sync(alerts=...): a run that fails before sending anything is
    alerted once, with one alert although several rules fail (RowsDropped: 0 rows read),
    and resolved once."""
    emulator = PersonalizeEmulator(seed=2)
    seen: list[Alert] = []
    alerts = Alerts(
        rules=[RunFailed(), RejectedAbove(percent=5), RowsDropped(percent=50)],
        sinks=[seen.append],
    )
    state = tmp_path / "s.db"
    with make_client(emulator, auth=AuthToken(emulator.authtoken)) as client:
        first = _scheduled_run(client, state, people(20), alerts=alerts)
        assert first is not None and first.status == "succeeded"
        emulator.set_faults(outage=True, apply_to={"management"})
        _scheduled_run(client, state, people(20), alerts=alerts)
        _scheduled_run(client, state, people(20), alerts=alerts)  # still down: told once
        emulator.set_faults()
        back = _scheduled_run(client, state, people(20), alerts=alerts)
    assert back is not None and back.status == "succeeded"
    assert [(a.rule, a.action) for a in seen] == [
        ("run_failed", "trigger"),
        ("run_failed", "resolve"),
    ]
    assert "503" in seen[0].message and "rows_dropped_50" in seen[0].message
    assert [(o.rule, o.action, o.ok) for o in back.alerts] == [("run_failed", "resolve", True)]


def test_evaluate_latest_covers_a_run_that_raised_before_sending(tmp_path: Path) -> None:
    """Evaluating yourself: ``alerts.evaluate_latest(sync)`` in a ``finally:`` judges the run
    just recorded, also when ``run()`` raised instead of returning a result."""
    emulator = PersonalizeEmulator(seed=2)
    seen: list[Alert] = []
    alerts = Alerts(rules=[RunFailed(severity="critical")], sinks=[seen.append])
    outcomes: list[Any] = []
    state = tmp_path / "s.db"

    def sync_on(client: Any) -> Sync:  # a new one per job, as a new process makes
        return Sync(
            client,
            match_on="user_id",
            mapping={"plan": "plan_tier"},
            state=str(state),
            create_missing_attributes=True,
        )

    def job(client: Any) -> None:
        with sync_on(client) as sync:
            try:
                sync.run(people(20))
            except PersonalizeError:
                pass
            finally:
                outcomes.append(alerts.evaluate_latest(sync))

    with make_client(emulator, auth=AuthToken(emulator.authtoken)) as client:
        with sync_on(client) as empty:
            assert alerts.evaluate_latest(empty) == []  # no run yet: nothing to judge
        job(client)
        emulator.set_faults(outage=True, apply_to={"management"})
        job(client)
        with sync_on(client) as again:
            assert alerts.evaluate_latest(again) == []  # the same run again: told once only
        emulator.set_faults()
        job(client)
    assert [[(o.rule, o.action, o.ok) for o in batch] for batch in outcomes] == [
        [],
        [("run_failed", "trigger", True)],
        [("run_failed", "resolve", True)],
    ]
    trigger = seen[0]
    assert trigger.severity == "critical" and trigger.run_status == "aborted"
    assert "503" in trigger.message and trigger.details["read"] == 0


def test_evaluate_latest_leaves_an_interrupted_run_alone(tmp_path: Path) -> None:
    """Like Sync(alerts=...), evaluating yourself in a ``finally:`` does not page anyone for
    an operator's own Ctrl-C."""
    emulator = PersonalizeEmulator(seed=2)
    seen: list[Alert] = []
    alerts = Alerts(rules=[RunFailed()], sinks=[seen.append])

    def interrupted_source() -> Any:
        yield from people(5)
        raise KeyboardInterrupt

    with (
        make_client(emulator) as client,
        Sync(client, match_on="user_id", mapping={"plan": "plan_tier"}) as sync,
    ):
        outcomes: list[Any] = []
        with pytest.raises(PersonalizeError):  # SyncAbortedError: the sync was interrupted
            try:
                sync.run(interrupted_source())
            finally:
                outcomes = alerts.evaluate_latest(sync)
        (record,) = sync.history(1)
    assert record.status == "aborted" and (record.error or "").startswith("interrupted")
    assert outcomes == [] and seen == []
