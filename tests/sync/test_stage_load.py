"""The load stage alone (no network): UID matching, every problem of a row, partitions, the
pauses between slices and chunks, a failing source, and memory that stays flat."""

from __future__ import annotations

import enum
import json
import tracemalloc
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from contentstack_personalize.errors import ConfigurationError
from contentstack_personalize.sync import Field, Partition, _load
from contentstack_personalize.sync._control import RunControl
from contentstack_personalize.sync._fields import InvalidCell, compile_mapping
from contentstack_personalize.sync._load import Loader, row_problems
from contentstack_personalize.sync._spool import Spool
from contentstack_personalize.sync._tally import Tally
from contentstack_personalize.sync._uids import uid_from_value
from contentstack_personalize.sync._values import MISSING


class Tier(enum.Enum):
    GOLD = "gold-7"


class TestUidFromValue:
    @pytest.mark.parametrize(
        ("value", "uid"),
        [
            ("user-1", "user-1"),
            (42, "42"),
            (42.0, "42"),
            (Decimal("42"), "42"),
            (b"bytes-uid", "bytes-uid"),
            (Tier.GOLD, "gold-7"),
        ],
    )
    def test_usable_values(self, value: Any, uid: str) -> None:
        assert uid_from_value(value) == (uid, None)

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            (MISSING, "the match column is missing from this row"),
            (None, "the user UID is null"),
            (float("nan"), "the user UID is null"),
            (True, "the user UID is a boolean (True)"),
            (4.5, "the user UID 4.5 is not an integral number"),
            (2.0**60, "is a float above 2**53 and may have been rounded"),
            (Decimal("1.5"), "the user UID 1.5 is not an integral number"),
            (10**1100, "longer than 1024 characters"),
            (b"\xff", "bytes that are not UTF-8 text"),
            ([1], "the user UID is a list, not text or an integer"),
            ("", None),
        ],
    )
    def test_unusable_values_say_why(self, value: Any, reason: str | None) -> None:
        uid, why = uid_from_value(value)
        assert uid is None
        assert why is not None
        if reason is not None:
            assert reason in why


def loader(mapping: Any = None, **kwargs: Any) -> Loader:
    mapping = mapping or {"plan": "plan", "ltv": "ltv"}
    return Loader(name="s", match_on="user_id", fields=compile_mapping(mapping), **kwargs)


def load(rows: Any, ld: Loader | None = None, **kwargs: Any) -> tuple[Tally, list[Any], Any]:
    spool = Spool()
    tally = Tally(max_details=100)
    try:
        issues = (ld or loader()).load(rows, spool, tally, {}, **kwargs)
        kept = [row for batch in spool.valid_rows() for row in batch]
    finally:
        spool.close()
    return tally, kept, issues


def test_valid_rows_are_spooled_as_canonical_json() -> None:
    tally, kept, _ = load([{"user_id": 7, "plan": "gold", "ltv": 1.5}])
    assert tally.read == 1 and tally.invalid == 0
    ((row, uid, payload, n, first, last),) = kept
    assert (row, uid, n, first, last) == (1, "7", 1, 1, 1)
    assert json.loads(payload) == {"plan": '"gold"', "ltv": "1.5"}


def test_every_problem_of_a_row_is_reported_in_one_pass() -> None:
    ld = loader({"a": Field("a", type=int), "b": Field("b", type=int), "c": "c"})
    tally, kept, _ = load([{"user_id": "u", "a": "x", "b": "y", "c": 1}], ld)
    assert kept == []
    (issue,) = tally.invalid_rows
    assert issue.column == "a"
    assert "also column 'b'" in issue.reason


def test_many_problems_are_capped_in_the_reason() -> None:
    cells = [InvalidCell(f"c{i}", "bad") for i in range(9)]
    reason, column = row_problems(cells)
    assert column == "c0"
    assert reason.endswith("and 4 more columns)")


def test_bad_rows_and_bad_uids_are_invalid_and_counted_as_read() -> None:
    rows: list[Any] = [{"user_id": None}, ("a", "tuple"), {"user_id": "ok", "plan": 1, "ltv": 2}]
    tally, kept, _ = load(rows)
    assert (tally.read, tally.invalid, len(kept)) == (3, 2, 1)
    assert tally.invalid_rows[0].reason == "the user UID is null"
    assert "not a mapping" in tally.invalid_rows[1].reason


