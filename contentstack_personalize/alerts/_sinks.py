"""Alert sinks: where alerts go. Slack, PagerDuty, e-mail (SMTP), SMS (Twilio), a signed
generic webhook, and any Python callable.

This module owns delivery only: a sink's :meth:`send` turns one :class:`Alert` into one request
(or message) and raises :class:`AlertDeliveryError` when it is not accepted. Deciding *when* to
send (once on trigger, once on recovery) is :mod:`._engine`'s job.

HTTP sinks use httpx with a timeout and TLS verification on; pass ``http_client=`` or
``transport=`` to route them elsewhere (tests, proxies). Secrets (webhook URLs, routing keys,
passwords, auth tokens) never appear in a sink's repr, in log records or in error messages.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import inspect
import ipaddress
import json
import logging
import smtplib
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from email.message import EmailMessage
from typing import Any, Literal, Protocol, runtime_checkable

import httpx

from .._http import USER_AGENT, Attempt, RetryPolicy, scrub, send_with_retries
from ..errors import ConfigurationError
from ._records import Alert, AlertDeliveryError, redact_url
from ._rules import SEVERITIES, Severity

__all__ = [
    "CallableSink",
    "Email",
    "PagerDuty",
    "Sink",
    "SlackWebhook",
    "TwilioSMS",
    "Webhook",
    "sign_body",
    "verify_signature",
]

logger = logging.getLogger("contentstack_personalize.alerts")

DEFAULT_TIMEOUT = 10.0
_USER_AGENT = USER_AGENT

#: Alert deliveries are retried only when the receiver surely did not act (no connection, 429,
#: 503), so that a slow answer never posts the same alert twice; one quick retry at most.
SINK_RETRY = RetryPolicy(
    max_attempts=2,
    initial_delay=0.25,
    retry_statuses=frozenset({429, 503}),
    retry_after_send=False,
    max_retry_after=10.0,
)
_MAX_ERROR_BODY = 300


@runtime_checkable
class Sink(Protocol):
    """What the alert engine needs from a sink: a stable ``name`` (unique among an
    :class:`Alerts`' sinks; it keys which sinks were told about an open alert), the lowest
    ``min_severity`` it wants, and ``send`` (raise on failure).

    Example::

        class Teams:
            name = "teams"
            min_severity = "warning"

            def send(self, alert: Alert) -> None:
                httpx.post(TEAMS_URL, json={"text": alert.text()}).raise_for_status()
    """

    name: str
    min_severity: Severity

    def send(self, alert: Alert) -> None:
        """Deliver ``alert``; raise (ideally :class:`AlertDeliveryError`) if it was not."""
        ...


# ---------------------------------------------------------------------------------------------
# Keep secret-bearing URLs out of httpx's own "HTTP Request: POST <url>" log line
# ---------------------------------------------------------------------------------------------


class _SecretFilter(logging.Filter):
    """Rewrites records of the ``httpx`` logger that contain a registered secret."""

    def __init__(self) -> None:
        super().__init__("")
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets.update(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = tuple(self._secrets)
        if not secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is not ours to fix
            return True
        if any(s in text for s in secrets):
            record.msg = scrub(text, secrets=secrets)
            record.args = ()
        return True


_HTTPX_FILTER = _SecretFilter()
logging.getLogger("httpx").addFilter(_HTTPX_FILTER)


def _check_min_severity(value: str) -> Severity:
    for severity in SEVERITIES:
        if value == severity:
            return severity
    raise ConfigurationError(f"min_severity must be one of {', '.join(SEVERITIES)}, not {value!r}")


def _check_http_url(url: object, what: str) -> str:
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ConfigurationError(
            f"{what} must be an https:// URL; copy the full URL the provider gave you"
        )
    return url


def _url_path(url: str) -> str:
    """Everything after the host (path, query): where webhook URLs keep their keys."""
    return url.split("://", 1)[-1].partition("/")[2]


class _HttpSink:
    """Shared plumbing of the HTTP sinks: one POST, errors with secrets removed."""

    name: str
    min_severity: Severity

    def __init__(
        self,
        *,
        name: str,
        min_severity: str,
        timeout: float,
        http_client: httpx.Client | None,
        transport: httpx.BaseTransport | None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError("a sink's name must be non-empty text; pass name='...'")
        if http_client is not None and transport is not None:
            raise ConfigurationError("pass http_client= or transport=, not both")
        self.name = name
        self.min_severity = _check_min_severity(min_severity)
        self.timeout = timeout
        self._http_client = http_client
        self._transport = transport
        self._own_client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    def _secrets(self) -> list[str]:
        return []

    def _client(self) -> httpx.Client:
        """The injected client, or this sink's own: made once, kept for every send (connections
        are reused), closed by :meth:`close`."""
        if self._http_client is not None:
            return self._http_client
        with self._client_lock:
            if self._own_client is None or self._own_client.is_closed:
                self._own_client = httpx.Client(
                    transport=self._transport, timeout=self.timeout, verify=True
                )
            return self._own_client

    def close(self) -> None:
        """Close the connections this sink opened (an injected ``http_client`` stays open).

        Example: ``sink.close()`` when the process no longer sends alerts.
        """
        with self._client_lock:
            if self._own_client is not None:
                self._own_client.close()
                self._own_client = None

    def _post(self, url: str, **kwargs: Any) -> httpx.Response:
        secrets = self._secrets()
        headers = {"User-Agent": _USER_AGENT, **kwargs.pop("headers", {})}
        auth = kwargs.pop("auth", None)
        client = self._client()
        request = client.build_request("POST", url, headers=headers, timeout=self.timeout, **kwargs)

        def send(number: int) -> Attempt:
            try:
                response = client.send(request, auth=auth)
            except httpx.HTTPError as exc:
                return Attempt(error=exc)
            return Attempt(
                response,
                status=response.status_code,
                retry_after=response.headers.get("retry-after"),
            )

        last, _ = send_with_retries(
            SINK_RETRY, send, discard=lambda attempt: attempt.response.close()
        )
        if last.error is not None:
            exc = last.error
            reason = scrub(str(exc), secrets=secrets) or "no answer"
            raise AlertDeliveryError(
                f"{self.name}: could not reach {redact_url(url)} "
                f"({type(exc).__name__}: {reason}); check the network and the URL"
            ) from None
        response: httpx.Response = last.response
        if not response.is_success:
            body = scrub(response.text[:_MAX_ERROR_BODY], secrets=secrets).strip()
            raise AlertDeliveryError(
                f"{self.name}: {redact_url(url)} answered HTTP {response.status_code}"
                + (f": {body}" if body else "")
            )
        return response


# ---------------------------------------------------------------------------------------------
# Slack
# ---------------------------------------------------------------------------------------------


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_SLACK_ICONS = {
    "info": ":information_source:",
    "warning": ":warning:",
    "error": ":x:",
    "critical": ":rotating_light:",
}


class SlackWebhook(_HttpSink):
    """Posts alerts to a Slack incoming webhook (``{"text": ..., "blocks": [...]}``).

    The webhook URL is a secret (its path is the key): it is never shown in repr, logs or
    errors, which name only ``https://hooks.slack.com``.

    Example::

        SlackWebhook(os.environ["SLACK_WEBHOOK_URL"], min_severity="warning")
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "slack",
        min_severity: str = "info",
        timeout: float = DEFAULT_TIMEOUT,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            name=name,
            min_severity=min_severity,
            timeout=timeout,
            http_client=http_client,
            transport=transport,
        )
        self._url = _check_http_url(url, "the Slack webhook URL")
        _HTTPX_FILTER.add(self._secrets())

    def _secrets(self) -> list[str]:
        # The path is the key; masking only it keeps "https://hooks.slack.com/[REDACTED]".
        return [_url_path(self._url)]

    def payload(self, alert: Alert) -> dict[str, Any]:
        """The JSON body posted for ``alert``."""
        icon = ":white_check_mark:" if alert.action == "resolve" else _SLACK_ICONS[alert.severity]
        title = f"{icon} {alert.title()}"
        context = (
            f"run `{alert.run_id}` ({alert.run_status.replace('_', ' ')}) · "
            f"severity *{alert.severity}* · <!date^{int(alert.at)}^{{date_short_pretty}} "
            f"{{time}}|{alert.to_dict()['time']}>"
        )
        return {
            "text": _slack_escape(f"{alert.title()}: {alert.message}"),
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(title)}},
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": _slack_escape(alert.message)},
                },
                {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
            ],
        }

    def send(self, alert: Alert) -> None:
        """Post ``alert``; raises :class:`AlertDeliveryError` unless Slack answers 2xx."""
        self._post(self._url, json=self.payload(alert))

    def __repr__(self) -> str:
        return f"SlackWebhook(name={self.name!r}, url={redact_url(self._url)!r})"


