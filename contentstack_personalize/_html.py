"""Building blocks of the notebook (HTML) views: escaped cells, tables, badges.

Every value shown comes from user data (UIDs, reasons, attribute values, API answers), so every
cell is escaped; the HTML uses inline styles only, no external CSS or JavaScript, so it renders
the same in Jupyter, VS Code and exported notebooks. Each view lives with what it renders (the
run result, the plan, the debugger) and builds on these helpers.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

__all__ = [
    "MAX_CELL",
    "MAX_ROWS",
    "badge",
    "cell",
    "counts_table",
    "table",
    "warnings",
    "when",
    "wrap",
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


def cell(value: Any) -> str:
    """One escaped cell: ``None`` is empty, a non-string is shown as JSON, long text is cut."""
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


def badge(label: str, key: str) -> str:
    """A coloured pill; ``key`` picks the colour (a run status, or ``"plan"``)."""
    color = _BADGE.get(key, "#57606a")
    return (
        f'<span style="background:{color};color:#fff;border-radius:10px;padding:1px 8px;'
        f'font-size:12px;font-weight:600">{escape(label)}</span>'
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A table with escaped headers and cells."""
    head = "".join(f'<th style="{_HEAD}">{escape(h)}</th>' for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_CELL}">{cell(value)}</td>' for value in row) + "</tr>"
        for row in rows
    )
    return f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def counts_table(counts: Sequence[tuple[str, int, str]]) -> str:
    """A ``count, rows, meaning`` table, numbers formatted with thousands separators."""
    return table(
        ["count", "rows", "meaning"],
        [(name, f"{value:,}", meaning) for name, value, meaning in counts],
    )


def warnings(items: Sequence[str]) -> str:
    """A list of warnings, or nothing when there are none."""
    if not items:
        return ""
    lis = "".join(f"<li>{escape(w)}</li>" for w in items)
    return f"<div style='color:#9a6700'><b>Warnings</b><ul style='margin:2px 0'>{lis}</ul></div>"


def when(ts: float) -> str:
    """A UNIX time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def wrap(inner: str) -> str:
    """The outer block every view sits in."""
    return (
        f'<div style="font-family:system-ui,-apple-system,sans-serif;font-size:13px">{inner}</div>'
    )
