"""When to notify: evaluate the rules after a run and tell each sink once per change.

This module owns the alert state machine. For every (sync, rule) it keeps, in the sync's state
store (``get_meta``/``set_meta`` key ``alert:<rule name>``), whether the rule is failing and which
sinks have been told. A sink hears *trigger* once when a rule starts failing and *resolve* once
when it recovers; a delivery that failed is retried on the next run. Sinks that fail never fail
the sync: every delivery becomes an :class:`AlertOutcome`, and failures are logged under
``contentstack_personalize.alerts``.

The decision (:func:`decide`) is pure; :class:`Alerts` is the thin shell that reads and writes the
store and calls the sinks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from .._types import NOT_GIVEN, NotGiven
from ..errors import ConfigurationError
from ..sync._result import SyncResult
from ..sync._state import RunRecord, StateStore
from ._records import Alert, AlertAction, AlertDeliveryError, AlertOutcome, scrub
from ._rules import SEVERITIES, Rule, Severity, Verdict
from ._sinks import CallableSink, Sink

__all__ = ["Alerts", "RuleState", "decide", "dedup_key", "evaluate_alerts", "previous_run"]

logger = logging.getLogger("contentstack_personalize.alerts")

STATE_PREFIX = "alert:"
INDEX_KEY = "alerts:rules"
_PREVIOUS_LOOKBACK = 10


@attrs.frozen(kw_only=True)
class RuleState:
    """What the store remembers of one rule of one sync.

    ``open`` holds the sinks told about the current failure and not yet told it is resolved.

    Example: ``RuleState(failing=True, open=("slack",), severity="error", since="a1b2c3")``
    """

    failing: bool
    open: tuple[str, ...] = ()
    severity: Severity = "warning"
    since: str | None = None
    message: str = ""

    def to_json(self) -> str:
        """The stored text."""
        return json.dumps(attrs.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RuleState:
        """Parse stored text; raises ``ValueError`` when it is not a rule state."""
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("failing"), bool):
            raise ValueError("not an alert state")
        severity = data.get("severity")
        opened = data.get("open", [])
        if not isinstance(opened, list) or not all(isinstance(s, str) for s in opened):
            raise ValueError("not an alert state")
        since = data.get("since")
        return cls(
            failing=data["failing"],
            open=tuple(opened),
            severity=severity if severity in SEVERITIES else "warning",
            since=since if isinstance(since, str) else None,
            message=str(data.get("message", "")),
        )


def dedup_key(sync_name: str, rule: str) -> str:
    """The stable key of one alert (PagerDuty's ``dedup_key``): the same for a trigger and its
    resolve, different for every (sync, rule). At most 255 characters.

    Example: ``dedup_key("users", "run_failed")`` -> ``"contentstack-personalize/users/run_failed"``
    """
    key = f"contentstack-personalize/{sync_name}/{rule}"
    if len(key) <= 255:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"contentstack-personalize/{digest}"


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def decide(
    stored: RuleState | None,
    failing: bool | None,
    sinks: Sequence[tuple[str, Severity]],
    severity: Severity,
) -> tuple[bool | None, list[tuple[str, AlertAction]]]:
    """The pure core: given what is stored, the rule's verdict on this run and the configured
    sinks ``(name, min_severity)``, return the rule's new failing flag and the deliveries due.

    - failing now: *trigger* every sink that wants this severity and was not told yet;
    - passing now: *resolve* every configured sink that was told of the failure;
    - ``None`` (the rule could not judge): keep everything as it is.

    Example: ``decide(None, True, [("slack", "info")], "error")`` ->
    ``(True, [("slack", "trigger")])``
    """
    if failing is None:
        return (stored.failing if stored else None), []
    if failing:
        told = set(stored.open) if stored else set()
        due: list[tuple[str, AlertAction]] = [
            (name, "trigger")
            for name, least in sinks
            if _rank(severity) >= _rank(least) and name not in told
        ]
        return True, due
    if stored is None:
        return False, []
    configured = {name for name, _ in sinks}
    return False, [(name, "resolve") for name in stored.open if name in configured]


def previous_run(store: StateStore, sync_name: str, run_id: str) -> RunRecord | None:
    """The latest finished run of ``sync_name`` other than ``run_id`` (runs that crashed and
    were left ``"running"`` are skipped), or ``None``.

    Example: ``previous_run(sync.state, sync.name, result.run_id)``
    """
    for record in store.runs(sync_name, _PREVIOUS_LOOKBACK):
        finished = record.finished_at is not None and record.status != "running"
        if finished and record.run_id != run_id:
            return record
    return None


def _as_sink(item: Sink | Callable[[Alert], Any]) -> Sink:
    if isinstance(item, Sink):
        return item
    if callable(item):
        return CallableSink(item)
    raise ConfigurationError(
        f"a sink must be a Sink (SlackWebhook, PagerDuty, Email, TwilioSMS, Webhook, ...) or a "
        f"callable taking an Alert, not {type(item).__name__}"
    )


class Alerts:
    """Alert rules and the sinks they notify, evaluated after every run of a sync.

    Example::

        alerts = Alerts(
            rules=[RunFailed(severity="critical"), RejectedAbove(percent=5),
                   InvalidAbove(percent=10), RowsDropped(percent=50),
                   DurationAbove(seconds=3600)],
            sinks=[SlackWebhook(os.environ["SLACK_WEBHOOK_URL"]),
                   PagerDuty(os.environ["PAGERDUTY_ROUTING_KEY"], min_severity="error")],
        )
        result = sync.run(rows)
        for outcome in alerts.evaluate(result, sync.state):
            print(outcome)
    """

    def __init__(
        self,
        *,
        rules: Sequence[Rule],
        sinks: Sequence[Sink | Callable[[Alert], Any]],
    ) -> None:
        rules = list(rules)
        for rule in rules:
            if not isinstance(rule, Rule):
                raise ConfigurationError(
                    f"alert rules must be Rule objects (RunFailed(), RejectedAbove(percent=5), "
                    f"...), not {type(rule).__name__}"
                )
        names = [rule.name for rule in rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigurationError(
                f"two alert rules are named {twice[0]!r}: give one of them name=... (the name "
                "keys the rule's stored state)"
            )
        sink_list = [_as_sink(item) for item in sinks]
        sink_names = [sink.name for sink in sink_list]
        twice = sorted({n for n in sink_names if sink_names.count(n) > 1})
        if twice:
            raise ConfigurationError(
                f"two alert sinks are named {twice[0]!r}: pass name=... to one of them (for a "
                "function, CallableSink(fn, name=...))"
            )
        for sink in sink_list:
            if getattr(sink, "min_severity", "info") not in SEVERITIES:
                raise ConfigurationError(
                    f"sink {sink.name!r}: min_severity must be one of {', '.join(SEVERITIES)}"
                )
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.sinks: tuple[Sink, ...] = tuple(sink_list)

    def __repr__(self) -> str:
        return f"Alerts(rules={[r.name for r in self.rules]}, sinks={list(self.sinks)!r})"

    # -- public API ----------------------------------------------------------------------------

    def evaluate(
        self,
        result: SyncResult,
        store: StateStore,
        *,
        previous: RunRecord | NotGiven | None = NOT_GIVEN,
    ) -> list[AlertOutcome]:
        """Check every rule against ``result`` and notify the sinks of what changed.

        ``previous`` defaults to the latest finished run before ``result`` in ``store`` (call
        this after the run's record is saved). Never raises for a failing sink, rule or store:
        each problem is logged and returned as an :class:`AlertOutcome` with ``ok=False``.
        """
        outcomes: list[AlertOutcome] = []
        sync_name = result.sync_name
        try:
            if isinstance(previous, NotGiven):
                previous = previous_run(store, sync_name, result.run_id)
            index = self._load_index(store, sync_name)
            configured = {rule.name for rule in self.rules}
            for rule in self.rules:
                verdict = self._check(rule, result, previous, outcomes)
                if verdict is not None:
                    self._apply(rule.name, rule.severity, verdict, result, store, outcomes)
            for name in sorted(set(index) - configured):
                stored = self._load_state(store, sync_name, name)
                severity = stored.severity if stored else "warning"
                gone = Verdict(failing=False, message=f"the rule {name!r} is no longer configured")
                self._apply(name, severity, gone, result, store, outcomes)
            self._save_index(store, sync_name, outcomes, index)
        except Exception as exc:  # alerting must never break the sync it reports on
            error = self._scrub(f"{type(exc).__name__}: {exc}")
            logger.error("alerts for sync %r could not be evaluated: %s", sync_name, error)
            outcomes.append(
                AlertOutcome(
                    sync_name=sync_name,
                    run_id=result.run_id,
                    rule="",
                    severity="error",
                    action="check",
                    sink="",
                    ok=False,
                    error=error,
                )
            )
        return outcomes

    async def aevaluate(
        self,
        result: SyncResult,
        store: StateStore,
        *,
        previous: RunRecord | NotGiven | None = NOT_GIVEN,
    ) -> list[AlertOutcome]:
        """The coroutine twin of :meth:`evaluate` (sinks run in a worker thread)."""
        return await asyncio.to_thread(self.evaluate, result, store, previous=previous)

    # -- the shell -----------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        secrets: list[str] = []
        for sink in self.sinks:
            get = getattr(sink, "_secrets", None)
            if callable(get):
                secrets.extend(get())
            password = getattr(sink, "_password", None)
            if isinstance(password, str):
                secrets.append(password)
        return scrub(text, secrets)

    def _check(
        self,
        rule: Rule,
        result: SyncResult,
        previous: RunRecord | None,
        outcomes: list[AlertOutcome],
    ) -> Verdict | None:
        try:
            verdict = rule.check(result, previous)
            if not isinstance(verdict, Verdict):
                raise TypeError(f"check() returned {type(verdict).__name__}, not a Verdict")
            return verdict
        except Exception as exc:
            error = self._scrub(f"{type(exc).__name__}: {exc}")
            logger.error("alert rule %r of sync %r failed: %s", rule.name, result.sync_name, error)
            outcomes.append(
                AlertOutcome(
                    sync_name=result.sync_name,
                    run_id=result.run_id,
                    rule=rule.name,
                    severity=rule.severity,
                    action="check",
                    sink="",
                    ok=False,
                    error=error,
                )
            )
            return None

    def _load_state(self, store: StateStore, sync_name: str, rule: str) -> RuleState | None:
        text = store.get_meta(sync_name, STATE_PREFIX + rule)
        if text is None:
            return None
        try:
            return RuleState.from_json(text)
        except ValueError:
            logger.warning("ignoring unreadable alert state of rule %r of sync %r", rule, sync_name)
            return None

    def _load_index(self, store: StateStore, sync_name: str) -> list[str]:
        text = store.get_meta(sync_name, INDEX_KEY)
        try:
            names = json.loads(text) if text else []
        except ValueError:
            names = []
        return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []

    def _save_index(
        self,
        store: StateStore,
        sync_name: str,
        outcomes: list[AlertOutcome],
        old: list[str],
    ) -> None:
        names = sorted(
            {rule.name for rule in self.rules} | set(old) | {o.rule for o in outcomes if o.rule}
        )
        live = [n for n in names if store.get_meta(sync_name, STATE_PREFIX + n) is not None]
        if sorted(old) != live:
            store.set_meta(sync_name, INDEX_KEY, json.dumps(live) if live else None)

    def _apply(
        self,
        rule: str,
        severity: Severity,
        verdict: Verdict,
        result: SyncResult,
        store: StateStore,
        outcomes: list[AlertOutcome],
    ) -> None:
        sync_name = result.sync_name
        stored = self._load_state(store, sync_name, rule)
        sinks = {sink.name: sink for sink in self.sinks}
        wants: list[tuple[str, Severity]] = [
            (s.name, getattr(s, "min_severity", "info")) for s in self.sinks
        ]
        failing, due = decide(stored, verdict.failing, wants, severity)
        if failing is None:
            return
        told = set(stored.open) if stored else set()
        told &= set(sinks)  # sinks removed from the configuration cannot be resolved
        details = {
            **result.counts(),
            "requests": result.requests,
            "duration": round(result.duration, 3),
            **verdict.details,
        }
        for name, action in due:
            alert = Alert(
                sync_name=sync_name,
                rule=rule,
                severity=severity,
                action=action,
                message=verdict.message,
                run_id=result.run_id,
                run_status=result.status,
                at=result.finished_at,
                dedup_key=dedup_key(sync_name, rule),
                details=details,
            )
            ok, error = self._deliver(sinks[name], alert)
            outcomes.append(
                AlertOutcome(
                    sync_name=sync_name,
                    run_id=result.run_id,
                    rule=rule,
                    severity=severity,
                    action=action,
                    sink=name,
                    ok=ok,
                    error=error,
                )
            )
            if ok and action == "trigger":
                told.add(name)
            elif ok:
                told.discard(name)
        if not failing and not told:
            if stored is not None:
                store.set_meta(sync_name, STATE_PREFIX + rule, None)
            return
        since = stored.since if stored and stored.failing and failing else result.run_id
        new = RuleState(
            failing=failing,
            open=tuple(sorted(told)),
            severity=severity,
            since=since,
            message=verdict.message,
        )
        if new != stored:
            store.set_meta(sync_name, STATE_PREFIX + rule, new.to_json())

    def _deliver(self, sink: Sink, alert: Alert) -> tuple[bool, str | None]:
        try:
            sink.send(alert)
        except Exception as exc:
            if isinstance(exc, AlertDeliveryError):
                error = self._scrub(str(exc))
            else:
                error = self._scrub(f"{type(exc).__name__}: {exc}")
            logger.warning(
                "alert %s %s of sync %r was not delivered to %s: %s",
                alert.rule,
                alert.action,
                alert.sync_name,
                sink.name,
                error,
            )
            return False, error
        logger.info(
            "alert %s %s of sync %r delivered to %s",
            alert.rule,
            alert.action,
            alert.sync_name,
            sink.name,
        )
        return True, None


def evaluate_alerts(
    result: SyncResult,
    previous: RunRecord | None,
    rules: Sequence[Rule],
    sinks: Sequence[Sink | Callable[[Alert], Any]],
    store: StateStore,
) -> list[AlertOutcome]:
    """A one-shot :meth:`Alerts.evaluate` with an explicit ``previous`` run.

    Example::

        result = sync.run(rows)
        outcomes = evaluate_alerts(result, previous_run(sync.state, sync.name, result.run_id),
                                   [RunFailed()], [SlackWebhook(url)], sync.state)
    """
    return Alerts(rules=rules, sinks=sinks).evaluate(result, store, previous=previous)
