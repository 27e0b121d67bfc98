"""Secrets never show up: not in repr, not in any log record (ours or httpx's), not in
outcomes, not in what the engine stores."""

from __future__ import annotations

import logging

import httpx
import pytest
import respx

from contentstack_personalize.alerts import (
    Alerts,
    Email,
    PagerDuty,
    RunFailed,
    Sink,
    SlackWebhook,
    TwilioSMS,
    Webhook,
    redact_url,
)
from contentstack_personalize.sync import MemoryState

from .conftest import SMTPServer, failed, make_result, record_of

SLACK_KEY = "SLACKMARKER7f3a9"
HOOK_KEY = "HOOKURLMARKER55b1"
HOOK_SECRET = "HOOKSECRETMARKER0c2e"
PD_KEY = "PDMARKER91d4e6"
TWILIO_TOKEN = "TWILIOMARKER3b8f"
SMTP_PASSWORD = "SMTPMARKER6a2d"
MARKERS = (SLACK_KEY, HOOK_KEY, HOOK_SECRET, PD_KEY, TWILIO_TOKEN, SMTP_PASSWORD)

SLACK_URL = f"https://hooks.slack.com/services/T0/B0/{SLACK_KEY}"
HOOK_URL = f"https://ops.example.com/hooks/{HOOK_KEY}"
TWILIO_URL = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"


def sinks(smtp_port: int) -> list[Sink]:
    return [
        SlackWebhook(SLACK_URL),
        Webhook(HOOK_URL, secret=HOOK_SECRET),
        PagerDuty(PD_KEY),
        TwilioSMS("AC1", TWILIO_TOKEN, sender="+1500", to="+4470"),
        Email(
            "127.0.0.1",
            smtp_port,
            security="none",
            username="alerts@example.com",
            password=SMTP_PASSWORD,
            sender="alerts@example.com",
            to="ops@example.com",
        ),
    ]


def assert_clean(text: str) -> None:
    for marker in MARKERS:
        assert marker not in text


def test_reprs_hide_secrets() -> None:
    all_sinks = sinks(25)
    alerts = Alerts(rules=[RunFailed()], sinks=all_sinks)
    text = repr(alerts) + "".join(repr(s) + str(s) for s in all_sinks)
    assert_clean(text)
    assert "https://hooks.slack.com" in repr(all_sinks[0])
    assert "[REDACTED]" in repr(all_sinks[2])


def test_redact_url() -> None:
    assert redact_url(SLACK_URL) == "https://hooks.slack.com"
    assert redact_url("https://user:pw@example.com:8443/x?key=1") == "https://example.com:8443"
    assert redact_url("no scheme") == "[REDACTED]"


@pytest.mark.parametrize("answer", ["ok", "error", "timeout"])
def test_no_secret_in_logs_outcomes_or_store(
    answer: str, smtp_server: SMTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    smtp_server.auth_required = True
    smtp_server.credentials = (
        ("alerts@example.com", SMTP_PASSWORD) if answer == "ok" else ("x", "y")
    )

    def reply(request: httpx.Request) -> httpx.Response:
        if answer == "timeout":
            raise httpx.ReadTimeout(f"timed out on {request.url}")
        if answer == "error":
            # A hostile or buggy server that echoes the request back in its error.
            return httpx.Response(500, text=f"bad request {request.url} {request.content!r}")
        return httpx.Response(200)

    caplog.set_level(logging.DEBUG)
    store = MemoryState()
    alerts = Alerts(rules=[RunFailed()], sinks=sinks(smtp_server.port))
    with respx.mock:
        respx.route().mock(side_effect=reply)
        for result in (failed(), make_result()):
            store.save_run(record_of(result))
            outcomes = alerts.evaluate(result, store)
            assert len(outcomes) == (5 if result.status == "failed" or answer == "ok" else 0)
            assert all(o.ok is (answer == "ok") for o in outcomes)
            for outcome in outcomes:
                assert_clean(str(outcome.to_dict()) + str(outcome))

    records = caplog.records
    assert records, "expected log records to check"
    for record in records:
        assert_clean(record.getMessage())
    assert_clean(str(store._meta))
    if answer != "timeout":
        # httpx logs each request's URL; the secret part must be masked there too.
        httpx_lines = [r.getMessage() for r in records if r.name == "httpx"]
        assert any("hooks.slack.com" in line for line in httpx_lines)
    if answer == "ok":
        assert smtp_server.messages[0].auth == ("alerts@example.com", SMTP_PASSWORD)
