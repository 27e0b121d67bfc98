"""Each HTTP sink's exact request (through respx), its failures, and webhook signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from contentstack_personalize.alerts import (
    Alert,
    AlertDeliveryError,
    Alerts,
    PagerDuty,
    RunFailed,
    SlackWebhook,
    TwilioSMS,
    Webhook,
    sign_body,
    verify_signature,
)
from contentstack_personalize.errors import ConfigurationError
from contentstack_personalize.sync import MemoryState

from .conftest import failed, make_result

SLACK_URL = "https://hooks.slack.com/services/T000/B000/slacksecretXYZ"
HOOK_URL = "https://ops.example.com/hooks/personalize?key=hookkeyXYZ"


def alert(action: str = "trigger", severity: str = "critical") -> Alert:
    return Alert(
        sync_name="users",
        rule="run_failed",
        severity=severity,  # type: ignore[arg-type]
        action=action,  # type: ignore[arg-type]
        message="run r1 failed: <401> & more",
        run_id="r1",
        run_status="failed",
        at=1_700_000_000.0,
        dedup_key="contentstack-personalize/users/run_failed",
        details={"read": 10, "rejected": 10},
    )


# ---------------------------------------------------------------------------------------------
# Slack
# ---------------------------------------------------------------------------------------------


@respx.mock(assert_all_called=True)
def test_slack_posts_text_and_blocks(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(SLACK_URL).mock(return_value=httpx.Response(200, text="ok"))
    SlackWebhook(SLACK_URL).send(alert())
    request = route.calls.last.request
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("contentstack-personalize-python/")
    body = json.loads(request.content)
    assert (
        body["text"] == "[CRITICAL] sync 'users': run_failed: run r1 failed: &lt;401&gt; &amp; more"
    )
    assert [b["type"] for b in body["blocks"]] == ["section", "section", "context"]
    assert body["blocks"][0]["text"]["text"].startswith(":rotating_light: [CRITICAL]")
    assert body["blocks"][1]["text"] == {
        "type": "mrkdwn",
        "text": "run r1 failed: &lt;401&gt; &amp; more",
    }
    assert "run `r1`" in body["blocks"][2]["elements"][0]["text"]


@respx.mock(assert_all_called=True)
def test_slack_resolve_is_marked_resolved(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(SLACK_URL).mock(return_value=httpx.Response(200, text="ok"))
    SlackWebhook(SLACK_URL).send(alert("resolve"))
    body = json.loads(route.calls.last.request.content)
    assert body["text"].startswith("[RESOLVED] sync 'users': run_failed")
    assert body["blocks"][0]["text"]["text"].startswith(":white_check_mark:")


@respx.mock
def test_slack_error_names_the_host_not_the_url(respx_mock: respx.MockRouter) -> None:
    respx_mock.post(SLACK_URL).mock(return_value=httpx.Response(404, text="no_service"))
    with pytest.raises(AlertDeliveryError) as info:
        SlackWebhook(SLACK_URL).send(alert())
    message = str(info.value)
    assert message == "slack: https://hooks.slack.com answered HTTP 404: no_service"


# ---------------------------------------------------------------------------------------------
# PagerDuty
# ---------------------------------------------------------------------------------------------


@respx.mock(assert_all_called=True)
def test_pagerduty_trigger_event(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post("https://events.pagerduty.com/v2/enqueue").mock(
        return_value=httpx.Response(202, json={"status": "success", "dedup_key": "k"})
    )
    PagerDuty("pdkeyXYZ").send(alert(severity="error"))
    request = route.calls.last.request
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "routing_key": "pdkeyXYZ",
        "event_action": "trigger",
        "dedup_key": "contentstack-personalize/users/run_failed",
        "payload": {
            "summary": "[ERROR] sync 'users': run_failed: run r1 failed: <401> & more",
            "source": "contentstack-personalize/users",
            "severity": "error",
            "timestamp": "2023-11-14T22:13:20+00:00",
            "component": "contentstack-personalize",
            "group": "users",
            "class": "run_failed",
            "custom_details": {"run_id": "r1", "run_status": "failed", "read": 10, "rejected": 10},
        },
    }


@pytest.mark.parametrize("severity", ["critical", "error", "warning", "info"])
@respx.mock
def test_pagerduty_severity_mapping(respx_mock: respx.MockRouter, severity: str) -> None:
    route = respx_mock.post("https://events.pagerduty.com/v2/enqueue").mock(
        return_value=httpx.Response(202)
    )
    PagerDuty("k", source="etl-box-1").send(alert(severity=severity))
    payload = json.loads(route.calls.last.request.content)["payload"]
    assert payload["severity"] == severity
    assert payload["source"] == "etl-box-1"


@respx.mock(assert_all_called=True)
def test_pagerduty_resolve_event_has_the_same_dedup_key(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post("https://events.pagerduty.com/v2/enqueue").mock(
        return_value=httpx.Response(202)
    )
    PagerDuty("pdkeyXYZ").send(alert("resolve"))
    assert json.loads(route.calls.last.request.content) == {
        "routing_key": "pdkeyXYZ",
        "event_action": "resolve",
        "dedup_key": "contentstack-personalize/users/run_failed",
    }


@respx.mock
def test_pagerduty_rejection_is_reported_without_the_key(respx_mock: respx.MockRouter) -> None:
    respx_mock.post("https://events.pagerduty.com/v2/enqueue").mock(
        return_value=httpx.Response(
            400, json={"status": "invalid event", "message": "bad routing_key pdkeyXYZ"}
        )
    )
    with pytest.raises(AlertDeliveryError) as info:
        PagerDuty("pdkeyXYZ").send(alert())
    assert "HTTP 400" in str(info.value)
    assert "invalid event" in str(info.value)
    assert "pdkeyXYZ" not in str(info.value)


def test_pagerduty_needs_a_routing_key() -> None:
    with pytest.raises(ConfigurationError, match="routing_key"):
        PagerDuty("")


# ---------------------------------------------------------------------------------------------
# Twilio
# ---------------------------------------------------------------------------------------------

TWILIO_URL = "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"


@respx.mock(assert_all_called=True)
def test_twilio_posts_a_form_with_basic_auth_per_recipient(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(TWILIO_URL).mock(return_value=httpx.Response(201, json={"sid": "SM1"}))
    sms = TwilioSMS("AC123", "twiliotokenXYZ", sender="+15005550006", to=["+4470001", "+4470002"])
    sms.send(alert())
    assert route.call_count == 2
    for call, number in zip(route.calls, ["+4470001", "+4470002"], strict=True):
        request = call.request
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        expected = base64.b64encode(b"AC123:twiliotokenXYZ").decode()
        assert request.headers["authorization"] == f"Basic {expected}"
        assert parse_qs(request.content.decode()) == {
            "To": [number],
            "From": ["+15005550006"],
            "Body": ["[CRITICAL] sync 'users': run_failed: run r1 failed: <401> & more"],
        }


@respx.mock
def test_twilio_messaging_service_sender(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(TWILIO_URL).mock(return_value=httpx.Response(201))
    TwilioSMS("AC123", "t", sender="MG999", to="+4470001").send(alert())
    form = parse_qs(route.calls.last.request.content.decode())
    assert form["MessagingServiceSid"] == ["MG999"]
    assert "From" not in form


@respx.mock
def test_twilio_partial_failure_names_the_failed_number(respx_mock: respx.MockRouter) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        to = parse_qs(request.content.decode())["To"][0]
        if to == "+bad":
            return httpx.Response(400, json={"code": 21211, "message": "Invalid 'To' number"})
        return httpx.Response(201)

    route = respx_mock.post(TWILIO_URL).mock(side_effect=answer)
    sms = TwilioSMS("AC123", "twiliotokenXYZ", sender="+1500", to=["+bad", "+good"])
    with pytest.raises(AlertDeliveryError) as info:
        sms.send(alert())
    assert route.call_count == 2  # the good number still got it
    assert "to +bad" in str(info.value) and "21211" in str(info.value)
    assert "+good" not in str(info.value)
    assert "twiliotokenXYZ" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# Generic webhook
# ---------------------------------------------------------------------------------------------


@respx.mock(assert_all_called=True)
def test_webhook_body_and_signature_verify(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(HOOK_URL).mock(return_value=httpx.Response(204))
    Webhook(HOOK_URL, secret="hooksecretXYZ", headers={"X-Team": "data"}).send(alert())
    request = route.calls.last.request
    raw = request.content
    assert json.loads(raw) == alert().to_dict()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-team"] == "data"
    # What a receiver does, with nothing but hashlib/hmac:
    expected = "sha256=" + hmac.new(b"hooksecretXYZ", raw, hashlib.sha256).hexdigest()
    assert request.headers["x-signature-256"] == expected
    assert verify_signature(raw, request.headers["x-signature-256"], "hooksecretXYZ")
    assert not verify_signature(raw, request.headers["x-signature-256"], "wrong secret")
    assert not verify_signature(raw + b" ", request.headers["x-signature-256"], "hooksecretXYZ")
    assert not verify_signature(raw, None, "hooksecretXYZ")


@respx.mock
def test_unsigned_webhook_has_no_signature_header(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(HOOK_URL).mock(return_value=httpx.Response(200))
    Webhook(HOOK_URL).send(alert())
    assert "x-signature-256" not in route.calls.last.request.headers


def test_sign_body_known_value() -> None:
    # From: printf '{"a":1}' | openssl dgst -sha256 -hmac s3cret
    expected = "sha256=5910e62016ef5034272c926c27071992a465c2335cecf41851bda071577f4f6d"
    assert sign_body(b'{"a":1}', "s3cret") == expected
    assert sign_body(b'{"a":1}', b"s3cret") == expected
    assert verify_signature(b'{"a":1}', expected, "s3cret")


# ---------------------------------------------------------------------------------------------
# Failures: HTTP 500, timeouts, connection errors never fail the run
# ---------------------------------------------------------------------------------------------


@respx.mock
def test_http_500_and_timeout_are_reported_not_raised(respx_mock: respx.MockRouter) -> None:
    respx_mock.post(SLACK_URL).mock(return_value=httpx.Response(500, text="internal"))
    respx_mock.post("https://events.pagerduty.com/v2/enqueue").mock(
        side_effect=httpx.ReadTimeout("timed out")
    )
    respx_mock.post(HOOK_URL).mock(side_effect=httpx.ConnectError("connection refused"))
    alerts = Alerts(
        rules=[RunFailed()],
        sinks=[
            SlackWebhook(SLACK_URL),
            PagerDuty("pdkeyXYZ"),
            Webhook(HOOK_URL, secret="hooksecretXYZ"),
        ],
    )
    outcomes = alerts.evaluate(failed(), MemoryState(), previous=None)
    errors = {o.sink: o.error for o in outcomes}
    assert [o.ok for o in outcomes] == [False, False, False]
    assert errors["slack"] == "slack: https://hooks.slack.com answered HTTP 500: internal"
    assert errors["pagerduty"] == (
        "pagerduty: could not reach https://events.pagerduty.com (ReadTimeout: timed out); "
        "check the network and the URL"
    )
    assert errors["webhook"] is not None and "ConnectError" in errors["webhook"]
    assert "https://ops.example.com" in errors["webhook"]


def test_a_real_timeout_against_a_silent_local_server() -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts connections but never answers
    port = listener.getsockname()[1]
    try:
        sink = Webhook(f"http://127.0.0.1:{port}/hook", timeout=0.2)
        outcomes = Alerts(rules=[RunFailed()], sinks=[sink]).evaluate(
            failed(), MemoryState(), previous=None
        )
    finally:
        listener.close()
    assert len(outcomes) == 1 and not outcomes[0].ok
    assert "ReadTimeout" in (outcomes[0].error or "")


def test_injected_http_client_is_used_and_not_closed() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        sink = SlackWebhook(SLACK_URL, http_client=client)
        sink.send(alert())
        sink.send(alert("resolve"))
        assert not client.is_closed
    assert len(seen) == 2


def test_injected_transport_is_used() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(202)

    transport = httpx.MockTransport(handler)
    PagerDuty("k", transport=transport).send(alert())
    assert seen == ["https://events.pagerduty.com/v2/enqueue"]


def test_sink_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="https://"):
        SlackWebhook("hooks.slack.com/services/x")
    with pytest.raises(ConfigurationError, match="min_severity"):
        SlackWebhook(SLACK_URL, min_severity="loud")
    with pytest.raises(ConfigurationError, match="not both"):
        SlackWebhook(SLACK_URL, http_client=httpx.Client(), transport=httpx.HTTPTransport())
    with pytest.raises(ConfigurationError, match="recipient"):
        TwilioSMS("AC1", "t", sender="+1", to=[])
    with pytest.raises(ConfigurationError, match="secret"):
        Webhook(HOOK_URL, secret="")


def test_results_and_alerts_round_trip_to_json() -> None:
    outcomes = Alerts(rules=[RunFailed()], sinks=[lambda a: None]).evaluate(
        failed(), MemoryState(), previous=None
    )
    assert json.loads(json.dumps([o.to_dict() for o in outcomes]))[0]["action"] == "trigger"
    assert json.loads(json.dumps(alert().to_dict()))["time"] == "2023-11-14T22:13:20+00:00"
    assert make_result().ok
