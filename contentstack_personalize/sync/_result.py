"""What a run reports (:class:`SyncResult`) and what a dry run shows (:class:`Plan`).

Every row read ends in exactly one bucket, so the counts always add up::

    read == invalid + unchanged + added + changed + rejected + not_sent

``retried`` overlaps the others: it counts users sent this run that had failed on an earlier
run. ``not_sent`` is non-zero only when a run stopped early (aborted).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import attrs

from . import _views

if TYPE_CHECKING:
    from ..debugger import Debugger

__all__ = ["Change", "Plan", "RowIssue", "RunStatus", "SyncResult"]

RunStatus = Literal["succeeded", "partially_failed", "failed", "aborted"]

COUNT_NAMES = (
    "read",
    "invalid",
    "unchanged",
    "added",
    "changed",
    "rejected",
    "not_sent",
    "retried",
)


@attrs.frozen(kw_only=True)
class RowIssue:
    """A row that was not synced, and why.

    ``kind`` is ``"invalid"`` (never sent: bad UID, duplicate, value that cannot be sent),
    ``"rejected"`` (the API refused it or kept failing; ``status`` and ``code`` hold its answer)
    or ``"not_sent"`` (the run stopped before it). ``row`` is the 1-based position of the row in
    the source (for a CSV file, the data row after the header).

    Example::

        for issue in result.invalid_rows:
            print(f"row {issue.row} ({issue.uid}), column {issue.column}: {issue.reason}")
    """

    kind: Literal["invalid", "rejected", "not_sent"]
    row: int | None
    uid: str | None
    reason: str
    column: str | None = None
    status: int | None = None
    code: str | None = None

    def describe(self) -> str:
        """One line, worded the same in a result, a plan and the logs."""
        where = f"row {self.row}" if self.row is not None else "row ?"
        who = f" uid={self.uid!r}" if self.uid is not None else ""
        col = f" column {self.column!r}:" if self.column else ""
        return f"{self.kind.replace('_', ' ')}: {where}{who}:{col} {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class Change:
    """One attribute of one user that a run would send (see :meth:`Plan.changes`).

    ``old`` is ``None`` for an attribute never sent; ``first_time`` is true when the state
    store knows nothing of the user yet.

    Example::

        with sync.plan(rows) as plan:
            new_users = {change.uid for change in plan.changes() if change.first_time}
    """

    uid: str
    attribute: str
    old: Any
    new: Any
    first_time: bool

    def __iter__(self) -> Iterator[Any]:
        return iter((self.uid, self.attribute, self.old, self.new))


def _fmt_time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@attrs.frozen(kw_only=True)
class SyncResult:
    """The outcome of one run.

    In Jupyter a result renders as a table (status badge, counts, timings, first issues);
    ``to_pandas()`` gives every kept issue as a DataFrame. ``debugger`` is the
    :class:`~contentstack_personalize.debugger.Debugger` that recorded the run's API calls,
    when the run had one.

    Example::

        result = sync.run(rows)
        print(result.summary())
        for issue in result.rejected_rows:
            print(issue.row, issue.uid, issue.status, issue.reason)
    """

    run_id: str
    sync_name: str
    status: RunStatus
    started_at: float
    finished_at: float
    read: int
    invalid: int
    unchanged: int
    added: int
    changed: int
    rejected: int
    not_sent: int
    retried: int
    requests: int
    invalid_rows: tuple[RowIssue, ...]
    rejected_rows: tuple[RowIssue, ...]
    issues_truncated: bool = False
    error: str | None = None
    warnings: tuple[str, ...] = ()
    extras: dict[str, Any] = attrs.field(factory=dict)
    debugger: Debugger | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def duration(self) -> float:
        """Seconds from start to end."""
        return self.finished_at - self.started_at

    @property
    def synced(self) -> int:
        """Users the edge acknowledged this run (``added + changed``)."""
        return self.added + self.changed

    @property
    def ok(self) -> bool:
        """Whether the run finished and the API refused nothing."""
        return self.status == "succeeded"

    def counts(self) -> dict[str, int]:
        """The counts as a dict (what run history stores)."""
        return {name: getattr(self, name) for name in COUNT_NAMES}

    def summary(self) -> str:
        """A readable multi-line report."""
        lines = [
            f"Sync {self.sync_name!r} run {self.run_id}: {self.status.replace('_', ' ')} "
            f"in {self.duration:.2f} s ({_fmt_time(self.started_at)})",
            f"  read       {self.read:>10,}",
            f"  invalid    {self.invalid:>10,}   (never sent; see invalid_rows)",
            f"  unchanged  {self.unchanged:>10,}   (no request needed)",
            f"  added      {self.added:>10,}   (users sent for the first time)",
            f"  changed    {self.changed:>10,}",
            f"  rejected   {self.rejected:>10,}   (the API refused or kept failing)",
        ]
        if self.not_sent:
            lines.append(f"  not sent   {self.not_sent:>10,}   (the run stopped first)")
        lines.append(f"  retried    {self.retried:>10,}   (failed on an earlier run)")
        lines.append(f"  requests   {self.requests:>10,}   (users sent; retries in the debugger)")
        if self.error:
            lines.append(f"  error: {self.error}")
        for warning in self.warnings:
            lines.append(f"  warning: {warning}")
        shown = list(self.invalid_rows[:5]) + list(self.rejected_rows[:5])
        if shown:
            lines.append("  first issues:")
            for issue in shown:
                lines.append(f"    {issue.describe()}")
        if self.issues_truncated:
            lines.append("  (more issues than kept in memory; the counts are exact)")
        if self.debugger is not None:
            lines.append(f"  {self.debugger.summary()}")
        for outcome in self.alerts:
            if not outcome.ok:
                lines.append(f"  alert not delivered: {outcome}")
        return "\n".join(lines)

    @property
    def type_issues(self) -> list[Any]:
        """Columns whose values do not fit what their attributes are used as, or that mix
        types (:class:`~contentstack_personalize.sync.TypeIssue`)."""
        return list(self.extras.get("type_issues", ()))

    @property
    def alerts(self) -> list[Any]:
        """What the alert rules did after this run
        (:class:`~contentstack_personalize.alerts.AlertOutcome`), if the sync has alerts."""
        return list(self.extras.get("alerts", ()))

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the whole result."""
        return {
            "run_id": self.run_id,
            "sync_name": self.sync_name,
            "status": self.status,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration": self.duration,
            **self.counts(),
            "requests": self.requests,
            "error": self.error,
            "warnings": list(self.warnings),
            "invalid_rows": [i.to_dict() for i in self.invalid_rows],
            "rejected_rows": [i.to_dict() for i in self.rejected_rows],
            "issues_truncated": self.issues_truncated,
            "type_issues": [i.to_dict() for i in self.type_issues],
            "alerts": [o.to_dict() for o in self.alerts],
            **({"debugger": self.debugger.stats()} if self.debugger is not None else {}),
        }

    def to_pandas(self) -> Any:
        """The row outcomes that did not sync (invalid, rejected, not sent) as a pandas
        DataFrame with columns ``kind, row, uid, reason, column, status, code`` (needs pandas:
        ``pip install 'contentstack-personalize[pandas]'``).

        Example: ``result.to_pandas().groupby("reason").size()``
        """
        return _views.result_to_pandas(self)

    def _repr_html_(self) -> str:
        return _views.result_html(self)


