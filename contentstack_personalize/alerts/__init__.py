"""Sync alerts: rules checked after every run, sinks notified once when a rule starts failing
and once when it recovers.

Example::

    from contentstack_personalize.alerts import (
        Alerts, DurationAbove, InvalidAbove, PagerDuty, RejectedAbove, RowsDropped, RunFailed,
        SlackWebhook,
    )

    alerts = Alerts(
        rules=[RunFailed(severity="critical"), RejectedAbove(percent=5),
               InvalidAbove(percent=10), RowsDropped(percent=50), DurationAbove(seconds=3600)],
        sinks=[SlackWebhook(os.environ["SLACK_WEBHOOK_URL"]),
               PagerDuty(os.environ["PAGERDUTY_ROUTING_KEY"], min_severity="error")],
    )
    sync = Sync(client, match_on="user_id", mapping=..., state="users.db", alerts=alerts)
    result = sync.run(rows)   # every run is checked, also one that raises before sending

``Rule`` here (also exported as ``AlertRule``) is the base of the alert rules; it is unrelated
to :class:`contentstack_personalize.rules.Rule`, a condition of an audience definition.

See ``docs/alerts.md``.
"""

from ._engine import (
    Alerts,
    RecordedSync,
    RuleState,
    decide,
    dedup_key,
    evaluate_alerts,
    latest_run,
    previous_run,
    result_of,
)
from ._records import Alert, AlertAction, AlertDeliveryError, AlertOutcome, redact_url
from ._rules import (
    SEVERITIES,
    AlertRule,
    DurationAbove,
    InvalidAbove,
    RejectedAbove,
    RowsDropped,
    Rule,
    RunFailed,
    Severity,
    Verdict,
)
from ._sinks import (
    CallableSink,
    Email,
    PagerDuty,
    Sink,
    SlackWebhook,
    TwilioSMS,
    Webhook,
    sign_body,
    verify_signature,
)

__all__ = [
    "SEVERITIES",
    "Alert",
    "AlertAction",
    "AlertDeliveryError",
    "AlertOutcome",
    "AlertRule",
    "Alerts",
    "CallableSink",
    "DurationAbove",
    "Email",
    "InvalidAbove",
    "PagerDuty",
    "RecordedSync",
    "RejectedAbove",
    "RowsDropped",
    "Rule",
    "RuleState",
    "RunFailed",
    "Severity",
    "Sink",
    "SlackWebhook",
    "TwilioSMS",
    "Verdict",
    "Webhook",
    "decide",
    "dedup_key",
    "evaluate_alerts",
    "latest_run",
    "previous_run",
    "redact_url",
    "result_of",
    "sign_body",
    "verify_signature",
]