def test_an_invalid_occurrence_still_makes_its_uid_a_duplicate() -> None:
    ld = loader({"ltv": Field("ltv", type=int)})
    rows = [{"user_id": "a", "ltv": "nope"}, {"user_id": "a", "ltv": 2}]
    tally, kept, _ = load(rows, ld)
    assert tally.invalid == 1
    ((_, _, _, n, first, last),) = kept
    assert (n, first, last) == (2, 1, 2)


def test_a_column_missing_from_every_row_fails_with_a_hint() -> None:
    with pytest.raises(ConfigurationError, match="'plann': did you mean 'Plan'"):
        load([{"user_id": "a", "Plan": "x", "ltv": 1}], loader({"plann": "plan", "ltv": "ltv"}))


def test_rows_of_another_partition_are_invalid() -> None:
    control = RunControl(1.0, Partition(index=0, count=2, run_id="r"))
    rows = [{"user_id": f"u{i}", "plan": "x", "ltv": 1} for i in range(20)]
    tally, kept, _ = load(rows, control=control)
    assert tally.invalid + len(kept) == 20
    assert 0 < tally.invalid < 20
    assert all("belongs to partition 1 of 2" in i.reason for i in tally.invalid_rows)


def test_loading_pauses_at_every_chunk_with_the_counts_adding_up() -> None:
    spool = Spool()
    tally = Tally(max_details=10)
    rows = [{"user_id": f"u{i}", "plan": "x", "ltv": 1} for i in range(25)]
    rows[3] = {"user_id": None}
    steps = loader(chunk_size=10).steps(rows, spool, tally, {})
    seen = []
    try:
        for _ in steps:
            seen.append((tally.read, tally.invalid, spool.count()))
    finally:
        spool.close()
    # A chunk is 10 matched UIDs; the row without a UID is counted invalid at once.
    assert seen == [(11, 1, 10), (21, 1, 20)]


def test_loading_pauses_between_slices_and_stops_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_load, "LOAD_SLICE", -1.0)  # every slice check pauses
    spool = Spool()
    tally = Tally(max_details=10)
    control = RunControl(1.0)
    rows = ({"user_id": f"u{i}", "plan": "x", "ltv": 1} for i in range(1000))
    steps = loader().steps(rows, spool, tally, {}, control)
    try:
        next(steps)
        assert (tally.read, spool.count()) == (127, 127)  # the rows before the pause, spooled
        control.stop("SIGTERM")
        with pytest.raises(StopIteration):
            next(steps)
        assert (tally.read, spool.count()) == (127, 127)  # the row of the pause was not read
    finally:
        spool.close()


def test_a_source_that_fails_mid_chunk_leaves_consistent_counts() -> None:
    def rows() -> Iterator[dict[str, Any]]:
        for i in range(15):
            yield {"user_id": f"u{i}" if i != 2 else None, "plan": "x", "ltv": 1}
        raise OSError("connection to the warehouse lost")

    spool = Spool()
    tally = Tally(max_details=10)
    try:
        with pytest.raises(OSError, match="warehouse"):
            loader(chunk_size=10).load(rows(), spool, tally, {})
        # Every row read is either invalid or in the spool: nothing is lost or counted twice.
        assert (tally.read, tally.invalid, spool.count()) == (15, 1, 14)
    finally:
        spool.close()


def test_type_issues_are_returned() -> None:
    _, _, issues = load(
        [{"user_id": "a", "plan": 1, "ltv": 1}, {"user_id": "b", "plan": "x", "ltv": 2}]
    )
    (issue,) = issues
    assert (issue.attribute, issue.problem) == ("plan", "mixed")


def test_memory_stays_flat_whatever_the_source_size() -> None:
    def rows(n: int) -> Iterator[dict[str, Any]]:
        for i in range(n):
            yield {"user_id": f"user-{i:08d}", "plan": "gold" * 10, "ltv": i}

    def peak(n: int) -> int:
        spool = Spool()
        tracemalloc.start()
        try:
            loader(chunk_size=1000).load(rows(n), spool, Tally(max_details=10), {})
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            spool.close()

    small, large = peak(1_000), peak(10_000)
    # Ten times the rows (3 MB as a list) peak within a small margin of the same memory.
    assert large < small + 500_000, (small, large)
