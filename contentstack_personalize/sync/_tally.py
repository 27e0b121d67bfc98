"""Stage: accounting. Every row read gets exactly one outcome, counted here.

The buckets are ``invalid``, ``unchanged``, ``added``, ``changed``, ``rejected`` and
``not_sent``, and ``read`` is always their sum (:meth:`Tally.check` asserts it). A row the run
never got to (it stopped early, or failed) is not patched into a count: it is given a
``not_sent`` outcome with the reason, like any other row: the tally knows which rows the diff
handed over without an outcome yet and how far the diff got (:meth:`Tally.unsettled`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

from ..errors import APIStatusError, PersonalizeError
from ._diff import DiffBatch
from ._progress import NullProgress, Progress
from ._result import RowIssue
from ._spool import Spool

__all__ = ["CountMismatchError", "Tally"]


class CountMismatchError(AssertionError):
    """The counts of a run do not add up: a row got no outcome, or more than one (a bug)."""


class Tally:
    """The counts and issue details of one run or plan (at most ``max_details`` issues are
    spelled out; the rest set ``truncated``)."""

    def __init__(self, max_details: int) -> None:
        self.read = self.invalid = self.unchanged = self.added = self.changed = 0
        self.rejected = self.not_sent = self.retried = self.requests = 0
        self.invalid_rows: list[RowIssue] = []
        self.rejected_rows: list[RowIssue] = []
        self.truncated = False
        self._max = max_details
        self.progress: Progress = NullProgress()
        #: ``{row: uid}`` of the users the diff handed over that have no outcome yet.
        self.outstanding: dict[int, str] = {}
        #: The last spool row the diff judged (0: none yet).
        self.diffed_through = 0

    # -- one outcome per row -------------------------------------------------------------------

    def invalid_row(
        self, row: int, uid: str | None, reason: str, column: str | None = None
    ) -> None:
        self.invalid += 1
        self.progress.advance(1)
        if len(self.invalid_rows) < self._max:
            self.invalid_rows.append(
                RowIssue(kind="invalid", row=row, uid=uid, reason=reason, column=column)
            )
        else:
            self.truncated = True

    def diffed(self, batch: DiffBatch, column: str | None = None) -> None:
        """Account for what the diff judged in ``batch``: the duplicates are invalid (in
        ``column``), the unchanged rows unchanged, and the users to send outstanding until they
        get an outcome."""
        for row, uid, reason in batch.duplicates:
            self.invalid_row(row, uid, reason, column)
        self.unchanged += batch.unchanged
        if batch.unchanged:
            self.progress.advance(batch.unchanged)
        outstanding = self.outstanding
        for work in batch.works:
            outstanding[work.row] = work.uid
        self.diffed_through = batch.last_row

    def accepted_row(self, row: int, *, first_time: bool, retried: bool) -> None:
        """The edge acknowledged a user's request (or, in a plan, would be sent one)."""
        self.outstanding.pop(row, None)
        if first_time:
            self.added += 1
        else:
            self.changed += 1
        if retried:
            self.retried += 1
        self.progress.advance(1)

    def rejected_row(self, row: int, uid: str, error: PersonalizeError | None, reason: str) -> None:
        self.outstanding.pop(row, None)
        self.rejected += 1
        self.progress.advance(1)
        self._failure("rejected", row, uid, error, reason)

    def not_sent_row(self, row: int, uid: str, reason: str) -> None:
        self.outstanding.pop(row, None)
        self.not_sent += 1
        self.progress.advance(1)
        self._failure("not_sent", row, uid, None, reason)

    def not_sent_rest(self, rows: Iterable[tuple[int, str]], reason: str) -> None:
        """Give every row ``(row, uid)`` the run never got to a ``not_sent`` outcome."""
        for row, uid in rows:
            self.not_sent_row(row, uid, reason)

    def unsettled(self, spool: Spool) -> Iterator[tuple[int, str]]:
        """``(row, uid)`` of every valid row of ``spool`` without an outcome, in source order:
        the users handed over but not settled, then the rows the diff never reached."""
        yield from sorted(self.outstanding.items())
        yield from spool.rows_after(self.diffed_through)

    def _failure(
        self,
        kind: Literal["rejected", "not_sent"],
        row: int,
        uid: str,
        error: PersonalizeError | None,
        reason: str,
    ) -> None:
        if len(self.rejected_rows) < self._max:
            status = error.status_code if isinstance(error, APIStatusError) else None
            code = error.code if isinstance(error, APIStatusError) else None
            self.rejected_rows.append(
                RowIssue(kind=kind, row=row, uid=uid, reason=reason, status=status, code=code)
            )
        else:
            self.truncated = True

    # -- the invariant -------------------------------------------------------------------------

    @property
    def accounted(self) -> int:
        """Rows with an outcome."""
        return (
            self.invalid
            + self.unchanged
            + self.added
            + self.changed
            + self.rejected
            + self.not_sent
        )

    def check(self) -> None:
        """Raise :class:`CountMismatchError` unless every row read has exactly one outcome."""
        if self.read != self.accounted:
            raise CountMismatchError(
                f"the run's counts do not add up: read {self.read} rows but "
                f"{self.accounted} have an outcome ({self.counts()}); this is a bug, please "
                "report it"
            )

    def counts(self) -> dict[str, int]:
        return {
            "read": self.read,
            "invalid": self.invalid,
            "unchanged": self.unchanged,
            "added": self.added,
            "changed": self.changed,
            "rejected": self.rejected,
            "not_sent": self.not_sent,
            "retried": self.retried,
        }