class Plan:
    """What a run would do, computed without sending anything.

    It has the same counts as a :class:`SyncResult` (``rejected`` and ``not_sent`` are 0), and
    iterates the per-user changes as ``(uid, attribute, old, new)``. Changes are kept on disk,
    not in memory, so a plan of a million users is cheap; call :meth:`close` (or use ``with``)
    to drop them early.

    Example::

        with sync.plan(rows) as plan:
            print(plan.summary())
            for uid, attribute, old, new in plan:
                print(uid, attribute, old, "->", new)
    """

    def __init__(
        self,
        *,
        sync_name: str,
        counts: dict[str, int],
        invalid_rows: tuple[RowIssue, ...],
        issues_truncated: bool,
        warnings: tuple[str, ...],
        changes_db: sqlite3.Connection,
        extras: dict[str, Any] | None = None,
    ) -> None:
        self.sync_name = sync_name
        self.read = counts["read"]
        self.invalid = counts["invalid"]
        self.unchanged = counts["unchanged"]
        self.added = counts["added"]
        self.changed = counts["changed"]
        self.retried = counts["retried"]
        self.rejected = 0
        self.not_sent = 0
        self.invalid_rows = invalid_rows
        self.issues_truncated = issues_truncated
        self.warnings = warnings
        self.extras = extras or {}
        self._db: sqlite3.Connection | None = changes_db

    @property
    def type_issues(self) -> list[Any]:
        """Columns whose values do not fit what their attributes are used as, or that mix
        types (:class:`~contentstack_personalize.sync.TypeIssue`)."""
        return list(self.extras.get("type_issues", ()))

    @property
    def requests(self) -> int:
        """How many requests a run would send now (one per added or changed user)."""
        return self.added + self.changed

    def counts(self) -> dict[str, int]:
        """The counts as a dict."""
        return {name: getattr(self, name) for name in COUNT_NAMES}

    def changes(self) -> Iterator[Change]:
        """Every attribute that would be sent, user by user, in source order."""
        if self._db is None:
            raise ValueError("this plan is closed; compute a new one with sync.plan(rows)")
        cursor = self._db.execute("SELECT uid, key, old, new, first FROM changes ORDER BY seq")
        for uid, key, old, new, first in cursor:
            yield Change(
                uid=uid,
                attribute=key,
                old=None if old is None else json.loads(old),
                new=json.loads(new),
                first_time=bool(first),
            )

    def __iter__(self) -> Iterator[Change]:
        return self.changes()

    def for_user(self, uid: str) -> list[Change]:
        """The changes of one user."""
        return [c for c in self.changes() if c.uid == uid]

    def to_pandas(self) -> Any:
        """The changes as a pandas DataFrame with columns ``uid, attribute, old, new,
        first_time`` (needs pandas: ``pip install 'contentstack-personalize[pandas]'``).

        Example: ``plan.to_pandas().groupby("attribute").size()``
        """
        return _views.plan_to_pandas(self)

    def _repr_html_(self) -> str:
        return _views.plan_html(self)

    def summary(self) -> str:
        """A readable report of what a run would do."""
        lines = [
            f"Plan for sync {self.sync_name!r} (nothing sent):",
            f"  read       {self.read:>10,}",
            f"  invalid    {self.invalid:>10,}",
            f"  unchanged  {self.unchanged:>10,}",
            f"  added      {self.added:>10,}   (would be sent for the first time)",
            f"  changed    {self.changed:>10,}",
            f"  retried    {self.retried:>10,}   (failed before; would be sent again)",
            f"  requests   {self.requests:>10,}",
        ]
        for warning in self.warnings:
            lines.append(f"  warning: {warning}")
        if self.invalid_rows:
            lines.append("  first issues:")
        for issue in self.invalid_rows[:5]:
            lines.append(f"    {issue.describe()}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (
            f"Plan(sync={self.sync_name!r}, read={self.read}, invalid={self.invalid}, "
            f"unchanged={self.unchanged}, added={self.added}, changed={self.changed})"
        )

    def close(self) -> None:
        """Drop the stored changes."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Plan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()
