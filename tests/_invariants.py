"""Invariants every test of a run or a plan can check, written once.

``assert_accounted(result)`` checks the promise of docs/concepts.md ("The counts"): every row
read lands in exactly one bucket, the kept issues match the counts, and ``retried`` only
overlaps the buckets of users that were sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["BUCKETS", "assert_accounted"]

#: The buckets a row read ends in, exactly one each.
BUCKETS = ("invalid", "unchanged", "added", "changed", "rejected", "not_sent")


def _counts(result: Any) -> dict[str, int]:
    if isinstance(result, Mapping):
        source: Mapping[str, Any] = result
    else:
        source = {name: getattr(result, name) for name in ("read", "retried", *BUCKETS)}
    counts = {name: source[name] for name in ("read", "retried", *BUCKETS)}
    for name, value in counts.items():
        assert type(value) is int and value >= 0, f"{name} = {value!r}: {counts}"
    return counts


def assert_accounted(result: Any, *, read: int | None = None) -> None:
    """Assert that ``result`` accounts for every row it read.

    ``result`` is a :class:`~contentstack_personalize.sync.SyncResult`, a
    :class:`~contentstack_personalize.sync.Plan`, or a mapping of counts (``result.counts()``,
    ``result.to_dict()`` read back from JSON, a run record's ``counts``): for a mapping only
    the counts are checked.

    - ``read == invalid + unchanged + added + changed + rejected + not_sent``, each count >= 0;
    - ``retried <= added + changed + rejected`` (it counts users sent this run);
    - ``len(invalid_rows) == invalid``, one ``"rejected"`` issue per rejected row and one
      ``"not_sent"`` issue per row not sent (with the reason it was not), unless
      ``issues_truncated`` (then no more than the counts);
    - every issue has a reason and the kind of its list, and no row has two issues;
    - a plan neither rejects nor leaves anything unsent.

    ``read=`` also checks how many rows were read.
    """
    counts = _counts(result)
    buckets = sum(counts[name] for name in BUCKETS)
    assert counts["read"] == buckets, f"read != sum of the buckets: {counts}"
    sent = counts["added"] + counts["changed"] + counts["rejected"]
    assert counts["retried"] <= sent, f"retried > added + changed + rejected: {counts}"
    if read is not None:
        assert counts["read"] == read, f"read {counts['read']} rows, not {read}: {counts}"
    if isinstance(result, Mapping):
        return

    truncated = bool(result.issues_truncated)
    invalid_rows = tuple(result.invalid_rows)
    failed_rows = tuple(getattr(result, "rejected_rows", ()))
    if not hasattr(result, "rejected_rows"):  # a Plan: nothing is sent
        assert counts["rejected"] == counts["not_sent"] == 0, counts
    for issue in invalid_rows:
        assert issue.kind == "invalid", issue
    for issue in failed_rows:
        assert issue.kind in ("rejected", "not_sent"), issue
    for issue in (*invalid_rows, *failed_rows):
        assert isinstance(issue.reason, str) and issue.reason.strip(), issue
        if issue.row is not None:
            assert 1 <= issue.row <= counts["read"], (issue, counts)
    rows = [i.row for i in (*invalid_rows, *failed_rows) if i.row is not None]
    assert len(rows) == len(set(rows)), f"a row has two issues: {sorted(rows)}"

    rejected = sum(1 for i in failed_rows if i.kind == "rejected")
    not_sent = sum(1 for i in failed_rows if i.kind == "not_sent")
    assert len(invalid_rows) <= counts["invalid"], (len(invalid_rows), counts)
    assert rejected <= counts["rejected"], (rejected, counts)
    assert not_sent <= counts["not_sent"], (not_sent, counts)
    if not truncated:
        assert len(invalid_rows) == counts["invalid"], (len(invalid_rows), counts)
        assert rejected == counts["rejected"], (rejected, counts)
        assert not_sent == counts["not_sent"], (not_sent, counts)
