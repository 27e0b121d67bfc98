"""Notebook and data views of what a sync reports: HTML for Jupyter and pandas DataFrames.

Owns the rendering behind ``SyncResult._repr_html_``, ``Plan._repr_html_`` and
``Debugger._repr_html_``, and the lazy pandas import every ``to_pandas()`` shares. Pure: each
function takes an object and returns a string or a DataFrame. Every value shown comes from user
data (UIDs, reasons, attribute values), so everything is escaped; the HTML uses inline styles
only, no external CSS or JavaScript, so it renders the same in Jupyter, VS Code and exported
notebooks.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Sequence
from html import escape
from itertools import islice
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..debugger import Debugger
    from ._result import Plan, RowIssue, SyncResult

__all__ = [
    "debugger_html",
    "plan_html",
    "plan_to_pandas",
    "require_pandas",
    "result_html",
    "result_to_pandas",
]

#: Rows shown in each table of a notebook view.
MAX_ROWS = 20
#: Characters of a value shown in a cell before it is cut.
MAX_CELL = 200

_BADGE = {
    "succeeded": "#1a7f37",
    "partially_failed": "#9a6700",
    "failed": "#cf222e",
    "aborted": "#cf222e",
    "plan": "#0969da",
}
_TABLE = "border-collapse:collapse;margin:4px 0 10px 0;font-size:12px"
_CELL = "border:1px solid #d0d7de;padding:2px 8px;text-align:left;vertical-align:top"
_HEAD = _CELL + ";background:#f6f8fa;font-weight:600"


def require_pandas(what: str) -> Any:
    """Import pandas, or raise an ImportError that names the extra to install.

    Example: ``pd = require_pandas("SyncResult.to_pandas()")``
    """
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(
            f"{what} needs pandas, which is not installed: "
            "pip install 'contentstack-personalize[pandas]'"
        ) from exc
    return pd


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else _json(value)
    if len(text) > MAX_CELL:
        text = text[: MAX_CELL - 1] + "\u2026"
    return escape(text)


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _badge(label: str, key: str) -> str:
    color = _BADGE.get(key, "#57606a")
    return (
        f'<span style="background:{color};color:#fff;border-radius:10px;padding:1px 8px;'
        f'font-size:12px;font-weight:600">{escape(label)}</span>'
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f'<th style="{_HEAD}">{escape(h)}</th>' for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_CELL}">{_cell(value)}</td>' for value in row) + "</tr>"
        for row in rows
    )
    return f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _issues_table(issues: Sequence[RowIssue], total: int, title: str, limit: int) -> str:
    if not issues:
        return ""
    shown = issues[:limit]
    rows = [(i.kind, i.row, i.uid, i.column, i.status, i.code, i.reason) for i in shown]
    more = total - len(shown)
    note = f" (first {len(shown)} of {total:,})" if more > 0 else ""
    return (
        f"<div style='font-weight:600;margin-top:6px'>{escape(title)}{escape(note)}</div>"
        + _table(["kind", "row", "uid", "column", "status", "code", "reason"], rows)
    )


def _warnings(warnings: Sequence[str]) -> str:
    if not warnings:
        return ""
    items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
    return f"<div style='color:#9a6700'><b>Warnings</b><ul style='margin:2px 0'>{items}</ul></div>"


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _wrap(inner: str) -> str:
    return (
        f'<div style="font-family:system-ui,-apple-system,sans-serif;font-size:13px">{inner}</div>'
    )


def result_html(result: SyncResult, *, max_rows: int = MAX_ROWS) -> str:
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
        f"{_badge(result.status.replace('_', ' '), result.status)}</div>",
        f"<div style='color:#57606a'>started {escape(_when(result.started_at))}, "
        f"finished {escape(_when(result.finished_at))}, took {result.duration:.2f} s</div>",
    ]
    if result.error:
        parts.append(f"<div style='color:#cf222e'><b>Error:</b> {escape(result.error)}</div>")
    parts.append(_table(["count", "rows", "meaning"], counts_rows(counts)))
    parts.append(_warnings(result.warnings))
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
    debugger = getattr(result, "debugger", None)
    if debugger is not None:
        parts.append(f"<div style='color:#57606a'>{escape(debugger.summary())}</div>")
    return _wrap("".join(parts))


def counts_rows(counts: Sequence[tuple[str, int, str]]) -> list[tuple[str, str, str]]:
    """Counts as table rows with the number formatted (right-aligned by its own style)."""
    return [(name, f"{value:,}", meaning) for name, value, meaning in counts]


def plan_html(plan: Plan, *, max_rows: int = MAX_ROWS) -> str:
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
        f"{_badge('nothing sent', 'plan')}</div>",
        _table(["count", "rows", "meaning"], counts_rows(counts)),
        _warnings(plan.warnings),
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
            total = _count_changes(plan) if more else len(changes)
            if not more:
                note = f" ({total:,})"
            elif total is None:
                note = f" (first {max_rows})"
            else:
                note = f" (first {max_rows} of {total:,})"
            parts.append(
                f"<div style='font-weight:600;margin-top:6px'>Changes{escape(note)}</div>"
                + _table(["uid", "attribute", "old", "new"], rows)
            )
    return _wrap("".join(parts))


def _count_changes(plan: Plan) -> int | None:
    """How many attribute changes a plan holds, counted where they are stored (a plan of a
    million users is not read into memory to count it); ``None`` if it cannot tell."""
    db = getattr(plan, "_db", None)
    if db is None:
        return None
    try:
        (total,) = db.execute("SELECT COUNT(*) FROM changes").fetchone()
    except (sqlite3.Error, TypeError, ValueError):  # closed meanwhile: show no total
        return None
    return int(total)


def debugger_html(debugger: Debugger, *, max_rows: int = MAX_ROWS) -> str:
    """The notebook view of a debugger: counters, statuses and the latest failed exchanges.

    Example: ``IPython.display.HTML(debugger_html(debugger))`` (Jupyter calls it for you).
    """
    stats = debugger.stats()
    counters = [
        (name, f"{stats[name]:,}")
        for name in ("seen", "held", "failed", "sampled_out", "evicted", "exported")
    ]
    statuses = [(k, f"{v:,}") for k, v in sorted(stats["status_counts"].items())]
    held_failed = debugger.failed()
    failed = held_failed[-max_rows:]
    rows = [
        (r.method, r.url, r.user_uid, r.status, r.attempt, r.error or r.response_body)
        for r in failed
    ]
    note = (
        f" ({len(failed)} of {len(held_failed):,} held)" if len(held_failed) > len(failed) else ""
    )
    parts = [
        "<div style='margin-bottom:4px'><b>Debugger</b></div>",
        _table(["counter", "exchanges"], counters),
    ]
    if statuses:
        parts.append(_table(["status", "exchanges"], statuses))
    if rows:
        parts.append(
            "<div style='font-weight:600;margin-top:6px'>"
            f"Latest failed exchanges{escape(note)}</div>"
            + _table(["method", "url", "uid", "status", "attempt", "answer"], rows)
        )
    return _wrap("".join(parts))


def result_to_pandas(result: SyncResult) -> Any:
    """The row outcomes of a run that did not sync (invalid, rejected, not sent) as a DataFrame.

    Example: ``result_to_pandas(result).groupby("reason").size()``
    """
    pd = require_pandas("SyncResult.to_pandas()")
    records = [i.to_dict() for i in (*result.invalid_rows, *result.rejected_rows)]
    columns = ["kind", "row", "uid", "reason", "column", "status", "code"]
    return pd.DataFrame.from_records(records, columns=columns)


def plan_to_pandas(plan: Plan) -> Any:
    """A plan's changes as a DataFrame: ``uid, attribute, old, new, first_time``.

    Example: ``plan_to_pandas(plan).query("attribute == 'plan_tier'")``
    """
    pd = require_pandas("Plan.to_pandas()")
    columns = ["uid", "attribute", "old", "new", "first_time"]
    records = [(c.uid, c.attribute, c.old, c.new, c.first_time) for c in plan.changes()]
    return pd.DataFrame.from_records(records, columns=columns)
