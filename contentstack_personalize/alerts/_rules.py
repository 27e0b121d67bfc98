"""Alert rules: pure checks of one run's :class:`SyncResult` (and the run before it).

This module owns the rule classes and their verdicts. A rule does no I/O and keeps no state;
whether a verdict is news (a trigger or a recovery) is decided by :mod:`._engine`, which keeps the
per-(sync, rule) state in the sync's state store.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import attrs

from ..errors import ConfigurationError
from ..state import RunRecord
from ..sync import SyncResult

__all__ = [
    "AlertRule",
    "DurationAbove",
    "InvalidAbove",
    "Rule",
    "RejectedAbove",
    "RowsDropped",
    "RunFailed",
    "SEVERITIES",
    "Severity",
    "Verdict",
]

Severity = Literal["info", "warning", "error", "critical"]
#: Severities from least to most urgent.
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error", "critical")


def _check_severity(_: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in SEVERITIES:
        raise ConfigurationError(f"severity must be one of {', '.join(SEVERITIES)}, not {value!r}")


def _check_name(_: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or (value and not value.strip()):
        raise ConfigurationError(
            f"an alert rule's name must be non-empty text (it keys the rule's stored state), "
            f"not {value!r}; pass name='...' or leave it out to get the default name"
        )


def _check_percent(_: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= 100
    ):
        raise ConfigurationError(f"{attribute.name} must be a number from 0 to 100, not {value!r}")


def _check_seconds(_: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigurationError(f"seconds must be a non-negative number, not {value!r}")


def _num(value: float) -> str:
    """``5`` for 5.0, ``2.5`` for 2.5: thresholds in names and messages read naturally."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@attrs.frozen(kw_only=True)
class Verdict:
    """What a rule says about one run.

    ``failing`` is ``True`` (the condition holds), ``False`` (it does not) or ``None`` (the rule
    cannot judge this run, e.g. :class:`RowsDropped` with no earlier run; the stored state is
    left as it was). ``message`` is one line for people; ``details`` holds the numbers.

    Example: ``Verdict(failing=True, message="12.0% of rows rejected (limit 5%)")``
    """

    failing: bool | None
    message: str
    details: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Rule:
    """Base of the alert rules (also named :data:`AlertRule`). Subclasses implement
    :meth:`check`.

    Not to be confused with :class:`contentstack_personalize.rules.Rule`, one condition of an
    audience's definition in Personalize; this one judges a sync run.

    ``severity`` is one of ``info``, ``warning``, ``error``, ``critical``. ``name`` is the
    rule's stable identity: it keys the stored alert state and the PagerDuty ``dedup_key``.
    When not given it is derived from the rule and its threshold (``"rejected_above_5"``);
    pass ``name=`` to keep the same identity when you change a threshold.

    Example::

        class NothingSynced(Rule):
            def check(self, result, previous):
                return Verdict(failing=result.read > 0 and result.synced == 0,
                               message=f"{result.read} rows read, none synced")

        alerts = Alerts(rules=[NothingSynced(name="nothing_synced")], sinks=[...])
    """

    severity: Severity = attrs.field(default="warning", validator=_check_severity)
    name: str = attrs.field(default="", validator=_check_name)

    def __attrs_post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.default_name())

    def default_name(self) -> str:
        """The name used when none is given."""
        return type(self).__name__

    def check(self, result: SyncResult, previous: RunRecord | None) -> Verdict:
        """Judge one run; ``previous`` is the last finished run before it, if any."""
        raise NotImplementedError(f"{type(self).__name__} must implement check()")


#: The base of the alert rules, by a name that cannot be mistaken for
#: :class:`contentstack_personalize.rules.Rule` (an audience condition).
AlertRule = Rule


@attrs.frozen(kw_only=True)
class RunFailed(Rule):
    """Fires when a run failed or was aborted (and, with ``include_partial=True``, when some
    rows were rejected).

    Example: ``RunFailed(severity="critical")``
    """

    severity: Severity = attrs.field(default="error", validator=_check_severity)
    include_partial: bool = False

    def default_name(self) -> str:
        """The name used when none is given (rule kind and threshold)."""
        return "run_failed_or_partial" if self.include_partial else "run_failed"

    def check(self, result: SyncResult, previous: RunRecord | None) -> Verdict:
        """Judge one run (see the class docstring for the condition)."""
        bad = {"failed", "aborted"} | ({"partially_failed"} if self.include_partial else set())
        status = result.status.replace("_", " ")
        if result.status in bad:
            reason = f": {result.error}" if result.error else ""
            return Verdict(
                failing=True,
                message=f"run {result.run_id} {status}{reason}",
                details={"status": result.status, "error": result.error},
            )
        return Verdict(
            failing=False,
            message=f"run {result.run_id} {status}",
            details={"status": result.status},
        )


