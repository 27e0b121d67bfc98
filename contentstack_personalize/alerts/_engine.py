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
from typing import Any, Protocol

import attrs

from .._types import NOT_GIVEN, NotGiven
from ..errors import ConfigurationError
from ..state import RunRecord, StateStore
from ..sync import RunStatus, SyncResult
from ._records import Alert, AlertAction, AlertDeliveryError, AlertOutcome, scrub
from ._rules import SEVERITIES, Rule, Severity, Verdict
from ._sinks import CallableSink, Sink

__all__ = [
    "Alerts",
    "RecordedSync",
    "RuleState",
    "decide",
    "dedup_key",
    "evaluate_alerts",
    "latest_run",
    "previous_run",
    "result_of",
]

logger = logging.getLogger("contentstack_personalize.alerts")

STATE_PREFIX = "alert:"
INDEX_KEY = "alerts:rules"
_PREVIOUS_LOOKBACK = 10


@attrs.frozen(kw_only=True)
class RuleState:
    """What the store remembers of one rule of one sync.

    ``open`` holds the sinks told about the current failure and not yet told it is resolved.
    ``covered_by`` names the rule whose alert reported this failure (one cause, one alert: see
    :meth:`Alerts.evaluate`); such a rule sends nothing of its own while that one fails.

    Example: ``RuleState(failing=True, open=("slack",), severity="error", since="a1b2c3")``
    """

    failing: bool
    open: tuple[str, ...] = ()
    severity: Severity = "warning"
    since: str | None = None
    message: str = ""
    covered_by: str | None = None

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
        covered_by = data.get("covered_by")
        return cls(
            failing=data["failing"],
            open=tuple(opened),
            severity=severity if severity in SEVERITIES else "warning",
            since=since if isinstance(since, str) else None,
            message=str(data.get("message", "")),
            covered_by=covered_by if isinstance(covered_by, str) else None,
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


class RecordedSync(Protocol):
    """What :meth:`Alerts.evaluate_latest` needs of a sync: its name and its state store (a
    :class:`~contentstack_personalize.sync.Sync` has both)."""

    @property
    def name(self) -> str:
        """The sync's name in the store."""
        ...

    @property
    def state(self) -> StateStore:
        """The store its runs are recorded in."""
        ...


_STATUSES: tuple[RunStatus, ...] = ("succeeded", "partially_failed", "failed", "aborted")


def latest_run(store: StateStore, sync_name: str) -> RunRecord | None:
    """The latest finished run of ``sync_name`` (runs left ``"running"`` by a process that died
    are skipped), or ``None``.

    Example: ``latest_run(sync.state, sync.name)``
    """
    for record in store.runs(sync_name, _PREVIOUS_LOOKBACK):
        if record.finished_at is not None and record.status != "running":
            return record
    return None


def result_of(record: RunRecord) -> SyncResult:
    """A :class:`SyncResult` with the counts, status and error of a recorded run (no row
    details: the history keeps counts only), for rules to judge.

    Example: ``alerts.evaluate(result_of(latest_run(sync.state, sync.name)), sync.state)``
    """
    counts = record.counts
    status = record.status if record.status in _STATUSES else "failed"

    def count(name: str) -> int:
        value = counts.get(name, 0)
        return value if isinstance(value, int) else 0

    return SyncResult(
        run_id=record.run_id,
        sync_name=record.sync_name,
        status=status,
        started_at=record.started_at,
        finished_at=record.finished_at if record.finished_at is not None else record.started_at,
        read=count("read"),
        invalid=count("invalid"),
        unchanged=count("unchanged"),
        added=count("added"),
        changed=count("changed"),
        rejected=count("rejected"),
        not_sent=count("not_sent"),
        retried=count("retried"),
        requests=count("requests"),
        invalid_rows=(),
        rejected_rows=(),
        error=record.error,
    )


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

    Give it to the sync (``Sync(..., alerts=alerts)``): every run is then checked, including
    one that raises before sending anything, and the outcomes are in ``result.alerts``. To
    evaluate yourself, call :meth:`evaluate_latest` in a ``finally:`` after ``sync.run()``.

    Example::

        alerts = Alerts(
            rules=[RunFailed(severity="critical"), RejectedAbove(percent=5),
                   InvalidAbove(percent=10), RowsDropped(percent=50),
                   DurationAbove(seconds=3600)],
            sinks=[SlackWebhook(os.environ["SLACK_WEBHOOK_URL"]),
                   PagerDuty(os.environ["PAGERDUTY_ROUTING_KEY"], min_severity="error")],
        )
        sync = Sync(client, match_on="user_id", mapping=mapping, state="users.db",
                    alerts=alerts)
        result = sync.run(rows)
        for outcome in result.alerts:
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

        One cause, one alert: when several rules fail on a run that failed or was aborted, or
        start failing on the same run, the most severe of them (the first configured on a tie)
        carries the alert and names the others, which send nothing of their own while it
        fails. A run that raised has no result to pass here: use :meth:`evaluate_latest`.
        """
        outcomes: list[AlertOutcome] = []
        sync_name = result.sync_name
        try:
            if isinstance(previous, NotGiven):
                previous = previous_run(store, sync_name, result.run_id)
            index = self._load_index(store, sync_name)
            configured = {rule.name for rule in self.rules}
            judged: list[tuple[Rule, Verdict]] = []
            for rule in self.rules:
                verdict = self._check(rule, result, previous, outcomes)
                if verdict is not None:
                    judged.append((rule, verdict))
            carrier, covered = self._group(judged, result, store)
            for rule, verdict in judged:
                if carrier is not None and rule.name in covered:
                    self._cover(rule, verdict, carrier.name, result, store)
                    continue
                if rule is carrier and covered:
                    verdict = _naming(verdict, [(r, v) for r, v in judged if r.name in covered])
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

    def evaluate_latest(self, sync: RecordedSync) -> list[AlertOutcome]:
        """Evaluate the latest run of ``sync`` as recorded in its state store, whether
        ``sync.run()`` returned or raised: a run that fails before sending anything (the
        Management API down during the pre-flight, a misspelled column) raises its error, not
        a result, but its record is saved first. Call it in a ``finally:``::

            try:
                result = sync.run(rows)
            finally:
                alerts.evaluate_latest(sync)

        Rules judge the recorded counts, status and error (the history keeps no row details).
        Evaluating the same run twice tells no one twice. Never raises, like :meth:`evaluate`;
        with no finished run recorded, or when the latest was interrupted (Ctrl-C or a
        cancelled task), it returns ``[]``.
        """
        try:
            record = latest_run(sync.state, sync.name)
        except Exception as exc:  # alerting must never break the job it reports on
            error = self._scrub(f"{type(exc).__name__}: {exc}")
            logger.error("alerts for sync %r could not read its history: %s", sync.name, error)
            return [
                AlertOutcome(
                    sync_name=sync.name,
                    run_id="",
                    rule="",
                    severity="error",
                    action="check",
                    sink="",
                    ok=False,
                    error=error,
                )
            ]
        if record is None:
            logger.info("alerts for sync %r: no finished run recorded yet", sync.name)
            return []
        if record.status == "aborted" and (record.error or "").startswith("interrupted"):
            # Like Sync(alerts=...): nobody needs paging for an operator's own Ctrl-C.
            logger.info("alerts for sync %r: run %s was interrupted", sync.name, record.run_id)
            return []
        return self.evaluate(result_of(record), sync.state)

    async def aevaluate_latest(self, sync: RecordedSync) -> list[AlertOutcome]:
        """The coroutine twin of :meth:`evaluate_latest` (sinks run in a worker thread)."""
        return await asyncio.to_thread(self.evaluate_latest, sync)

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

    def _group(
        self, judged: list[tuple[Rule, Verdict]], result: SyncResult, store: StateStore
    ) -> tuple[Rule | None, set[str]]:
        """One cause, one alert: the rule that carries this run's alert (the most severe of the
        failing rules, the first configured on a tie) and the failing rules it covers.

        A failing rule is covered, and sends nothing of its own, when
        - the run failed or was aborted: its other numbers (rejections, rows read, duration)
          are symptoms of that failure;
        - it starts failing on the same run as the carrier: one alert names both;
        - or it was covered on the previous run and still is (until the carrier recovers,
          when it alerts on its own if it still fails).
        A rule that starts failing on a finished run while another alert is already open is
        news of its own.
        """
        failing = [rule for rule, verdict in judged if verdict.failing]
        if len(failing) < 2:
            return (failing[0] if failing else None), set()
        carrier = max(failing, key=lambda rule: _rank(rule.severity))  # first on a tie
        stored = {
            rule.name: self._load_state(store, result.sync_name, rule.name) for rule in failing
        }

        def alerted(name: str) -> bool:  # already has an alert of its own out
            state = stored[name]
            return state is not None and state.failing and state.covered_by is None

        def still_covered(name: str) -> bool:
            state = stored[name]
            return state is not None and state.failing and state.covered_by is not None

        broken = result.status in ("failed", "aborted")
        together = not alerted(carrier.name)
        covered = {
            rule.name
            for rule in failing
            if rule is not carrier
            and (broken or still_covered(rule.name) or (together and not alerted(rule.name)))
        }
        return carrier, covered

    def _cover(
        self, rule: Rule, verdict: Verdict, carrier: str, result: SyncResult, store: StateStore
    ) -> None:
        """Record that ``rule`` fails under ``carrier``'s alert: no delivery; sinks told of an
        earlier alert of its own stay open, to hear its resolve."""
        stored = self._load_state(store, result.sync_name, rule.name)
        names = {sink.name for sink in self.sinks}
        new = RuleState(
            failing=True,
            open=tuple(sorted(set(stored.open) & names)) if stored else (),
            severity=rule.severity,
            since=stored.since if stored and stored.failing and stored.since else result.run_id,
            message=verdict.message,
            covered_by=carrier,
        )
        if new != stored:
            store.set_meta(result.sync_name, STATE_PREFIX + rule.name, new.to_json())
        logger.info(
            "alert rule %r of sync %r fails too; reported in the %r alert",
            rule.name,
            result.sync_name,
            carrier,
        )

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


def _naming(verdict: Verdict, covered: list[tuple[Rule, Verdict]]) -> Verdict:
    """The carrier's verdict, its message naming the rules its alert covers."""
    also = ", ".join(f"{rule.name} ({v.message})" for rule, v in covered)
    return attrs.evolve(
        verdict,
        message=f"{verdict.message}. Also failing, not alerted separately: {also}",
        details={**verdict.details, "also_failing": [rule.name for rule, _ in covered]},
    )


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
