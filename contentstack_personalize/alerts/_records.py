"""The values that flow through alerting: the :class:`Alert` a sink is given, the
:class:`AlertOutcome` the run reports for every delivery, and :class:`AlertDeliveryError`.

This module also owns secret hygiene for alerting: :func:`redact_url` (scheme and host only) and
:func:`scrub` (mask known secret strings in any text before it is logged or reported).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Literal

import attrs

from .._http import REDACTED
from .._http import scrub as _scrub
from ..errors import PersonalizeError
from ._rules import Severity

__all__ = [
    "Alert",
    "AlertAction",
    "AlertDeliveryError",
    "AlertOutcome",
    "redact_url",
    "scrub",
]

AlertAction = Literal["trigger", "resolve"]


class AlertDeliveryError(PersonalizeError):
    """A sink could not deliver an alert. The message names the sink and the host (never the
    full URL, key, token or password) and says what the other side answered.

    The sync engine never raises it: it is logged under ``contentstack_personalize.alerts`` and
    reported as an :class:`AlertOutcome` with ``ok=False``. Raise it from your own sinks.

    Example: ``raise AlertDeliveryError("teams: HTTP 404 from https://example.com")``
    """


def redact_url(url: str) -> str:
    """Only the scheme and host of ``url``: webhook URLs often carry their key in the path.

    Example: ``redact_url("https://hooks.slack.com/services/T0/B0/XYZ")`` ->
    ``"https://hooks.slack.com"``
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return REDACTED
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    host = host.rsplit("@", 1)[-1]  # drop user:password@
    return f"{scheme}://{host}"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret in ``secrets`` (and any credential shape) replaced by
    ``[REDACTED]``: the package's one redaction helper, ``_http.scrub``.

    Example: ``scrub("bad key abc123", ["abc123"])`` -> ``"bad key [REDACTED]"``
    """
    return _scrub(text, secrets=secrets)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds")


@attrs.frozen(kw_only=True)
class Alert:
    """One notification: a rule of a sync started failing (``action="trigger"``) or recovered
    (``action="resolve"``).

    ``message`` is the rule's one-line finding; ``dedup_key`` is stable per sync and rule (the
    same for the trigger and its resolve); ``details`` holds the rule's numbers and the run's
    counts. Sinks render it with :meth:`title` and :meth:`text`, or serialise :meth:`to_dict`.

    Example::

        def my_sink(alert: Alert) -> None:
            if alert.action == "trigger" and alert.severity == "critical":
                page_someone(alert.title(), alert.text())
    """

    sync_name: str
    rule: str
    severity: Severity
    action: AlertAction
    message: str
    run_id: str
    run_status: str
    at: float
    dedup_key: str
    details: dict[str, Any] = attrs.field(factory=dict)

    def title(self) -> str:
        """One line: ``[CRITICAL] sync 'users': run_failed`` or ``[RESOLVED] ...``."""
        tag = "RESOLVED" if self.action == "resolve" else self.severity.upper()
        return f"[{tag}] sync {self.sync_name!r}: {self.rule}"

    def text(self) -> str:
        """A few readable lines for e-mail, chat and SMS."""
        if self.action == "resolve":
            head = f"Resolved: {self.rule} on sync {self.sync_name!r} is back to normal."
        else:
            head = f"{self.severity.capitalize()}: {self.rule} on sync {self.sync_name!r}."
        return (
            f"{head}\n{self.message}\n"
            f"Run {self.run_id} ({self.run_status.replace('_', ' ')}) at {_iso(self.at)}."
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (what :class:`Webhook` posts)."""
        return {
            "sync_name": self.sync_name,
            "rule": self.rule,
            "severity": self.severity,
            "action": self.action,
            "message": self.message,
            "run_id": self.run_id,
            "run_status": self.run_status,
            "at": self.at,
            "time": _iso(self.at),
            "dedup_key": self.dedup_key,
            "details": dict(self.details),
        }


@attrs.frozen(kw_only=True)
class AlertOutcome:
    """What happened to one alert at one sink (or, with ``action="check"`` and ``sink=""``,
    to a rule that could not be evaluated).

    ``error`` is the reason a delivery failed, with secrets removed; the next run retries a
    failed delivery.

    Example::

        for outcome in result.alerts:
            if not outcome.ok:
                print(f"{outcome.sink} missed {outcome.rule} {outcome.action}: {outcome.error}")
    """

    sync_name: str
    run_id: str
    rule: str
    severity: Severity
    action: Literal["trigger", "resolve", "check"]
    sink: str
    ok: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return attrs.asdict(self)

    def __str__(self) -> str:
        state = "delivered" if self.ok else f"FAILED: {self.error}"
        where = f" to {self.sink}" if self.sink else ""
        return f"{self.rule} {self.action}{where}: {state}"
