"""Rules: thresholds, edge cases (no rows, no previous run) and configuration errors."""

from __future__ import annotations

import pytest

from contentstack_personalize import alerts, rules
from contentstack_personalize.alerts import (
    DurationAbove,
    InvalidAbove,
    RejectedAbove,
    RowsDropped,
    Rule,
    RunFailed,
)
from contentstack_personalize.errors import ConfigurationError

from .conftest import make_result, record_of


@pytest.mark.parametrize(
    ("status", "failing"),
    [("succeeded", False), ("partially_failed", False), ("failed", True), ("aborted", True)],
)
def test_run_failed_fires_on_failed_and_aborted(status: str, failing: bool) -> None:
    verdict = RunFailed().check(make_result(status=status, error="HTTP 401"), None)
    assert verdict.failing is failing
    if failing:
        assert "HTTP 401" in verdict.message


def test_run_failed_can_include_partial_failures() -> None:
    rule = RunFailed(include_partial=True)
    assert rule.check(make_result(status="partially_failed"), None).failing is True
    assert rule.name == "run_failed_or_partial"


def test_rejected_above_counts_rows_sent_and_is_strictly_above() -> None:
    rule = RejectedAbove(percent=5)
    # 5 of 100 sent = exactly 5 %: not above.
    at_limit = make_result(added=90, changed=5, rejected=5, unchanged=0)
    assert rule.check(at_limit, None).failing is False
    over = make_result(added=90, changed=4, rejected=6)
    verdict = rule.check(over, None)
    assert verdict.failing is True
    assert verdict.details == {"rejected": 6, "sent": 100, "percent": 6.0}
    assert "6 of 100 rows sent were rejected (6.0%, limit 5%)" in verdict.message


def test_rejected_share_ignores_unchanged_and_not_sent_rows() -> None:
    # 1000 read, 990 unchanged, 10 sent of which 2 rejected = 20 %.
    result = make_result(read=1000, unchanged=990, added=8, rejected=2, not_sent=0)
    assert RejectedAbove(percent=19.5).check(result, None).failing is True
    assert RejectedAbove(percent=20).check(result, None).failing is False


def test_rejected_above_with_nothing_sent_is_passing() -> None:
    result = make_result(read=50, unchanged=50, added=0)
    verdict = RejectedAbove(percent=0).check(result, None)
    assert verdict.failing is False
    assert verdict.details["sent"] == 0


def test_invalid_above_is_a_share_of_rows_read() -> None:
    rule = InvalidAbove(percent=10)
    assert rule.check(make_result(read=100, invalid=10, added=90), None).failing is False
    verdict = rule.check(make_result(read=100, invalid=11, added=89), None)
    assert verdict.failing is True
    assert verdict.details["percent"] == 11.0


def test_invalid_above_with_zero_rows_read_is_passing() -> None:
    verdict = InvalidAbove(percent=0).check(make_result(read=0, added=0), None)
    assert verdict.failing is False


def test_rows_dropped_without_a_previous_run_does_not_judge() -> None:
    verdict = RowsDropped(percent=50).check(make_result(read=0, added=0), None)
    assert verdict.failing is None
    assert "no previous run" in verdict.message


def test_rows_dropped_compares_with_the_previous_run() -> None:
    rule = RowsDropped(percent=50)
    before = record_of(make_result(read=1000, added=1000))
    assert rule.check(make_result(read=500, added=500), before).failing is False
    verdict = rule.check(make_result(read=499, added=499), before)
    assert verdict.failing is True
    assert verdict.details["previous_read"] == 1000
    assert verdict.details["previous_run_id"] == before.run_id
    # Growth is never a drop.
    assert rule.check(make_result(read=5000, added=5000), before).failing is False


def test_rows_dropped_to_zero_and_from_zero() -> None:
    rule = RowsDropped(percent=50)
    empty_now = rule.check(make_result(read=0, added=0), record_of(make_result(read=10)))
    assert empty_now.failing is True
    empty_before = rule.check(make_result(read=10), record_of(make_result(read=0, added=0)))
    assert empty_before.failing is False


def test_rows_dropped_with_a_previous_record_without_counts_does_not_judge() -> None:
    crashed = record_of(make_result())
    crashed = type(crashed)(
        run_id="x", sync_name="users", started_at=0, finished_at=None, status="running", counts={}
    )
    assert RowsDropped(percent=10).check(make_result(), crashed).failing is None


def test_duration_above() -> None:
    rule = DurationAbove(seconds=3600)
    assert rule.check(make_result(started_at=0.0, finished_at=3600.0), None).failing is False
    verdict = rule.check(make_result(started_at=0.0, finished_at=3600.5), None)
    assert verdict.failing is True
    assert "limit 3600 s" in verdict.message


def test_default_names_are_stable_and_include_the_threshold() -> None:
    assert RunFailed().name == "run_failed"
    assert RejectedAbove(percent=5).name == "rejected_above_5"
    assert RejectedAbove(percent=2.5).name == "rejected_above_2.5"
    assert InvalidAbove(percent=10).name == "invalid_above_10"
    assert RowsDropped(percent=50).name == "rows_dropped_50"
    assert DurationAbove(seconds=3600).name == "duration_above_3600"
    assert RejectedAbove(percent=5, name="rejections").name == "rejections"


def test_default_severities() -> None:
    assert RunFailed().severity == "error"
    assert RejectedAbove(percent=1).severity == "warning"
    assert RunFailed(severity="critical").severity == "critical"


@pytest.mark.parametrize(
    "make",
    [
        lambda: RunFailed(severity="fatal"),  # type: ignore[arg-type]
        lambda: RejectedAbove(percent=-1),
        lambda: RejectedAbove(percent=101),
        lambda: InvalidAbove(percent=float("nan")),
        lambda: RowsDropped(percent=True),
        lambda: DurationAbove(seconds=-5),
        lambda: RunFailed(name="  "),
    ],
)
def test_bad_configuration_is_refused(make: object) -> None:
    with pytest.raises(ConfigurationError):
        make()  # type: ignore[operator]


def test_rules_are_frozen() -> None:
    rule = RejectedAbove(percent=5)
    with pytest.raises(AttributeError):
        rule.percent = 6  # type: ignore[misc]


def test_base_rule_needs_check() -> None:
    with pytest.raises(NotImplementedError):
        Rule().check(make_result(), None)


def test_alert_rule_is_the_alert_rules_base_not_the_audience_rule() -> None:
    assert alerts.AlertRule is alerts.Rule
    assert issubclass(RunFailed, alerts.AlertRule)
    assert alerts.AlertRule is not rules.Rule
    assert "AlertRule" in alerts.__all__
