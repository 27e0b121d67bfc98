"""What a run reports (:class:`SyncResult`) and what a dry run shows (:class:`Plan`), with
their notebook (HTML) and pandas views.

Every row read ends in exactly one bucket, so the counts always add up::

    read == invalid + unchanged + added + changed + rejected + not_sent

``retried`` overlaps the others: it counts users sent this run that had failed on an earlier
run. ``not_sent`` is non-zero only when a run stopped early (aborted).

Both are frozen values: nothing changes a result once it is built. Alerts evaluated after a run
are attached with :meth:`SyncResult.with_alerts`, which returns a new result.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from html import escape
from itertools import islice
from typing import Any, Literal, Protocol

import attrs

from .. import _html
from .._optional import require_pandas
from ..debugger import Debugger
from ..state import StateStore
from ._typecheck import TypeIssue

__all__ = [
    "AlertEvaluator",
    "AlertOutcomeProtocol",
    "Change",
    "Plan",
    "RowIssue",
    "RunStatus",
    "SyncResult",
]

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


class AlertOutcomeProtocol(Protocol):
    """What a result needs of one alert outcome (``result.alerts``).

    :class:`contentstack_personalize.alerts.AlertOutcome` is the implementation; alerts are
    evaluated above the engine, so the result names only this shape.
    """

    @property
    def sync_name(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def sink(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def error(self) -> str | None: ...
    def to_dict(self) -> dict[str, Any]: ...


class AlertEvaluator(Protocol):
    """What a sync needs of the alerts it is given (``Sync(alerts=...)``): judge a finished run
    and say what was delivered, never raising for a failing sink.

    :class:`contentstack_personalize.alerts.Alerts` is the implementation; the engine names only
    this shape, so it does not import the alerts that sit above it.
    """

    def evaluate(self, result: SyncResult, store: StateStore) -> Sequence[AlertOutcomeProtocol]: ...
    async def aevaluate(
        self, result: SyncResult, store: StateStore
    ) -> Sequence[AlertOutcomeProtocol]: ...


def _fmt_time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


_EXTRAS_KEYS = ("type_issues", "alerts", "partitions")


def _deprecated_extras(owner: str, instead: str) -> None:
    warnings.warn(
        f"{owner}.extras is deprecated; use {instead}",
        DeprecationWarning,
        stacklevel=3,
    )


def _check_extras(extras: Mapping[str, Any], allowed: Sequence[str]) -> None:
    unknown = sorted(set(extras) - set(allowed))
    if unknown:
        raise TypeError(
            f"unknown extras {unknown}: a result takes {', '.join(allowed)} as keyword arguments"
        )


@attrs.frozen(kw_only=True, init=False)
class SyncResult:
    """The outcome of one run.

    In Jupyter a result renders as a table (status badge, counts, timings, first issues);
    ``to_pandas()`` gives every kept issue as a DataFrame. ``debugger`` is the
    :class:`~contentstack_personalize.debugger.Debugger` that recorded the run's API calls,
    when the run had one.

    ``error`` says in words why a run failed or stopped (what run history stores);
    ``exception`` is the exception itself when there was one (not persisted, not part of the
    result's value or repr, and not carried when a result is pickled to another process).
    ``type_issues`` lists columns whose values do not fit their attributes, ``alerts`` what the
    alert rules did after the run, and ``partitions`` the per-partition results of a
    distributed run.

    A result is frozen; :meth:`with_alerts` returns a copy with the alert outcomes attached.

    Example::

        result = sync.run(rows)
        print(result.summary())
        for issue in result.rejected_rows:
            print(issue.row, issue.uid, issue.status, issue.reason)
        if result.exception is not None:
            raise result.exception
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
    type_issues: tuple[TypeIssue, ...] = ()
    alerts: tuple[AlertOutcomeProtocol, ...] = ()
    partitions: tuple[SyncResult, ...] = attrs.field(default=(), repr=False)
    exception: BaseException | None = attrs.field(default=None, eq=False, repr=False)
    debugger: Debugger | None = attrs.field(default=None, eq=False, repr=False)

    def __init__(
        self,
        *,
        run_id: str,
        sync_name: str,
        status: RunStatus,
        started_at: float,
        finished_at: float,
        read: int,
        invalid: int,
        unchanged: int,
        added: int,
        changed: int,
        rejected: int,
        not_sent: int,
        retried: int,
        requests: int,
        invalid_rows: Sequence[RowIssue],
        rejected_rows: Sequence[RowIssue],
        issues_truncated: bool = False,
        error: str | None = None,
        warnings: Sequence[str] = (),
        type_issues: Iterable[TypeIssue] = (),
        alerts: Iterable[AlertOutcomeProtocol] = (),
        partitions: Iterable[SyncResult] = (),
        exception: BaseException | None = None,
        debugger: Debugger | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> None:
        if extras:  # the 0.1 way to pass type issues, alerts and partitions
            _check_extras(extras, _EXTRAS_KEYS)
            type_issues = (*type_issues, *extras.get("type_issues", ()))
            alerts = (*alerts, *extras.get("alerts", ()))
            partitions = (*partitions, *extras.get("partitions", ()))
        if error is None and exception is not None:
            error = f"{type(exception).__name__}: {exception}"
        self.__attrs_init__(
            run_id=run_id,
            sync_name=sync_name,
            status=status,
            started_at=started_at,
            finished_at=finished_at,
            read=read,
            invalid=invalid,
            unchanged=unchanged,
            added=added,
            changed=changed,
            rejected=rejected,
            not_sent=not_sent,
            retried=retried,
            requests=requests,
            invalid_rows=tuple(invalid_rows),
            rejected_rows=tuple(rejected_rows),
            issues_truncated=issues_truncated,
            error=error,
            warnings=tuple(warnings),
            type_issues=tuple(type_issues),
            alerts=tuple(alerts),
            partitions=tuple(_partition(p) for p in partitions),
            exception=exception,
            debugger=debugger,
        )

    def with_alerts(self, outcomes: Iterable[AlertOutcomeProtocol]) -> SyncResult:
        """This result with ``outcomes`` as its alert outcomes (a new result; this one is
        unchanged).

        Example: ``result = result.with_alerts(alerts.evaluate(result, sync.state))``
        """
        return attrs.evolve(self, alerts=tuple(outcomes))

    @property
    def extras(self) -> dict[str, Any]:
        """Deprecated: use :attr:`type_issues`, :attr:`alerts` and :attr:`partitions`.

        A new dict on every access, built from those fields (``partitions`` as dicts of
        ``run_id``, ``status`` and the counts, as in 0.1).
        """
        _deprecated_extras("SyncResult", "result.type_issues, result.alerts, result.partitions")
        return {
            "type_issues": list(self.type_issues),
            "alerts": list(self.alerts),
            "partitions": [
                {"run_id": p.run_id, "status": p.status, **p.counts()} for p in self.partitions
            ],
        }

    def __getstate__(self) -> dict[str, Any]:
        # Pickled to another process (a distributed run's worker): the error text travels, the
        # exception object (which may not unpickle) and the debugger (a live object) do not.
        state = {a.name: getattr(self, a.name) for a in attrs.fields(SyncResult)}
        state["exception"] = None
        state["debugger"] = None
        return state

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        for a in attrs.fields(SyncResult):
            object.__setattr__(self, a.name, state.get(a.name, a.default))

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
        pd = require_pandas("SyncResult.to_pandas()")
        records = [i.to_dict() for i in (*self.invalid_rows, *self.rejected_rows)]
        columns = ["kind", "row", "uid", "reason", "column", "status", "code"]
        return pd.DataFrame.from_records(records, columns=columns)

    def _repr_html_(self) -> str:
        return result_html(self)


def _partition(value: SyncResult | Mapping[str, Any]) -> SyncResult:
    if isinstance(value, SyncResult):
        return value
    raise TypeError(
        f"a partition is a SyncResult, not {type(value).__name__}; "
        "combine_results() builds them from the partitions' results"
    )


class _ChangeTable:
    """The plan's changes, kept in a SQLite table until the plan is closed."""

    __slots__ = ("_db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db: sqlite3.Connection | None = db

    def rows(self) -> Iterator[Change]:
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

    def count(self) -> int | None:
        """How many changes are stored, counted in SQLite; ``None`` once closed."""
        if self._db is None:
            return None
        try:
            (total,) = self._db.execute("SELECT COUNT(*) FROM changes").fetchone()
        except (sqlite3.Error, TypeError, ValueError):  # closed meanwhile: no total
            return None
        return int(total)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


@attrs.frozen(init=False, eq=False, repr=False)
class Plan:
    """What a run would do, computed without sending anything.

    It has the same counts as a :class:`SyncResult` (``rejected`` and ``not_sent`` are 0), and
    iterates the per-user changes as ``(uid, attribute, old, new)``. Changes are kept on disk,
    not in memory, so a plan of a million users is cheap; call :meth:`close` (or use ``with``)
    to drop them early. A plan is frozen: its counts and issues never change.

    Example::

        with sync.plan(rows) as plan:
            print(plan.summary())
            for uid, attribute, old, new in plan:
                print(uid, attribute, old, "->", new)
    """

    sync_name: str
    read: int
    invalid: int
    unchanged: int
    added: int
    changed: int
    retried: int
    invalid_rows: tuple[RowIssue, ...]
    issues_truncated: bool
    warnings: tuple[str, ...]
    type_issues: tuple[TypeIssue, ...]
    _changes: _ChangeTable

    def __init__(
        self,
        *,
        sync_name: str,
        counts: Mapping[str, int],
        invalid_rows: Sequence[RowIssue],
        issues_truncated: bool,
        warnings: Sequence[str],
        changes_db: sqlite3.Connection,
        type_issues: Iterable[TypeIssue] = (),
        extras: Mapping[str, Any] | None = None,
    ) -> None:
        if extras:  # the 0.1 way to pass type issues
            _check_extras(extras, ("type_issues",))
            type_issues = (*type_issues, *extras.get("type_issues", ()))
        self.__attrs_init__(
            sync_name=sync_name,
            read=counts["read"],
            invalid=counts["invalid"],
            unchanged=counts["unchanged"],
            added=counts["added"],
            changed=counts["changed"],
            retried=counts["retried"],
            invalid_rows=tuple(invalid_rows),
            issues_truncated=issues_truncated,
            warnings=tuple(warnings),
            type_issues=tuple(type_issues),
            changes=_ChangeTable(changes_db),
        )

    @property
    def rejected(self) -> int:
        """Always 0: a plan sends nothing."""
        return 0

    @property
    def not_sent(self) -> int:
        """Always 0: a plan sends nothing."""
        return 0

    @property
    def extras(self) -> dict[str, Any]:
        """Deprecated: use :attr:`type_issues`. A new dict on every access."""
        _deprecated_extras("Plan", "plan.type_issues")
        return {"type_issues": list(self.type_issues)}

    @property
    def requests(self) -> int:
        """How many requests a run would send now (one per added or changed user)."""
        return self.added + self.changed

    def counts(self) -> dict[str, int]:
        """The counts as a dict."""
        return {name: getattr(self, name) for name in COUNT_NAMES}

    def changes(self) -> Iterator[Change]:
        """Every attribute that would be sent, user by user, in source order."""
        return self._changes.rows()

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
        pd = require_pandas("Plan.to_pandas()")
        columns = ["uid", "attribute", "old", "new", "first_time"]
        records = [(c.uid, c.attribute, c.old, c.new, c.first_time) for c in self.changes()]
        return pd.DataFrame.from_records(records, columns=columns)

    def _repr_html_(self) -> str:
        return plan_html(self)

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
        self._changes.close()

    def __enter__(self) -> Plan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()


# -- notebook views ------------------------------------------------------------------------------


def _issues_table(issues: Sequence[RowIssue], total: int, title: str, limit: int) -> str:
    if not issues:
        return ""
    shown = issues[:limit]
    rows = [(i.kind, i.row, i.uid, i.column, i.status, i.code, i.reason) for i in shown]
    more = total - len(shown)
    note = f" (first {len(shown)} of {total:,})" if more > 0 else ""
    return (
        f"<div style='font-weight:600;margin-top:6px'>{escape(title)}{escape(note)}</div>"
        + _html.table(["kind", "row", "uid", "column", "status", "code", "reason"], rows)
    )


def result_html(result: SyncResult, *, max_rows: int = _html.MAX_ROWS) -> str:
    """The notebook view of a run: status badge, counts, timings, first issues, warnings.

    Example: ``IPython.display.HTML(result_html(result))`` (Jupyter calls it for you).
    """
    counts = [
        ("read", result.read, "rows in the source"),
        ("invalid", result.invalid, "never sent (bad UID, duplicate, unsendable value)"),
        ("unchanged", result.unchanged, "no request needed"),
        ("added", result.added, "users sent for the first time"),
        ("changed", result.changed, "users whose attributes changed"),
        ("rejected", result.rejected, "the API refused or kept failing"),
        ("not_sent", result.not_sent, "the run stopped first"),
        ("retried", result.retried, "had failed on an earlier run"),
        ("requests", result.requests, "PATCH /user-attributes sent"),
    ]
    parts = [
        f"<div style='margin-bottom:4px'><b>Sync {escape(repr(result.sync_name))}</b> "
        f"run <code>{escape(result.run_id)}</code> "
        f"{_html.badge(result.status.replace('_', ' '), result.status)}</div>",
        f"<div style='color:#57606a'>started {escape(_fmt_time(result.started_at))}, "
        f"finished {escape(_fmt_time(result.finished_at))}, took {result.duration:.2f} s</div>",
    ]
    if result.error:
        parts.append(f"<div style='color:#cf222e'><b>Error:</b> {escape(result.error)}</div>")
    parts.append(_html.counts_table(counts))
    parts.append(_html.warnings(result.warnings))
    parts.append(
        _issues_table(result.invalid_rows, result.invalid, "Invalid rows (never sent)", max_rows)
    )
    parts.append(
        _issues_table(
            result.rejected_rows,
            result.rejected + result.not_sent,
            "Rejected and unsent rows",
            max_rows,
        )
    )
    if result.issues_truncated:
        parts.append(
            "<div style='color:#57606a'>More issues than were kept in memory; "
            "the counts are exact.</div>"
        )
    if result.debugger is not None:
        parts.append(f"<div style='color:#57606a'>{escape(result.debugger.summary())}</div>")
    return _html.wrap("".join(parts))


def plan_html(plan: Plan, *, max_rows: int = _html.MAX_ROWS) -> str:
    """The notebook view of a plan: counts, warnings, first invalid rows and first changes.

    Example: ``IPython.display.HTML(plan_html(plan))`` (Jupyter calls it for you).
    """
    counts = [
        ("read", plan.read, "rows in the source"),
        ("invalid", plan.invalid, "would not be sent"),
        ("unchanged", plan.unchanged, "no request needed"),
        ("added", plan.added, "would be sent for the first time"),
        ("changed", plan.changed, "users whose attributes changed"),
        ("retried", plan.retried, "failed before; would be sent again"),
        ("requests", plan.requests, "requests a run would send now"),
    ]
    parts = [
        f"<div style='margin-bottom:4px'><b>Plan for sync {escape(repr(plan.sync_name))}</b> "
        f"{_html.badge('nothing sent', 'plan')}</div>",
        _html.counts_table(counts),
        _html.warnings(plan.warnings),
        _issues_table(
            plan.invalid_rows, plan.invalid, "Invalid rows (would not be sent)", max_rows
        ),
    ]
    try:
        changes = list(islice(plan.changes(), max_rows + 1))
    except ValueError:  # closed plan
        parts.append("<div style='color:#57606a'>The plan is closed; its changes are gone.</div>")
    else:
        if changes:
            more = len(changes) > max_rows
            rows = [
                (c.uid, c.attribute, "" if c.first_time and c.old is None else c.old, c.new)
                for c in changes[:max_rows]
            ]
            total = plan._changes.count() if more else len(changes)
            if not more:
                note = f" ({total:,})"
            elif total is None:
                note = f" (first {max_rows})"
            else:
                note = f" (first {max_rows} of {total:,})"
            parts.append(
                f"<div style='font-weight:600;margin-top:6px'>Changes{escape(note)}</div>"
                + _html.table(["uid", "attribute", "old", "new"], rows)
            )
    return _html.wrap("".join(parts))
