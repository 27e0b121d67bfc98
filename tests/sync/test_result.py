"""SyncResult and Plan as values: frozen, typed fields, the deprecated ``extras`` view, the
exception kept beside its text, and how a distributed run's results combine."""

from __future__ import annotations

import pickle
import sqlite3
import warnings
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from contentstack_personalize.alerts import AlertOutcome
from contentstack_personalize.debugger import Debugger
from contentstack_personalize.errors import DestinationMismatchError
from contentstack_personalize.sync import (
    Plan,
    RowIssue,
    SyncResult,
    TypeIssue,
    combine_results,
)

SECRET = "sk-live-0123456789abcdef"


def make_result(**overrides: Any) -> SyncResult:
    values: dict[str, Any] = {
        "run_id": "run1",
        "sync_name": "users",
        "status": "succeeded",
        "started_at": 1_700_000_000.0,
        "finished_at": 1_700_000_010.0,
        "read": 10,
        "invalid": 1,
        "unchanged": 2,
        "added": 3,
        "changed": 4,
        "rejected": 0,
        "not_sent": 0,
        "retried": 0,
        "requests": 7,
        "invalid_rows": (RowIssue(kind="invalid", row=1, uid="", reason="user UID is empty"),),
        "rejected_rows": (),
    }
    values.update(overrides)
    return SyncResult(**values)


def type_issue(column: str = "ltv") -> TypeIssue:
    return TypeIssue(
        column=column,
        attribute=column,
        problem="mixed",
        expected=("number",),
        because="declared type",
        found={"number": 3, "string": 1},
        examples=((4, "10"),),
        action="warned",
        count=1,
    )


def outcome(ok: bool = True, rule: str = "run_failed") -> AlertOutcome:
    return AlertOutcome(
        sync_name="users",
        run_id="run1",
        rule=rule,
        severity="error",
        action="trigger",
        sink="slack",
        ok=ok,
        error=None if ok else "HTTP 500 from https://hooks.slack.com",
    )


class TestFrozen:
    def test_assigning_a_field_raises(self) -> None:
        result = make_result()
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            result.status = "failed"  # type: ignore[misc]
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            result.alerts = (outcome(),)  # type: ignore[misc]
        assert result.status == "succeeded" and result.alerts == ()

    def test_sequences_are_stored_as_tuples(self) -> None:
        result = make_result(
            invalid_rows=[], warnings=["w"], type_issues=[type_issue()], alerts=[outcome()]
        )
        assert result.invalid_rows == () and result.warnings == ("w",)
        assert isinstance(result.type_issues, tuple) and isinstance(result.alerts, tuple)


class TestWithAlerts:
    def test_returns_a_new_result_and_leaves_the_old_one(self) -> None:
        debugger = Debugger()
        before = make_result(debugger=debugger, exception=RuntimeError("x"))
        after = before.with_alerts([outcome(), outcome(ok=False, rule="rejected_above_5")])
        assert after is not before
        assert before.alerts == ()
        assert [(o.rule, o.ok) for o in after.alerts] == [
            ("run_failed", True),
            ("rejected_above_5", False),
        ]
        assert after.debugger is debugger and after.exception is before.exception
        assert attrs.evolve(after, alerts=()) == before

    def test_undelivered_alerts_show_in_the_summary_and_dict(self) -> None:
        result = make_result().with_alerts([outcome(ok=False)])
        assert "alert not delivered: run_failed trigger to slack: FAILED" in result.summary()
        assert result.to_dict()["alerts"][0]["sink"] == "slack"


class TestExtrasCompatibility:
    def test_extras_warns_and_is_built_from_the_typed_fields(self) -> None:
        issue = type_issue()
        result = make_result(type_issues=[issue]).with_alerts([outcome()])
        with pytest.warns(DeprecationWarning, match=r"SyncResult\.extras is deprecated"):
            extras = result.extras
        assert extras == {"type_issues": [issue], "alerts": [outcome()], "partitions": []}

    def test_extras_is_a_fresh_dict_each_time(self) -> None:
        result = make_result(type_issues=[type_issue()])
        with pytest.warns(DeprecationWarning):
            first = result.extras
        first["type_issues"].clear()
        first["partitions"] = ["junk"]
        with pytest.warns(DeprecationWarning):
            assert len(result.extras["type_issues"]) == 1
        assert len(result.type_issues) == 1 and result.partitions == ()

    def test_extras_argument_fills_the_typed_fields(self) -> None:
        issue = type_issue()
        part = make_result(run_id="p0")
        result = make_result(
            extras={"type_issues": [issue], "alerts": [outcome()], "partitions": [part]}
        )
        assert result.type_issues == (issue,)
        assert result.alerts == (outcome(),)
        assert result.partitions == (part,)
        assert result == make_result(type_issues=(issue,), alerts=(outcome(),), partitions=(part,))

    def test_an_unknown_extras_key_is_refused(self) -> None:
        with pytest.raises(TypeError, match=r"unknown extras \['colour'\]"):
            make_result(extras={"colour": "red"})

    def test_a_partition_must_be_a_result(self) -> None:
        with pytest.raises(TypeError, match="a partition is a SyncResult, not dict"):
            make_result(partitions=[{"run_id": "p0", "read": 1}])

    def test_assigning_into_extras_changes_nothing(self) -> None:
        result = make_result()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            extras = result.extras
            extras["type_issues"] = [type_issue()]
            extras["alerts"] = [outcome()]
        assert (result.type_issues, result.alerts) == ((), ())


