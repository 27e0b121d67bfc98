"""The e-mail sink against a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy

import pytest

from contentstack_personalize.alerts import Alert, AlertDeliveryError, Alerts, Email, RunFailed
from contentstack_personalize.errors import ConfigurationError
from contentstack_personalize.sync import MemoryState

from .conftest import SMTPServer, failed, make_result, record_of


def test_email_is_delivered_with_subject_body_and_recipients(smtp_server: SMTPServer) -> None:
    sink = Email(
        "127.0.0.1",
        smtp_server.port,
        security="none",
        sender="alerts@example.com",
        to=["data@example.com", "ops@example.com"],
    )
    store = MemoryState()
    result = failed(error="AuthenticationError: HTTP 401")
    store.save_run(record_of(result))
    outcomes = Alerts(rules=[RunFailed(severity="critical")], sinks=[sink]).evaluate(result, store)
    assert [(o.sink, o.ok) for o in outcomes] == [("email", True)]

    (received,) = smtp_server.messages
    assert received.mail_from == "alerts@example.com"
    assert received.rcpt_to == ["data@example.com", "ops@example.com"]
    assert received.auth is None
    msg = email.message_from_bytes(received.data, policy=email.policy.default)
    assert msg["From"] == "alerts@example.com"
    assert msg["To"] == "data@example.com, ops@example.com"
    assert msg["Subject"].startswith(
        "[contentstack-personalize] [CRITICAL] sync 'users': run_failed"
    )
    body = msg.get_content()
    assert "Critical: run_failed on sync 'users'." in body
    assert "AuthenticationError: HTTP 401" in body
    assert "Alert key: contentstack-personalize/users/run_failed" in body
    assert "rejected: 100" in body
    assert "STARTTLS" not in smtp_server.commands


def test_email_logs_in_when_given_credentials(smtp_server: SMTPServer) -> None:
    smtp_server.auth_required = True
    smtp_server.credentials = ("alerts@example.com", "smtppassXYZ")
    sink = Email(
        "127.0.0.1",
        smtp_server.port,
        security="none",
        username="alerts@example.com",
        password="smtppassXYZ",
        sender="alerts@example.com",
        to="data@example.com",
    )
    outcomes = Alerts(rules=[RunFailed()], sinks=[sink]).evaluate(
        make_result(status="aborted", error="too many rejections"), MemoryState(), previous=None
    )
    assert [o.ok for o in outcomes] == [True]
    assert smtp_server.messages[0].auth == ("alerts@example.com", "smtppassXYZ")


def test_wrong_password_is_reported_without_the_password(smtp_server: SMTPServer) -> None:
    smtp_server.auth_required = True
    smtp_server.credentials = ("alerts@example.com", "the-right-one")
    sink = Email(
        "127.0.0.1",
        smtp_server.port,
        security="none",
        username="alerts@example.com",
        password="smtppassXYZ",
        sender="alerts@example.com",
        to="data@example.com",
    )
    outcomes = Alerts(rules=[RunFailed()], sinks=[sink]).evaluate(
        failed(), MemoryState(), previous=None
    )
    (outcome,) = outcomes
    assert not outcome.ok
    assert outcome.error is not None
    assert "SMTPAuthenticationError" in outcome.error
    assert f"127.0.0.1:{smtp_server.port}" in outcome.error
    assert "smtppassXYZ" not in outcome.error
    assert smtp_server.messages == []


def test_starttls_never_falls_back_to_plain_text(smtp_server: SMTPServer) -> None:
    # The test server does not offer STARTTLS: the sink must refuse to send, not downgrade.
    sink = Email("127.0.0.1", smtp_server.port, sender="a@example.com", to="b@example.com")
    with pytest.raises(AlertDeliveryError, match="STARTTLS"):
        sink.send(_alert())
    assert smtp_server.messages == []
    assert "MAIL" not in smtp_server.commands


def test_refused_recipient_is_a_failed_delivery(smtp_server: SMTPServer) -> None:
    smtp_server.refuse = {"nobody@example.com"}
    sink = Email(
        "127.0.0.1",
        smtp_server.port,
        security="none",
        sender="a@example.com",
        to=["b@example.com", "nobody@example.com"],
    )
    with pytest.raises(AlertDeliveryError, match=r"refused recipients \['nobody@example.com'\]"):
        sink.send(_alert())
    assert smtp_server.messages[0].rcpt_to == ["b@example.com"]


def test_nothing_listening_is_a_failed_delivery() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = Email("127.0.0.1", port, security="none", sender="a@example.com", to="b@example.com")
    with pytest.raises(AlertDeliveryError, match="did not take the message"):
        sink.send(_alert())


def test_password_in_clear_to_a_remote_host_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unencrypted"):
        Email(
            "smtp.example.com",
            security="none",
            username="u",
            password="p",
            sender="a@example.com",
            to="b@example.com",
        )
    with pytest.raises(ConfigurationError, match="both username"):
        Email("smtp.example.com", username="u", sender="a@example.com", to="b@example.com")


def test_default_ports() -> None:
    common = {"sender": "a@example.com", "to": "b@example.com"}
    assert Email("smtp.example.com", **common).port == 587  # type: ignore[arg-type]
    assert Email("smtp.example.com", security="ssl", **common).port == 465  # type: ignore[arg-type]
    assert Email("smtp.example.com", security="none", **common).port == 25  # type: ignore[arg-type]


def _alert() -> Alert:
    return Alert(
        sync_name="users",
        rule="run_failed",
        severity="error",
        action="trigger",
        message="run r1 failed",
        run_id="r1",
        run_status="failed",
        at=1_700_000_000.0,
        dedup_key="contentstack-personalize/users/run_failed",
    )
