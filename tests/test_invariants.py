"""The shared invariant helper fails on what it must catch (tests/_invariants.py)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from contentstack_personalize.sync import RowIssue, SyncResult
from tests._invariants import assert_accounted


def result(**changes: Any) -> SyncResult:
    """A consistent aborted run: 10 read, 2 invalid, 3 added, 1 rejected (retried), 4 not sent."""
    base = SyncResult(
        run_id="r",
        sync_name="s",
        status="aborted",
        started_at=0.0,
        finished_at=1.0,
        read=10,
        invalid=2,
        unchanged=0,
        added=3,
        changed=0,
        rejected=1,
        not_sent=4,
        retried=1,
        requests=4,
        invalid_rows=(
            RowIssue(kind="invalid", row=1, uid=None, reason="the user UID is null"),
            RowIssue(kind="invalid", row=2, uid="b", reason="bad", column="plan"),
        ),
        rejected_rows=(
            RowIssue(kind="rejected", row=3, uid="c", reason="refused", status=400, code="X"),
            *(
                RowIssue(kind="not_sent", row=r, uid=f"u{r}", reason="stopped")
                for r in (7, 8, 9, 10)
            ),
        ),
    )
    return attrs.evolve(base, **changes)


def test_a_consistent_result_and_its_counts_pass() -> None:
    assert_accounted(result(), read=10)
    assert_accounted(result().counts(), read=10)


@pytest.mark.parametrize(
    "changes",
    [
        {"read": 11},  # a row in no bucket
        {"added": 4},  # a row in two buckets
        {"retried": 5},  # more retried than sent
        {"invalid": 3},  # an invalid row without its issue
        {"rejected": 2, "not_sent": 3},  # a rejected row without its issue
        {"not_sent": 5, "read": 11},  # a row not sent without its issue
        {"unchanged": -1, "read": 9},
    ],
    ids=["lost", "double", "retried", "invalid-rows", "rejected-rows", "not-sent-rows", "negative"],
)
def test_inconsistent_counts_fail(changes: dict[str, int]) -> None:
    with pytest.raises(AssertionError):
        assert_accounted(result(**changes))


def test_issues_are_checked() -> None:
    twice = result().invalid_rows[0]
    with pytest.raises(AssertionError, match="two issues"):
        assert_accounted(result(invalid_rows=(twice, attrs.evolve(twice, kind="invalid"))))
    with pytest.raises(AssertionError):
        assert_accounted(result(invalid_rows=(twice, attrs.evolve(twice, row=2, reason=" "))))
    with pytest.raises(AssertionError):
        assert_accounted(result(), read=9)


def test_truncated_issues_may_be_fewer_than_the_counts() -> None:
    assert_accounted(result(invalid=5, read=13, issues_truncated=True))
    with pytest.raises(AssertionError):
        assert_accounted(result(invalid=5, read=13))