@attrs.frozen(kw_only=True)
class RejectedAbove(Rule):
    """Fires when more than ``percent`` % of the rows sent were rejected by the API.

    Rows sent are ``added + changed + rejected`` (rows not sent because a run stopped early do
    not count). A run that sent nothing rejected nothing: 0 %.

    Example: ``RejectedAbove(percent=5)``
    """

    percent: float = attrs.field(validator=_check_percent)

    def default_name(self) -> str:
        """The name used when none is given (rule kind and threshold)."""
        return f"rejected_above_{_num(self.percent)}"

    def check(self, result: SyncResult, previous: RunRecord | None) -> Verdict:
        """Judge one run (see the class docstring for the condition)."""
        sent = result.added + result.changed + result.rejected
        share = 100.0 * result.rejected / sent if sent else 0.0
        return Verdict(
            failing=share > self.percent,
            message=(
                f"{result.rejected:,} of {sent:,} rows sent were rejected ({share:.1f}%, "
                f"limit {_num(self.percent)}%)"
            ),
            details={"rejected": result.rejected, "sent": sent, "percent": round(share, 3)},
        )


@attrs.frozen(kw_only=True)
class InvalidAbove(Rule):
    """Fires when more than ``percent`` % of the rows read were invalid (never sent).

    A run that read nothing has 0 % invalid rows (:class:`RowsDropped` watches for empty
    sources).

    Example: ``InvalidAbove(percent=10)``
    """

    percent: float = attrs.field(validator=_check_percent)

    def default_name(self) -> str:
        """The name used when none is given (rule kind and threshold)."""
        return f"invalid_above_{_num(self.percent)}"

    def check(self, result: SyncResult, previous: RunRecord | None) -> Verdict:
        """Judge one run (see the class docstring for the condition)."""
        share = 100.0 * result.invalid / result.read if result.read else 0.0
        return Verdict(
            failing=share > self.percent,
            message=(
                f"{result.invalid:,} of {result.read:,} rows read were invalid ({share:.1f}%, "
                f"limit {_num(self.percent)}%)"
            ),
            details={"invalid": result.invalid, "read": result.read, "percent": round(share, 3)},
        )


@attrs.frozen(kw_only=True)
class RowsDropped(Rule):
    """Fires when a run read more than ``percent`` % fewer rows than the previous finished
    run of the same sync (a source that shrank or came back empty).

    With no previous run there is nothing to compare: the rule does not judge (an open alert
    stays open, none is raised). A previous run that read nothing cannot have dropped.

    Example: ``RowsDropped(percent=50)``
    """

    percent: float = attrs.field(validator=_check_percent)

    def default_name(self) -> str:
        """The name used when none is given (rule kind and threshold)."""
        return f"rows_dropped_{_num(self.percent)}"

    def check(self, result: SyncResult, previous: RunRecord | None) -> Verdict:
        """Judge one run (see the class docstring for the condition)."""
        if previous is None or "read" not in previous.counts:
            return Verdict(failing=None, message="no previous run to compare with")
        before = int(previous.counts["read"])
        now = result.read
        drop = 100.0 * (before - now) / before if before > 0 else 0.0
        return Verdict(
            failing=drop > self.percent,
            message=(
                f"{now:,} rows read, {before:,} in the previous run ({drop:.1f}% fewer, "
                f"limit {_num(self.percent)}%)"
            ),
            details={
                "read": now,
                "previous_read": before,
                "previous_run_id": previous.run_id,
                "drop_percent": round(drop, 3),
            },
        )


@attrs.frozen(kw_only=True)
class DurationAbove(Rule):
    """Fires when a run took longer than ``seconds``.

    Example: ``DurationAbove(seconds=3600)``
    """

    seconds: float = attrs.field(validator=_check_seconds)

    def default_name(self) -> str:
        """The name used when none is given (rule kind and threshold)."""
        return f"duration_above_{_num(self.seconds)}"

    def check(self, result: SyncResult, previous: RunRecord | None) -> Verdict:
        """Judge one run (see the class docstring for the condition)."""
        took = result.duration
        return Verdict(
            failing=took > self.seconds,
            message=f"run took {took:,.1f} s (limit {_num(self.seconds)} s)",
            details={"duration": round(took, 3), "limit": self.seconds},
        )
