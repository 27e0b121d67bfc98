"""The accounting stage alone: every row gets exactly one outcome, the invariant
``read == invalid + unchanged + added + changed + rejected + not_sent`` is checked, and rows a
run never got to get a not_sent outcome with a reason instead of a patched count."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import pytest

from contentstack_personalize import PersonalizeClient
from contentstack_personalize.errors import APIStatusError
from contentstack_personalize.state import MemoryState
from contentstack_personalize.sync import SendOutcome, Sync
from contentstack_personalize.sync._diff import DiffBatch, Work
from contentstack_personalize.sync._spool import Spool
from contentstack_personalize.sync._tally import CountMismatchError, Tally


def work(row: int, uid: str) -> Work:
    return Work(
        row=row,
        uid=uid,
        body=b"{}",
        changed={"k": '"v"'},
        new_state={"k": '"v"'},
        old_state={},
        first_time=True,
        retried=False,
    )


def test_each_outcome_lands_in_its_bucket_and_the_counts_add_up() -> None:
    tally = Tally(max_details=10)
    tally.read = 6
    tally.invalid_row(1, None, "bad uid", "user_id")
    tally.diffed(
        DiffBatch([work(3, "c"), work(4, "d"), work(5, "e")], [(2, "b", "dup")], 1, [], 6),
        "user_id",
    )
    assert tally.outstanding == {3: "c", 4: "d", 5: "e"}
    tally.accepted_row(3, first_time=True, retried=True)
    error = APIStatusError("no", status_code=422, code="bad.value")
    tally.rejected_row(4, "d", error, "no")
    tally.not_sent_row(5, "e", "not sent: stopped")
    assert tally.outstanding == {}
    tally.check()
    assert tally.counts() == {
        "read": 6,
        "invalid": 2,
        "unchanged": 1,
        "added": 1,
        "changed": 0,
        "rejected": 1,
        "not_sent": 1,
        "retried": 1,
    }
    assert [(i.kind, i.row, i.column) for i in tally.invalid_rows] == [
        ("invalid", 1, "user_id"),
        ("invalid", 2, "user_id"),
    ]
    rejected, not_sent = tally.rejected_rows
    assert (rejected.kind, rejected.status, rejected.code) == ("rejected", 422, "bad.value")
    assert (not_sent.kind, not_sent.reason) == ("not_sent", "not sent: stopped")


@pytest.mark.parametrize("read", [2, 4])
def test_counts_that_do_not_add_up_raise(read: int) -> None:
    tally = Tally(max_details=10)
    tally.read = read
    tally.invalid_row(1, None, "bad")
    tally.unchanged += 2
    with pytest.raises(CountMismatchError, match=f"read {read} rows but 3 have an outcome"):
        tally.check()


def test_rows_a_run_never_got_to_get_a_not_sent_outcome_each() -> None:
    spool = Spool()
    try:
        spool.add([(i, f"u{i}", "{}") for i in range(1, 7)], [(f"u{i}", i) for i in range(1, 7)])
        tally = Tally(max_details=10)
        tally.read = 6
        # The diff judged rows 1-3: one unchanged, two handed over; one of those settled.
        tally.diffed(DiffBatch([work(2, "u2"), work(3, "u3")], [], 1, [], 3))
        tally.accepted_row(2, first_time=True, retried=False)
        tally.not_sent_rest(tally.unsettled(spool), "not sent: the run stopped (SIGTERM)")
        tally.check()
        assert tally.not_sent == 4
        assert [(i.row, i.uid) for i in tally.rejected_rows] == [
            (3, "u3"),
            (4, "u4"),
            (5, "u5"),
            (6, "u6"),
        ]
        assert {i.reason for i in tally.rejected_rows} == {"not sent: the run stopped (SIGTERM)"}
    finally:
        spool.close()


def test_details_are_capped_but_counts_are_not() -> None:
    tally = Tally(max_details=2)
    tally.read = 3
    for row in (1, 2, 3):
        tally.invalid_row(row, None, "bad")
    assert tally.invalid == 3 and len(tally.invalid_rows) == 2 and tally.truncated
    tally.check()


# -- the tally in a run (a scripted sender, no network) -----------------------------------------


class StopAfter:
    """Acknowledges ``n`` users, then stops the sync (like SIGTERM) or crashes."""

    def __init__(self, n: int, crash: bool = False) -> None:
        self.n, self.crash = n, crash
        self.sync: Any = None

    async def send(self, user_uid: str, body: bytes) -> SendOutcome:
        await asyncio.sleep(0)
        if self.n == 0:
            if self.crash:
                raise RuntimeError("sender bug")
            self.sync.stop("stopped by the test")
        self.n -= 1
        return SendOutcome(ok=True, attempts=1)

    async def aclose(self) -> None:
        pass


def run_with(sender: StopAfter, rows: list[dict[str, Any]], store: MemoryState) -> Any:
    with PersonalizeClient("p1", read_env=False) as client:
        sync = Sync(
            client,
            match_on="id",
            mapping={"plan": "plan"},
            state=store,
            sender=sender,
            concurrency=2,
            check_attributes=False,
            type_check="off",
            raise_on_abort=False,
        )
        sender.sync = sync
        return sync.run(rows)


ROWS = [{"id": f"u{i}", "plan": "gold"} for i in range(2000)] + [{"id": None, "plan": "x"}]


def test_a_stopped_run_gives_every_row_left_a_not_sent_issue() -> None:
    result = run_with(StopAfter(10), ROWS, MemoryState())
    assert result.status == "aborted"
    assert result.read == 2001 and result.invalid == 1
    assert result.added >= 10 and result.not_sent > 1000
    assert (
        result.read
        == sum(getattr(result, k) for k in ("invalid", "unchanged", "added", "changed", "rejected"))
        + result.not_sent
    )
    not_sent = [i for i in result.rejected_rows if i.kind == "not_sent"]
    assert len(not_sent) == result.not_sent
    assert {i.reason for i in not_sent} == {"not sent: the run stopped (stopped by the test)"}
    assert len({i.row for i in not_sent}) == result.not_sent  # one issue per row


def test_a_crashed_run_records_counts_that_add_up() -> None:
    store = MemoryState()
    with pytest.raises(RuntimeError, match="sender bug"):
        run_with(StopAfter(5, crash=True), ROWS, store)
    (record,) = store.runs("p1/id")
    counts = record.counts
    assert record.status == "failed"
    assert counts["read"] == 2001
    assert counts["read"] == sum(
        counts[k] for k in ("invalid", "unchanged", "added", "changed", "rejected", "not_sent")
    )


def test_counts_that_do_not_add_up_fail_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # A bug that loses the unchanged rows: the run says so instead of reporting wrong counts.
    store = MemoryState()
    run_with(StopAfter(10_000), ROWS[:5], store)
    diffed = Tally.diffed

    def losing(self: Tally, batch: DiffBatch, column: str | None = None) -> None:
        diffed(self, attrs.evolve(batch, unchanged=0), column)

    monkeypatch.setattr(Tally, "diffed", losing)
    with pytest.raises(CountMismatchError, match="read 5 rows but 0 have an outcome"):
        run_with(StopAfter(10_000), ROWS[:5], store)
    assert store.runs("p1/id")[0].status == "failed"