# ---------------------------------------------------------------------------------------------
# PagerDuty
# ---------------------------------------------------------------------------------------------

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class PagerDuty(_HttpSink):
    """Sends PagerDuty Events API v2 events: ``trigger`` when a rule starts failing,
    ``resolve`` (same ``dedup_key``) when it recovers, so PagerDuty opens and closes one
    incident per sync and rule. Our severities map one to one to PagerDuty's
    (``critical``, ``error``, ``warning``, ``info``).

    ``routing_key`` is the integration key of an Events API v2 integration; it is a secret and
    never shown. ``source`` defaults to ``contentstack-personalize/<sync name>``.

    Example::

        PagerDuty(routing_key=os.environ["PAGERDUTY_ROUTING_KEY"], min_severity="error")
    """

    def __init__(
        self,
        routing_key: str,
        *,
        name: str = "pagerduty",
        min_severity: str = "info",
        source: str | None = None,
        component: str = "contentstack-personalize",
        url: str = PAGERDUTY_EVENTS_URL,
        timeout: float = DEFAULT_TIMEOUT,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            name=name,
            min_severity=min_severity,
            timeout=timeout,
            http_client=http_client,
            transport=transport,
        )
        if not isinstance(routing_key, str) or not routing_key.strip():
            raise ConfigurationError(
                "PagerDuty needs routing_key=: the integration key of an Events API v2 "
                "integration on the service to page"
            )
        self._routing_key = routing_key
        self.source = source
        self.component = component
        self.url = _check_http_url(url, "the PagerDuty events URL")

    def _secrets(self) -> list[str]:
        return [self._routing_key]

    def payload(self, alert: Alert) -> dict[str, Any]:
        """The JSON body sent for ``alert``."""
        body: dict[str, Any] = {
            "routing_key": self._routing_key,
            "event_action": alert.action,
            "dedup_key": alert.dedup_key,
        }
        if alert.action == "trigger":
            body["payload"] = {
                "summary": f"{alert.title()}: {alert.message}"[:1024],
                "source": self.source or f"contentstack-personalize/{alert.sync_name}",
                "severity": alert.severity,
                "timestamp": alert.to_dict()["time"],
                "component": self.component,
                "group": alert.sync_name,
                "class": alert.rule,
                "custom_details": {
                    "run_id": alert.run_id,
                    "run_status": alert.run_status,
                    **alert.details,
                },
            }
        return body

    def send(self, alert: Alert) -> None:
        """Enqueue the event; raises :class:`AlertDeliveryError` unless PagerDuty accepts it."""
        self._post(self.url, json=self.payload(alert))

    def __repr__(self) -> str:
        return f"PagerDuty(name={self.name!r}, routing_key='[REDACTED]')"


