"""The notify-once state machine over sequences of runs, in both state stores."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from contentstack_personalize.alerts import (
    Alert,
    AlertDeliveryError,
    Alerts,
    CallableSink,
    InvalidAbove,
    RejectedAbove,
    RowsDropped,
    Rule,
    RunFailed,
    Severity,
    Verdict,
    decide,
    dedup_key,
    evaluate_alerts,
    previous_run,
)
from contentstack_personalize.errors import ConfigurationError
from contentstack_personalize.state import RunRecord
from contentstack_personalize.sync import MemoryState, StateStore, SyncResult

from .conftest import failed, make_result, record_of


class Recorder:
    """A sink that records what it was told and can be switched to fail."""

    def __init__(self, name: str = "rec", min_severity: Severity = "info") -> None:
        self.name = name
        self.min_severity = min_severity
        self.alerts: list[Alert] = []
        self.fail_with: Exception | None = None

    def send(self, alert: Alert) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.alerts.append(alert)

    def told(self) -> list[tuple[str, str]]:
        return [(a.rule, a.action) for a in self.alerts]


def run(alerts: Alerts, store: StateStore, result: SyncResult) -> list[Any]:
    """Save the run in the history (as the engine does), then evaluate."""
    store.save_run(record_of(result))
    return alerts.evaluate(result, store)


def test_trigger_once_then_resolve_once(store: StateStore) -> None:
    sink = Recorder()
    alerts = Alerts(rules=[RunFailed(severity="critical")], sinks=[sink])

    assert run(alerts, store, make_result()) == []
    first = run(alerts, store, failed())
    assert [(o.rule, o.action, o.sink, o.ok) for o in first] == [
        ("run_failed", "trigger", "rec", True)
    ]
    assert run(alerts, store, failed()) == []  # still failing: no second notice
    assert run(alerts, store, failed()) == []
    resolved = run(alerts, store, make_result())
    assert [(o.action, o.ok) for o in resolved] == [("resolve", True)]
    assert run(alerts, store, make_result()) == []  # still fine: nothing
    again = run(alerts, store, failed())  # a new incident
    assert [o.action for o in again] == ["trigger"]

    assert sink.told() == [
        ("run_failed", "trigger"),
        ("run_failed", "resolve"),
        ("run_failed", "trigger"),
    ]
    trigger, resolve, _ = sink.alerts
    assert trigger.severity == "critical"
    assert trigger.dedup_key == resolve.dedup_key == dedup_key("users", "run_failed")
    assert "boom" in trigger.message


def test_state_survives_a_new_alerts_object_and_a_reopened_store(tmp_path: Any) -> None:
    from contentstack_personalize.sync import SQLiteState

    path = tmp_path / "state.db"
    sink = Recorder()
    with_store = SQLiteState(path)
    run(Alerts(rules=[RunFailed()], sinks=[sink]), with_store, failed())
    with_store.close()

    reopened = SQLiteState(path)
    try:
        alerts = Alerts(rules=[RunFailed()], sinks=[sink])  # a new process, in effect
        assert run(alerts, reopened, failed()) == []
        assert [o.action for o in run(alerts, reopened, make_result())] == ["resolve"]
    finally:
        reopened.close()
    assert sink.told() == [("run_failed", "trigger"), ("run_failed", "resolve")]


def test_rules_are_tracked_independently(store: StateStore) -> None:
    sink = Recorder()
    alerts = Alerts(rules=[RejectedAbove(percent=5), InvalidAbove(percent=10)], sinks=[sink])
    run(alerts, store, make_result(read=100, invalid=20, added=80))
    run(alerts, store, make_result(read=100, invalid=20, added=70, rejected=10))
    run(alerts, store, make_result(read=100, invalid=0, added=90, rejected=10))
    run(alerts, store, make_result(read=100, added=100))
    assert sink.told() == [
        ("invalid_above_10", "trigger"),
        ("rejected_above_5", "trigger"),
        ("invalid_above_10", "resolve"),
        ("rejected_above_5", "resolve"),
    ]


def test_states_are_per_sync(store: StateStore) -> None:
    sink = Recorder()
    alerts = Alerts(rules=[RunFailed()], sinks=[sink])
    run(alerts, store, failed(sync_name="a"))
    run(alerts, store, failed(sync_name="b"))
    run(alerts, store, make_result(sync_name="a"))
    assert [(a.sync_name, a.action) for a in sink.alerts] == [
        ("a", "trigger"),
        ("b", "trigger"),
        ("a", "resolve"),
    ]
    assert sink.alerts[0].dedup_key != sink.alerts[1].dedup_key


def test_a_failed_delivery_is_retried_on_the_next_run_only_for_that_sink(
    store: StateStore,
) -> None:
    good, bad = Recorder("good"), Recorder("bad")
    bad.fail_with = AlertDeliveryError("bad: https://example.com answered HTTP 500")
    alerts = Alerts(rules=[RunFailed()], sinks=[good, bad])

    first = run(alerts, store, failed())
    assert {(o.sink, o.ok) for o in first} == {("good", True), ("bad", False)}
    assert [o.error for o in first if not o.ok] == ["bad: https://example.com answered HTTP 500"]

    bad.fail_with = None
    second = run(alerts, store, failed())
    assert [(o.sink, o.action, o.ok) for o in second] == [("bad", "trigger", True)]
    assert run(alerts, store, failed()) == []
    assert good.told() == bad.told() == [("run_failed", "trigger")]


def test_recovery_resolves_only_sinks_that_heard_the_trigger(store: StateStore) -> None:
    good, bad = Recorder("good"), Recorder("bad")
    bad.fail_with = RuntimeError("down")
    alerts = Alerts(rules=[RunFailed()], sinks=[good, bad])
    run(alerts, store, failed())
    bad.fail_with = None
    resolved = run(alerts, store, make_result())
    assert [(o.sink, o.action) for o in resolved] == [("good", "resolve")]
    assert bad.alerts == []


def test_a_failed_resolve_is_retried(store: StateStore) -> None:
    sink = Recorder()
    alerts = Alerts(rules=[RunFailed()], sinks=[sink])
    run(alerts, store, failed())
    sink.fail_with = RuntimeError("down")
    assert [o.ok for o in run(alerts, store, make_result())] == [False]
    sink.fail_with = None
    assert [(o.action, o.ok) for o in run(alerts, store, make_result())] == [("resolve", True)]
    assert run(alerts, store, make_result()) == []
    assert store.get_meta("users", "alert:run_failed") is None


def test_min_severity_routes_alerts(store: StateStore) -> None:
    chat, pager = Recorder("chat"), Recorder("pager", min_severity="critical")
    alerts = Alerts(
        rules=[RunFailed(severity="critical"), RejectedAbove(percent=5, severity="warning")],
        sinks=[chat, pager],
    )
    run(alerts, store, make_result(read=100, added=90, rejected=10))  # a warning only
    run(alerts, store, make_result())
    assert chat.told() == [("rejected_above_5", "trigger"), ("rejected_above_5", "resolve")]
    assert pager.told() == []
    run(alerts, store, failed())
    run(alerts, store, make_result())
    assert pager.told() == [("run_failed", "trigger"), ("run_failed", "resolve")]


def test_a_rule_that_cannot_judge_keeps_the_alert_open(store: StateStore) -> None:
    sink = Recorder()
    alerts = Alerts(rules=[RowsDropped(percent=50)], sinks=[sink])
    first = make_result(read=1000, added=1000)
    store.save_run(record_of(first))
    assert alerts.evaluate(first, store) == []  # no previous run: no judgement
    assert [o.action for o in run(alerts, store, make_result(read=10, added=10))] == ["trigger"]
    # No previous run given explicitly: the open alert stays open, nothing is sent.
    assert alerts.evaluate(make_result(read=10), store, previous=None) == []
    assert store.get_meta("users", "alert:rows_dropped_50") is not None


def test_previous_run_skips_the_current_and_crashed_runs() -> None:
    store = MemoryState()
    done = make_result(read=7)
    store.save_run(record_of(done))
    store.save_run(
        RunRecord(
            run_id="crashed",
            sync_name="users",
            started_at=done.started_at + 1,
            finished_at=None,
            status="running",
            counts={},
        )
    )
    current = make_result()
    store.save_run(record_of(current))
    prev = previous_run(store, "users", current.run_id)
    assert prev is not None and prev.run_id == done.run_id
    assert previous_run(MemoryState(), "users", "x") is None


def test_rows_dropped_uses_the_history_by_default(store: StateStore) -> None:
    sink = Recorder()
    alerts = Alerts(rules=[RowsDropped(percent=50)], sinks=[sink])
    run(alerts, store, make_result(read=1000))
    outcomes = run(alerts, store, make_result(read=100))
    assert [o.action for o in outcomes] == ["trigger"]
    assert sink.alerts[0].details["previous_read"] == 1000
    assert "100 rows read, 1,000 in the previous run" in sink.alerts[0].message


def test_a_removed_rule_resolves_its_open_alert(store: StateStore) -> None:
    sink = Recorder()
    run(Alerts(rules=[RunFailed(), InvalidAbove(percent=5)], sinks=[sink]), store, failed())
    later = Alerts(rules=[InvalidAbove(percent=5)], sinks=[sink])
    outcomes = run(later, store, failed())
    assert [(o.rule, o.action) for o in outcomes] == [("run_failed", "resolve")]
    assert "no longer configured" in sink.alerts[-1].message
    assert sink.alerts[-1].severity == "error"  # remembered from the trigger
    assert run(later, store, failed()) == []
    assert json.loads(store.get_meta("users", "alerts:rules") or "[]") == []


def test_removing_the_carrier_lets_a_covered_rule_alert(store: StateStore) -> None:
    sink = Recorder()
    run(Alerts(rules=[RunFailed(), RejectedAbove(percent=5)], sinks=[sink]), store, failed())
    later = Alerts(rules=[RejectedAbove(percent=5)], sinks=[sink])
    outcomes = run(later, store, failed())
    assert sorted((o.rule, o.action) for o in outcomes) == [
        ("rejected_above_5", "trigger"),  # no longer covered by anything: news of its own
        ("run_failed", "resolve"),
    ]
    assert json.loads(store.get_meta("users", "alerts:rules") or "[]") == ["rejected_above_5"]


# -- one cause, one alert ---------------------------------------------------------------------

ALL_RULES = [
    RunFailed(),
    RejectedAbove(percent=5),
    InvalidAbove(percent=10),
    RowsDropped(percent=50),
]


def test_an_outage_fires_one_alert_naming_the_other_rules(store: StateStore) -> None:
    sink = Recorder()
    alerts = Alerts(rules=ALL_RULES, sinks=[sink])
    run(alerts, store, make_result(read=100))
    outage = failed(status="aborted", read=100, rejected=60, not_sent=40, error="503 outage")
    outcomes = run(alerts, store, outage)
    assert [(o.rule, o.action) for o in outcomes] == [("run_failed", "trigger")]
    (alert,) = sink.alerts
    assert alert.message.startswith(f"run {outage.run_id} aborted: 503 outage. ")
    assert "Also failing, not alerted separately: rejected_above_5 (60 of 60 rows" in alert.message
    assert alert.details["also_failing"] == ["rejected_above_5"]
    # Still down, and now failing before reading (0 rows: RowsDropped fails too): silence.
    assert run(alerts, store, failed(status="failed", read=0, added=0, rejected=0)) == []
    # Back: one resolve, nothing for the covered rules.
    assert [(o.rule, o.action) for o in run(alerts, store, make_result())] == [
        ("run_failed", "resolve")
    ]
    assert run(alerts, store, make_result()) == []
    assert sink.told() == [("run_failed", "trigger"), ("run_failed", "resolve")]
    for rule in ("rejected_above_5", "rows_dropped_50", "run_failed"):
        assert store.get_meta("users", f"alert:{rule}") is None


def test_the_most_severe_failing_rule_carries_the_alert(store: StateStore) -> None:
    sink = Recorder()
    rules = [RunFailed(severity="warning"), RejectedAbove(percent=5, severity="critical")]
    outcomes = run(Alerts(rules=rules, sinks=[sink]), store, failed())
    assert [(o.rule, o.severity) for o in outcomes] == [("rejected_above_5", "critical")]
    assert "not alerted separately: run_failed (run " in sink.alerts[0].message


def test_rules_starting_together_on_a_finished_run_share_one_alert(store: StateStore) -> None:
    sink = Recorder()
    alerts = Alerts(rules=[RejectedAbove(percent=5), InvalidAbove(percent=10)], sinks=[sink])
    outcomes = run(alerts, store, make_result(invalid=20, added=70, rejected=10))
    assert [o.rule for o in outcomes] == ["rejected_above_5"]
    assert "invalid_above_10 (20 of 100 rows read were invalid" in sink.alerts[0].message


def test_a_covered_rule_still_failing_when_the_carrier_recovers_alerts_then(
    store: StateStore,
) -> None:
    sink = Recorder()
    alerts = Alerts(rules=[RunFailed(), InvalidAbove(percent=10)], sinks=[sink])
    run(alerts, store, failed(invalid=50))
    assert run(alerts, store, failed(invalid=50)) == []
    recovered = run(alerts, store, make_result(invalid=50, added=50))
    assert sorted((o.rule, o.action) for o in recovered) == [
        ("invalid_above_10", "trigger"),
        ("run_failed", "resolve"),
    ]
    assert [(o.rule, o.action) for o in run(alerts, store, make_result())] == [
        ("invalid_above_10", "resolve")
    ]


def test_a_new_problem_on_a_finished_run_is_news_even_while_another_alert_is_open(
    store: StateStore,
) -> None:
    sink = Recorder()
    alerts = Alerts(rules=[RejectedAbove(percent=5), InvalidAbove(percent=10)], sinks=[sink])
    run(alerts, store, make_result(added=90, rejected=10))
    outcomes = run(alerts, store, make_result(invalid=20, added=70, rejected=10))
    assert [(o.rule, o.action) for o in outcomes] == [("invalid_above_10", "trigger")]


def test_a_rule_alerted_on_its_own_keeps_its_resolve_when_an_outage_covers_it(
    store: StateStore,
) -> None:
    sink = Recorder()
    alerts = Alerts(rules=[RunFailed(), RejectedAbove(percent=5)], sinks=[sink])
    run(alerts, store, make_result(status="partially_failed", added=90, rejected=10))
    run(alerts, store, failed())
    run(alerts, store, make_result())
    assert sink.told() == [
        ("rejected_above_5", "trigger"),
        ("run_failed", "trigger"),
        ("run_failed", "resolve"),
        ("rejected_above_5", "resolve"),
    ]
    assert "rejected_above_5" in sink.alerts[1].message


def test_a_failed_carrier_delivery_is_retried_and_covered_rules_stay_quiet(
    store: StateStore,
) -> None:
    sink = Recorder()
    sink.fail_with = RuntimeError("down")
    alerts = Alerts(rules=[RunFailed(), RejectedAbove(percent=5)], sinks=[sink])
    assert [(o.rule, o.ok) for o in run(alerts, store, failed())] == [("run_failed", False)]
    sink.fail_with = None
    assert [(o.rule, o.ok) for o in run(alerts, store, failed())] == [("run_failed", True)]
    assert sink.told() == [("run_failed", "trigger")]


def test_failing_callables_and_rules_never_raise_and_are_reported(
    store: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Rule):
        def check(self, result: SyncResult, previous: RunRecord | None) -> Verdict:
            raise ZeroDivisionError("rule bug")

    def explode(alert: Alert) -> None:
        raise ValueError("callable bug")

    alerts = Alerts(rules=[Broken(name="broken"), RunFailed()], sinks=[explode])
    caplog.set_level(logging.DEBUG, logger="contentstack_personalize.alerts")
    outcomes = run(alerts, store, failed())
    assert [(o.rule, o.action, o.ok, o.error) for o in outcomes] == [
        ("broken", "check", False, "ZeroDivisionError: rule bug"),
        ("run_failed", "trigger", False, "ValueError: callable bug"),
    ]
    messages = [r.getMessage() for r in caplog.records if r.name.endswith(".alerts")]
    assert any("rule bug" in m for m in messages)
    assert any("not delivered to explode" in m and "callable bug" in m for m in messages)


def test_a_broken_store_is_reported_not_raised() -> None:
    class BrokenStore(MemoryState):
        def get_meta(self, sync_name: str, key: str) -> str | None:
            raise OSError("disk gone")

    outcomes = Alerts(rules=[RunFailed()], sinks=[Recorder()]).evaluate(
        failed(), BrokenStore(), previous=None
    )
    assert [(o.action, o.ok, o.error) for o in outcomes] == [("check", False, "OSError: disk gone")]


def test_unreadable_stored_state_is_ignored(store: StateStore) -> None:
    store.set_meta("users", "alert:run_failed", "not json at all")
    sink = Recorder()
    outcomes = run(Alerts(rules=[RunFailed()], sinks=[sink]), store, failed())
    assert [o.action for o in outcomes] == ["trigger"]


async def test_async_callables_and_aevaluate(store: StateStore) -> None:
    seen: list[str] = []

    async def notify(alert: Alert) -> None:
        await asyncio.sleep(0)
        seen.append(alert.action)

    alerts = Alerts(rules=[RunFailed()], sinks=[CallableSink(notify, name="async")])
    result = failed()
    store.save_run(record_of(result))
    outcomes = await alerts.aevaluate(result, store)
    assert [(o.sink, o.ok) for o in outcomes] == [("async", True)]
    assert seen == ["trigger"]


def test_async_callable_from_sync_code_inside_a_running_loop() -> None:
    seen: list[str] = []

    async def notify(alert: Alert) -> None:
        seen.append(alert.rule)

    async def main() -> list[Any]:
        # evaluate() (blocking) called from a coroutine, as in a notebook cell.
        return Alerts(rules=[RunFailed()], sinks=[notify]).evaluate(
            failed(), MemoryState(), previous=None
        )

    outcomes = asyncio.run(main())
    assert [o.ok for o in outcomes] == [True]
    assert seen == ["run_failed"]


def test_evaluate_alerts_function() -> None:
    got: list[Alert] = []
    outcomes = evaluate_alerts(failed(), None, [RunFailed()], [got.append], MemoryState())
    assert [o.action for o in outcomes] == ["trigger"]
    assert got[0].run_status == "failed"


def test_outcomes_attach_to_a_new_result(store: StateStore) -> None:
    alerts = Alerts(rules=[RunFailed()], sinks=[Recorder()])
    result = failed()
    with_alerts = result.with_alerts(run(alerts, store, result))
    assert result.alerts == ()
    assert [(o.rule, o.action, o.sink, o.ok) for o in with_alerts.alerts] == [
        ("run_failed", "trigger", "rec", True)
    ]
    # An AlertOutcome gives everything a result reads of it (AlertOutcomeProtocol).
    (outcome,) = with_alerts.alerts
    for name in ("sync_name", "run_id", "rule", "severity", "action", "sink", "ok", "error"):
        assert hasattr(outcome, name)
    assert with_alerts.to_dict()["alerts"] == [outcome.to_dict()]


def test_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="two alert rules are named 'run_failed'"):
        Alerts(rules=[RunFailed(), RunFailed(severity="critical")], sinks=[])
    with pytest.raises(ConfigurationError, match="two alert sinks are named '<lambda>'"):
        Alerts(rules=[RunFailed()], sinks=[lambda a: None, lambda a: None])
    with pytest.raises(ConfigurationError, match="a sink must be"):
        Alerts(rules=[RunFailed()], sinks=["https://hooks.slack.com/x"])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="alert rules must be Rule objects"):
        Alerts(rules=["run_failed"], sinks=[])  # type: ignore[list-item]


def test_decide_is_pure() -> None:
    from contentstack_personalize.alerts import RuleState

    sinks = [("a", "info"), ("b", "error")]
    assert decide(None, True, sinks, "warning") == (True, [("a", "trigger")])  # type: ignore[arg-type]
    assert decide(None, False, sinks, "warning") == (False, [])  # type: ignore[arg-type]
    assert decide(None, None, sinks, "warning") == (None, [])  # type: ignore[arg-type]
    open_ = RuleState(failing=True, open=("a", "gone"))
    assert decide(open_, False, sinks, "warning") == (False, [("a", "resolve")])  # type: ignore[arg-type]
    assert decide(open_, True, sinks, "critical") == (True, [("b", "trigger")])  # type: ignore[arg-type]
    assert decide(open_, None, sinks, "critical") == (True, [])  # type: ignore[arg-type]


def test_dedup_key_is_bounded() -> None:
    key = dedup_key("x" * 300, "run_failed")
    assert len(key) <= 255
    assert key == dedup_key("x" * 300, "run_failed")
    assert key != dedup_key("x" * 301, "run_failed")


def test_evaluate_latest_judges_the_recorded_run_and_skips_crashed_ones() -> None:
    from contentstack_personalize.alerts import latest_run, result_of

    class Job:  # anything with a name and a state store
        name = "users"
        state = MemoryState()

    job = Job()
    sink = Recorder()
    alerts = Alerts(rules=[RunFailed(), RejectedAbove(percent=5)], sinks=[sink])
    bad = failed(status="aborted", added=50, rejected=50, error="503 outage")
    job.state.save_run(record_of(bad))
    job.state.save_run(
        RunRecord(
            run_id="crashed",
            sync_name="users",
            started_at=bad.started_at + 1,
            finished_at=None,
            status="running",
            counts={},
        )
    )
    record = latest_run(job.state, "users")
    assert record is not None and record.run_id == bad.run_id
    again = result_of(record)
    assert (again.status, again.error, again.counts(), again.requests) == (
        "aborted",
        "503 outage",
        bad.counts(),
        bad.requests,
    )
    outcomes = alerts.evaluate_latest(job)
    assert [(o.rule, o.action, o.run_id) for o in outcomes] == [
        ("run_failed", "trigger", bad.run_id)
    ]
    assert alerts.evaluate_latest(job) == []


def test_evaluate_latest_reports_an_unreadable_history() -> None:
    class BrokenStore(MemoryState):
        def runs(self, sync_name: str, limit: int = 50) -> list[RunRecord]:
            raise OSError("disk gone")

    class Job:
        name = "users"
        state = BrokenStore()

    outcomes = Alerts(rules=[RunFailed()], sinks=[Recorder()]).evaluate_latest(Job())
    assert [(o.action, o.ok, o.error) for o in outcomes] == [("check", False, "OSError: disk gone")]


async def test_aevaluate_latest() -> None:
    class Job:
        name = "users"
        state = MemoryState()

    job = Job()
    job.state.save_run(record_of(failed()))
    outcomes = await Alerts(rules=[RunFailed()], sinks=[Recorder()]).aevaluate_latest(job)
    assert [o.action for o in outcomes] == ["trigger"]
