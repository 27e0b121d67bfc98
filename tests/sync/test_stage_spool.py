"""The spool stage alone: valid rows in source order and in bounded batches, duplicates counted
over valid and invalid occurrences, its file in spool_dir and gone after close."""

from __future__ import annotations

import os
from pathlib import Path

from contentstack_personalize.sync._spool import DIFF_CHUNK, Spool


def test_rows_come_back_in_source_order_with_their_uid_counts() -> None:
    spool = Spool()
    try:
        spool.add([(3, "b", '{"k":"1"}'), (1, "a", '{"k":"2"}')], [("b", 3), ("a", 1)])
        # An invalid occurrence of "a" (row 5) is counted but not kept.
        spool.add([(7, "a", '{"k":"3"}')], [("a", 5), ("a", 7)])
        (batch,) = list(spool.valid_rows())
        assert batch == [
            (1, "a", '{"k":"2"}', 3, 1, 7),
            (3, "b", '{"k":"1"}', 1, 3, 3),
            (7, "a", '{"k":"3"}', 3, 1, 7),
        ]
        assert spool.count() == 3
    finally:
        spool.close()


def test_rows_are_read_back_in_bounded_batches() -> None:
    spool = Spool()
    try:
        n = DIFF_CHUNK * 2 + 7
        spool.add(
            [(i, f"u{i}", "{}") for i in range(1, n + 1)], [(f"u{i}", i) for i in range(1, n + 1)]
        )
        sizes = [len(batch) for batch in spool.valid_rows()]
        assert sizes == [DIFF_CHUNK, DIFF_CHUNK, 7]
    finally:
        spool.close()


def test_rows_after_lists_what_the_diff_did_not_reach() -> None:
    spool = Spool()
    try:
        spool.add([(1, "a", "{}"), (4, "b", "{}"), (9, "c", "{}")], [("a", 1), ("b", 4), ("c", 9)])
        assert list(spool.rows_after(0)) == [(1, "a"), (4, "b"), (9, "c")]
        assert list(spool.rows_after(4)) == [(9, "c")]
        assert list(spool.rows_after(9)) == []
    finally:
        spool.close()


def test_spool_dir_holds_the_file_until_close(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path))
    assert spool.path is not None
    assert os.path.dirname(spool.path) == str(tmp_path)
    spool.add([(1, "a", "{}")], [("a", 1)])
    assert os.listdir(tmp_path) == [os.path.basename(spool.path)]
    spool.close()
    assert os.listdir(tmp_path) == []


def test_a_plans_changes_are_kept_for_it_to_read() -> None:
    spool = Spool()
    try:
        spool.add_changes([("a", "k", None, '"x"', 1), ("b", "k", '"y"', '"z"', 0)])
        spool.add_changes([])
        rows = spool.db.execute("SELECT uid, key, old, new, first FROM changes ORDER BY seq")
        assert rows.fetchall() == [("a", "k", None, '"x"', 1), ("b", "k", '"y"', '"z"', 0)]
    finally:
        spool.close()
