"""The diff stage alone, against a MemoryState: it only reads, sends what differs (unknown keys
always), skips what is unchanged, sends everything with full=True, retries failed users, and
applies the duplicate rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contentstack_personalize.state import MemoryState
from contentstack_personalize.sync import Sync
from contentstack_personalize.sync._diff import DiffBatch, diff
from contentstack_personalize.sync._spool import DIFF_CHUNK, Spool
from contentstack_personalize.testing import PersonalizeEmulator
from tests._invariants import assert_accounted

from .conftest import people

NAME = "sync"
KEYS = ["plan", "ltv"]


def spooled(*rows: tuple[str, dict[str, Any]]) -> Spool:
    """A spool holding ``(uid, {key: value})`` rows 1, 2, ... (values as canonical JSON)."""
    spool = Spool()
    spool.add(
        [
            (i, uid, json.dumps({k: json.dumps(v) for k, v in attrs.items()}))
            for i, (uid, attrs) in enumerate(rows, start=1)
        ],
        [(uid, i) for i, (uid, _) in enumerate(rows, start=1)],
    )
    return spool


class ReadOnly(MemoryState):
    """A MemoryState that fails the test on any write."""

    def mark_pending(self, *args: Any) -> None:
        raise AssertionError("the diff wrote ahead")

    def commit(self, *args: Any) -> None:
        raise AssertionError("the diff committed")

    def record_failures(self, *args: Any) -> None:
        raise AssertionError("the diff recorded failures")

    def clear_failures(self, *args: Any) -> None:
        raise AssertionError("the diff cleared failures")


def run_diff(store: MemoryState, spool: Spool, **kwargs: Any) -> list[DiffBatch]:
    try:
        return list(diff(spool, store, NAME, KEYS, **kwargs))
    finally:
        spool.close()


def test_new_users_are_sent_whole_and_are_added() -> None:
    (batch,) = run_diff(ReadOnly(), spooled(("a", {"plan": "gold", "ltv": 3})))
    (work,) = batch.works
    assert (work.row, work.uid, work.first_time, work.retried) == (1, "a", True, False)
    assert work.changed == {"plan": '"gold"', "ltv": "3"}
    assert json.loads(work.body) == {"plan": "gold", "ltv": 3}
    assert batch.pending == [("a", {"plan": None, "ltv": None})]
    assert (batch.unchanged, batch.duplicates, batch.clear, batch.last_row) == (0, [], [], 1)


def test_unchanged_users_are_skipped_and_changed_keys_alone_are_sent() -> None:
    store = ReadOnly()
    MemoryState.commit(store, NAME, [("a", {"plan": '"gold"', "ltv": "3"})])
    MemoryState.commit(store, NAME, [("b", {"plan": '"gold"', "ltv": "3"})])
    spool = spooled(("a", {"plan": "gold", "ltv": 3}), ("b", {"plan": "gold", "ltv": 4}))
    (batch,) = run_diff(store, spool)
    assert batch.unchanged == 1
    (work,) = batch.works
    assert (work.uid, work.changed, work.first_time) == ("b", {"ltv": "4"}, False)
    assert work.old_state == {"plan": '"gold"', "ltv": "3"}
    assert work.new_state == {"plan": '"gold"', "ltv": "4"}
    # Write-ahead: only the key being sent becomes unknown.
    assert batch.pending == [("b", {"plan": '"gold"', "ltv": None})]


def test_unknown_keys_are_sent_again_whatever_the_source_says() -> None:
    store = ReadOnly()
    MemoryState.mark_pending(store, NAME, [("a", {"plan": None, "ltv": "3"})])
    (batch,) = run_diff(store, spooled(("a", {"plan": "gold", "ltv": 3})))
    (work,) = batch.works
    assert work.changed == {"plan": '"gold"'}
    assert not work.first_time  # ltv has an acknowledged value


def test_a_user_whose_every_key_is_unknown_counts_as_added() -> None:
    store = ReadOnly()
    MemoryState.mark_pending(store, NAME, [("a", {"plan": None, "ltv": None})])
    (batch,) = run_diff(store, spooled(("a", {"plan": "gold", "ltv": 3})))
    assert batch.works[0].first_time


def test_full_sends_every_key_of_every_user() -> None:
    store = ReadOnly()
    MemoryState.commit(store, NAME, [("a", {"plan": '"gold"', "ltv": "3"})])
    (batch,) = run_diff(store, spooled(("a", {"plan": "gold", "ltv": 3})), full=True)
    (work,) = batch.works
    assert work.changed == {"plan": '"gold"', "ltv": "3"}
    assert batch.unchanged == 0


def test_failed_users_are_retried_or_their_failures_cleared() -> None:
    store = ReadOnly()
    MemoryState.commit(store, NAME, [("a", {"plan": '"gold"'}), ("b", {"plan": '"gold"'})])
    MemoryState.record_failures(store, NAME, [("a", "boom"), ("b", "boom")])
    spool = spooled(("a", {"plan": "silver"}), ("b", {"plan": "gold"}))
    (batch,) = run_diff(store, spool)
    (work,) = batch.works
    assert (work.uid, work.retried) == ("a", True)
    assert batch.clear == ["b"]  # unchanged now: its failure is to be forgotten
    assert batch.unchanged == 1


@pytest.mark.parametrize(
    ("rule", "invalid", "sent"),
    [
        ("reject_all", {1: "user UID appears 3 times in the source", 3: "", 4: ""}, []),
        ("first", {3: "duplicate of row 1", 4: "duplicate of row 1"}, [1]),
        ("last", {1: "superseded by row 4", 3: "superseded by row 4"}, [4]),
    ],
)
def test_duplicate_rules(rule: Any, invalid: dict[int, str], sent: list[int]) -> None:
    spool = spooled(
        ("a", {"plan": "1"}), ("b", {"plan": "2"}), ("a", {"plan": "3"}), ("a", {"plan": "4"})
    )
    (batch,) = run_diff(ReadOnly(), spool, on_duplicate=rule)
    assert {row for row, _, _ in batch.duplicates} == set(invalid)
    for row, uid, reason in batch.duplicates:
        assert uid == "a"
        assert reason == (invalid[row] or "user UID appears 3 times in the source")
    assert [w.row for w in batch.works] == sorted([2, *sent])


def test_every_row_lands_in_exactly_one_part_of_its_batch() -> None:
    store = ReadOnly()
    n = DIFF_CHUNK + 10
    MemoryState.commit(store, NAME, [(f"u{i}", {"plan": '"x"'}) for i in range(0, n, 2)])
    rows = [(f"u{i}", {"plan": "x"}) for i in range(n)] + [("u1", {"plan": "y"})]
    batches = run_diff(store, spooled(*rows))
    assert [b.last_row for b in batches] == [DIFF_CHUNK, n + 1]
    judged = sum(len(b.works) + len(b.duplicates) + b.unchanged for b in batches)
    assert judged == n + 1
    assert sum(len(b.duplicates) for b in batches) == 2  # u1, twice


# Through a whole Sync against the emulator.


def test_plan_leaves_failure_counts_alone(emulator: PersonalizeEmulator, client: Any) -> None:
    # more failed users than one diff batch, so that a plan would have flushed a "clear"
    sync = Sync(client, match_on="user_id", mapping={"plan": "plan"}, min_sample=10_000)
    emulator.set_faults(outage=True)
    assert sync.run(people(1500)).rejected == 1500
    emulator.clear_faults()
    failed = [
        u
        for u, s in sync.state.load(sync.name, [str(i) for i in range(1, 1501)]).items()
        if s.failed_attempts
    ]
    assert len(failed) == 1500
    # the users come back unchanged in the source: a plan must not clear their failures
    with sync.plan([{"user_id": u, "plan": None} for u in failed]) as plan:
        assert_accounted(plan, read=1500)
    after = sync.state.load(sync.name, failed)
    assert len(after) == 1500
    assert all(s.failed_attempts == 1 for s in after.values())