class TestException:
    def test_kept_beside_its_text_but_not_in_repr_or_equality(self) -> None:
        exc = ValueError(f"cannot read row 3: token={SECRET}")
        result = make_result(status="failed", error="the source failed", exception=exc)
        assert result.exception is exc
        assert result.error == "the source failed"
        assert SECRET not in repr(result)
        assert "exception" not in repr(result) and "debugger" not in repr(result)
        assert result == make_result(status="failed", error="the source failed")
        assert "exception" not in result.to_dict()

    def test_the_text_is_derived_from_the_exception_when_not_given(self) -> None:
        result = make_result(status="failed", exception=KeyboardInterrupt())
        assert result.error == "KeyboardInterrupt: "
        assert make_result().error is None and make_result().exception is None

    def test_pickling_keeps_the_text_and_drops_the_exception_and_debugger(self) -> None:
        # This exception cannot be unpickled (keyword-only arguments): a worker's result must
        # still reach the driver of a distributed run.
        exc = DestinationMismatchError("other project", stored={"a": 1}, current={"a": 2})
        debugger = Debugger()
        result = make_result(
            status="failed", exception=exc, debugger=debugger, type_issues=[type_issue()]
        )
        back = pickle.loads(pickle.dumps(result))
        assert back == result
        assert back.error == "DestinationMismatchError: other project"
        assert back.exception is None and back.debugger is None
        assert back.type_issues == result.type_issues
        assert result.exception is exc and result.debugger is debugger


class TestCombine:
    def test_partitions_are_the_partition_results(self) -> None:
        parts = [
            make_result(run_id="p0", read=5, added=3, changed=1, invalid=1, unchanged=0),
            make_result(
                run_id="p1",
                status="failed",
                error="boom",
                exception=RuntimeError("boom"),
                read=5,
                added=0,
                changed=0,
                invalid=0,
                unchanged=0,
                not_sent=5,
                invalid_rows=(),
            ),
        ]
        combined = combine_results(parts, run_id="all", sync_name="users", started_at=1.0)
        assert combined.partitions == tuple(parts)
        assert combined.partitions[1].exception is parts[1].exception
        assert combined.status == "partially_failed" and combined.error == "p1: boom"
        assert combined.read == 10 and combined.not_sent == 5
        assert "partitions" not in repr(combined)
        with pytest.warns(DeprecationWarning):
            legacy = combined.extras["partitions"]
        assert [(p["run_id"], p["status"], p["read"]) for p in legacy] == [
            ("p0", "succeeded", 5),
            ("p1", "failed", 5),
        ]


@pytest.fixture
def changes_db() -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE changes (seq INTEGER PRIMARY KEY, uid TEXT, key TEXT, old TEXT, "
        "new TEXT, first INTEGER)"
    )
    db.executemany(
        "INSERT INTO changes (uid, key, old, new, first) VALUES (?, ?, ?, ?, ?)",
        [("u1", "plan", None, '"gold"', 1), ("u2", "plan", '"free"', '"gold"', 0)],
    )
    yield db
    db.close()


def make_plan(db: sqlite3.Connection, **overrides: Any) -> Plan:
    values: dict[str, Any] = {
        "sync_name": "users",
        "counts": {
            "read": 3,
            "invalid": 0,
            "unchanged": 1,
            "added": 1,
            "changed": 1,
            "retried": 0,
        },
        "invalid_rows": (),
        "issues_truncated": False,
        "warnings": (),
        "changes_db": db,
    }
    values.update(overrides)
    return Plan(**values)


class TestPlan:
    def test_frozen_with_counts_and_changes(self, changes_db: sqlite3.Connection) -> None:
        plan = make_plan(changes_db)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            plan.read = 0  # type: ignore[misc]
        assert plan.counts()["read"] == 3 and plan.rejected == 0 and plan.not_sent == 0
        assert plan.requests == 2
        assert [tuple(c) for c in plan] == [
            ("u1", "plan", None, "gold"),
            ("u2", "plan", "free", "gold"),
        ]
        assert [c.first_time for c in plan.for_user("u1")] == [True]

    def test_type_issues_typed_and_through_deprecated_extras(
        self, changes_db: sqlite3.Connection
    ) -> None:
        issue = type_issue()
        plan = make_plan(changes_db, extras={"type_issues": [issue]})
        assert plan.type_issues == (issue,)
        with pytest.warns(DeprecationWarning, match=r"Plan\.extras is deprecated"):
            assert plan.extras == {"type_issues": [issue]}
        assert make_plan(changes_db, type_issues=[issue]).type_issues == (issue,)
        with pytest.raises(TypeError, match="unknown extras"):
            make_plan(changes_db, extras={"alerts": []})

    def test_a_closed_plan_refuses_its_changes(self, changes_db: sqlite3.Connection) -> None:
        with make_plan(changes_db) as plan:
            assert len(list(plan.changes())) == 2
        with pytest.raises(ValueError, match="this plan is closed"):
            list(plan.changes())
        plan.close()  # twice is fine
        assert "Plan for sync 'users'" in plan.summary()