# ---------------------------------------------------------------------------------------------
# Generic signed webhook
# ---------------------------------------------------------------------------------------------

SIGNATURE_HEADER = "X-Signature-256"


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def sign_body(body: bytes, secret: str | bytes) -> str:
    """The ``X-Signature-256`` value for ``body``: ``sha256=`` + hex HMAC-SHA256.

    Example: ``sign_body(b'{"a":1}', "s3cret")`` -> ``"sha256=5b0c..."``
    """
    digest = hmac.new(_secret_bytes(secret), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(body: bytes, header: str | None, secret: str | bytes) -> bool:
    """Whether ``header`` (the received ``X-Signature-256``) signs ``body`` (the raw bytes,
    before any JSON parsing) with ``secret``. Compares in constant time.

    Example::

        if not verify_signature(request.body, request.headers.get("X-Signature-256"), SECRET):
            return 401
    """
    if not header:
        return False
    return hmac.compare_digest(sign_body(body, secret), header.strip())


class Webhook(_HttpSink):
    """POSTs every alert as JSON (:meth:`Alert.to_dict`) to your URL. With ``secret=`` each
    request carries ``X-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`` so the
    receiver can check it came from you (see :func:`verify_signature`).

    The URL is shown only as scheme and host; the secret is never shown.

    Example::

        Webhook("https://ops.example.com/hooks/personalize", secret=os.environ["HOOK_SECRET"])
    """

    def __init__(
        self,
        url: str,
        *,
        secret: str | bytes | None = None,
        name: str = "webhook",
        min_severity: str = "info",
        headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            name=name,
            min_severity=min_severity,
            timeout=timeout,
            http_client=http_client,
            transport=transport,
        )
        self._url = _check_http_url(url, "the webhook URL")
        if secret is not None and not secret:
            raise ConfigurationError("secret= must not be empty (or leave it out to not sign)")
        self._secret = secret
        self._headers = dict(headers or {})
        _HTTPX_FILTER.add(self._secrets())

    def _secrets(self) -> list[str]:
        out = [_url_path(self._url)]
        if isinstance(self._secret, str):
            out.append(self._secret)
        elif self._secret is not None:
            out.append(self._secret.decode("utf-8", "replace"))
        return out

    def body(self, alert: Alert) -> bytes:
        """The exact bytes posted (and signed) for ``alert``."""
        return json.dumps(
            alert.to_dict(), separators=(",", ":"), sort_keys=True, ensure_ascii=False
        ).encode("utf-8")

    def send(self, alert: Alert) -> None:
        """Post ``alert``; raises :class:`AlertDeliveryError` unless the receiver answers 2xx."""
        body = self.body(alert)
        headers = {**self._headers, "Content-Type": "application/json"}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign_body(body, self._secret)
        self._post(self._url, content=body, headers=headers)

    def __repr__(self) -> str:
        signed = ", secret='[REDACTED]'" if self._secret is not None else ""
        return f"Webhook(name={self.name!r}, url={redact_url(self._url)!r}{signed})"


# ---------------------------------------------------------------------------------------------
# SMS through Twilio
# ---------------------------------------------------------------------------------------------

TWILIO_API_URL = "https://api.twilio.com"
_SMS_MAX = 1600  # Twilio's limit on a message body


def _recipients(to: str | Sequence[str], what: str) -> tuple[str, ...]:
    items = (to,) if isinstance(to, str) else tuple(to)
    if not items or not all(isinstance(t, str) and t.strip() for t in items):
        raise ConfigurationError(f"{what} needs at least one recipient in to=")
    return items


class TwilioSMS(_HttpSink):
    """Texts alerts through Twilio's REST API: one ``POST /2010-04-01/Accounts/{AccountSid}/
    Messages.json`` (form fields ``To``, ``From``, ``Body``; HTTP basic auth
    ``AccountSid:AuthToken``) per recipient. ``sender`` is a Twilio number (``+15005550006``)
    or a Messaging Service SID (``MG...``). The auth token is never shown.

    Example::

        TwilioSMS(account_sid="AC...", auth_token=os.environ["TWILIO_AUTH_TOKEN"],
                  sender="+15005550006", to=["+447700900123"], min_severity="critical")
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        sender: str,
        to: str | Sequence[str],
        name: str = "sms",
        min_severity: str = "info",
        base_url: str = TWILIO_API_URL,
        timeout: float = DEFAULT_TIMEOUT,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            name=name,
            min_severity=min_severity,
            timeout=timeout,
            http_client=http_client,
            transport=transport,
        )
        if not isinstance(account_sid, str) or not account_sid.strip():
            raise ConfigurationError("TwilioSMS needs account_sid= (it starts with 'AC')")
        if not isinstance(auth_token, str) or not auth_token:
            raise ConfigurationError("TwilioSMS needs auth_token= (from the Twilio console)")
        if not isinstance(sender, str) or not sender.strip():
            raise ConfigurationError("TwilioSMS needs sender=: a Twilio number or MG... SID")
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.sender = sender
        self.to = _recipients(to, "TwilioSMS")
        self.base_url = _check_http_url(base_url, "base_url").rstrip("/")

    def _secrets(self) -> list[str]:
        return [self._auth_token]

    @property
    def url(self) -> str:
        """The Messages resource of the account."""
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def message(self, alert: Alert) -> str:
        """The text sent for ``alert`` (at most 1,600 characters)."""
        return f"{alert.title()}: {alert.message}"[:_SMS_MAX]

    def send(self, alert: Alert) -> None:
        """Text every recipient; raises :class:`AlertDeliveryError` naming those that failed
        (the others still got it)."""
        body = self.message(alert)
        field = "MessagingServiceSid" if self.sender.startswith("MG") else "From"
        failures: list[str] = []
        for number in self.to:
            try:
                self._post(
                    self.url,
                    data={"To": number, field: self.sender, "Body": body},
                    auth=(self.account_sid, self._auth_token),
                )
            except AlertDeliveryError as exc:
                failures.append(f"to {number}: {exc}")
        if failures:
            raise AlertDeliveryError("; ".join(failures))

    def __repr__(self) -> str:
        return (
            f"TwilioSMS(name={self.name!r}, account_sid={self.account_sid!r}, "
            f"auth_token='[REDACTED]', to={list(self.to)!r})"
        )


# ---------------------------------------------------------------------------------------------
# E-mail over SMTP
# ---------------------------------------------------------------------------------------------

Security = Literal["starttls", "ssl", "none"]
_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Email:
    """E-mails alerts over SMTP with smtplib.

    ``security`` is ``"starttls"`` (default; port 587), ``"ssl"`` (implicit TLS; port 465) or
    ``"none"`` (port 25; only for a relay you trust). Certificates are verified (pass
    ``ssl_context=`` for a private CA). A connection that was asked for STARTTLS never falls
    back to plain text, and a password is never sent unencrypted except to a loopback host.
    The password is never shown.

    Example::

        Email(host="smtp.example.com", username="alerts@example.com",
              password=os.environ["SMTP_PASSWORD"], sender="alerts@example.com",
              to=["data-team@example.com"])
    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        sender: str,
        to: str | Sequence[str],
        username: str | None = None,
        password: str | None = None,
        security: Security = "starttls",
        name: str = "email",
        min_severity: str = "info",
        subject_prefix: str = "[contentstack-personalize]",
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not isinstance(host, str) or not host:
            raise ConfigurationError("Email needs host=: the SMTP server to send through")
        if security not in _DEFAULT_PORTS:
            raise ConfigurationError(
                f"security must be 'starttls', 'ssl' or 'none', not {security!r}"
            )
        if (username is None) != (password is None):
            raise ConfigurationError("pass both username= and password= (or neither)")
        if password is not None and security == "none" and not _is_loopback(host):
            raise ConfigurationError(
                "refusing to send an SMTP password unencrypted: use security='starttls' or "
                "security='ssl'"
            )
        if not isinstance(sender, str) or not sender.strip():
            raise ConfigurationError("Email needs sender=: the From address")
        if not isinstance(name, str) or not name:
            raise ConfigurationError("a sink's name must be non-empty text; pass name='...'")
        self.name = name
        self.min_severity = _check_min_severity(min_severity)
        self.host = host
        self.security: Security = security
        self.port = port if port is not None else _DEFAULT_PORTS[security]
        self.sender = sender
        self.to = _recipients(to, "Email")
        self.username = username
        self._password = password
        self.subject_prefix = subject_prefix
        self.timeout = timeout
        self._ssl_context = ssl_context

    def message(self, alert: Alert) -> EmailMessage:
        """The e-mail sent for ``alert``."""
        msg = EmailMessage()
        subject = f"{alert.title()}: {alert.message}"
        msg["Subject"] = f"{self.subject_prefix} {subject}".strip()[:250]
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Date"] = email.utils.formatdate(alert.at, usegmt=True)
        msg["Message-ID"] = email.utils.make_msgid(domain="contentstack-personalize")
        lines = [alert.text(), ""]
        if alert.details:
            lines.append("Details:")
            lines.extend(f"  {key}: {value}" for key, value in alert.details.items())
            lines.append("")
        lines.append(f"Alert key: {alert.dedup_key}")
        msg.set_content("\n".join(lines) + "\n")
        return msg

    def send(self, alert: Alert) -> None:
        """Send the e-mail; raises :class:`AlertDeliveryError` if the server does not take it."""
        msg = self.message(alert)
        context = self._ssl_context or ssl.create_default_context()
        where = f"{self.host}:{self.port}"
        try:
            smtp: smtplib.SMTP
            if self.security == "ssl":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=context)  # raises rather than fall back to plain
                    smtp.ehlo()
                if self.username is not None and self._password is not None:
                    smtp.login(self.username, self._password)
                refused = smtp.send_message(msg)
        except (smtplib.SMTPException, OSError) as exc:
            reason = scrub(str(exc), secrets=[self._password]) or "no answer"
            raise AlertDeliveryError(
                f"{self.name}: SMTP server {where} did not take the message "
                f"({type(exc).__name__}: {reason})"
            ) from None
        if refused:
            raise AlertDeliveryError(
                f"{self.name}: SMTP server {where} refused recipients {sorted(refused)}"
            )

    def __repr__(self) -> str:
        auth = f", username={self.username!r}, password='[REDACTED]'" if self.username else ""
        return (
            f"Email(name={self.name!r}, host={self.host!r}, port={self.port}, "
            f"security={self.security!r}{auth}, to={list(self.to)!r})"
        )


# ---------------------------------------------------------------------------------------------
# Any callable
# ---------------------------------------------------------------------------------------------


def _run_awaitable(awaitable: Awaitable[Any]) -> Any:
    """Run a coroutine to completion from synchronous code, even under a running loop."""

    async def main() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(main())
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="personalize-alert-callable")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


class CallableSink:
    """Calls ``fn(alert)`` for every alert; ``fn`` may be a plain function or a coroutine
    function. Any exception it raises is a failed delivery (logged, reported, retried next
    run), never a failed sync. :class:`Alerts` wraps bare callables in it for you.

    Example::

        alerts = Alerts(rules=[RunFailed()], sinks=[lambda alert: log.error(alert.text())])
        # or, to name it: CallableSink(notify_ops, name="ops")
    """

    def __init__(
        self,
        fn: Callable[[Alert], Any],
        *,
        name: str | None = None,
        min_severity: str = "info",
    ) -> None:
        if not callable(fn):
            raise ConfigurationError(f"a sink must be callable, not {type(fn).__name__}")
        self.fn = fn
        qualname = getattr(fn, "__qualname__", None) or type(fn).__name__
        self.name = name or qualname.rsplit("<locals>.", 1)[-1]
        self.min_severity = _check_min_severity(min_severity)

    def send(self, alert: Alert) -> None:
        """Call the function (and await its result if it is awaitable)."""
        value = self.fn(alert)
        if inspect.isawaitable(value):
            _run_awaitable(value)

    def __repr__(self) -> str:
        return f"CallableSink(name={self.name!r})"
