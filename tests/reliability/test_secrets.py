"""Secrets never leak: every credential is set to a unique marker, real flows run (successes
and failures), and everything they produce is scanned: ``repr``/``str`` of the objects
involved, exception messages and their chained causes, every log record at every level (with
tracebacks), exchange records, debugger records and exports, results and their exports, alert
payloads and alert delivery errors.

Each flow is a ``Scenario`` in ``SCENARIOS``: a function that runs against the emulator (or a
mock transport) and returns what it produced. Add a case by appending to the list.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contentstack_personalize import (
    AuthToken,
    OAuth,
    PersonalizeClient,
    PersonalizeError,
    exchange_code,
    login,
)
from contentstack_personalize.sync import MemoryState, Sync
from contentstack_personalize.testing import PersonalizeEmulator
from tests.sync.conftest import FAST_RETRY, make_client


def marker(kind: str) -> str:
    return f"SECRET{kind}{uuid.uuid4().hex}"


class Produced:
    """Everything a flow produced that a user, a log or a file could see."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, *items: Any) -> None:
        for item in items:
            self.texts.append(repr(item))
            self.texts.append(str(item))
            if isinstance(item, BaseException):
                self.add_exception(item)

    def add_exception(self, exc: BaseException) -> None:
        seen = 0
        current: BaseException | None = exc
        while current is not None and seen < 10:
            self.texts += [repr(current), str(current), repr(current.args)]
            for attr in ("message", "body", "code"):
                self.texts.append(repr(getattr(current, attr, None)))
            current = current.__cause__ or current.__context__
            seen += 1

    def add_json(self, data: Any) -> None:
        self.texts.append(json.dumps(data, default=repr))


Scenario = Callable[[Produced, Path], list[str]]
SCENARIOS: list[Scenario] = []


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS.append(fn)
    return fn


def hook_into(client: Any, produced: Produced) -> None:
    client.add_exchange_hook(lambda ex: produced.add_json(ex.to_dict()))


@scenario
def authtoken_client_and_sync(produced: Produced, tmp: Path) -> list[str]:
    token = marker("authtoken")
    emulator = PersonalizeEmulator(seed=1, unknown_attribute="reject")
    emulator.add_authtoken(token)
    emulator.add_attribute("plan")
    auth = AuthToken(token)
    with make_client(emulator, auth=auth) as client:
        hook_into(client, produced)
        produced.add(auth, client, client.config)
        produced.add(client.attributes.list())
        sync = Sync(
            client,
            match_on="id",
            mapping={"plan": "plan", "other": "other"},
            check_attributes=False,
        )
        result = sync.run([{"id": f"u{i}", "plan": "gold", "other": i} for i in range(5)])
        produced.add(sync, result, result.summary(), *result.rejected_rows)
        produced.add_json(result.to_dict())
        produced.add(*sync.history())
        emulator.revoke_token(token)
        with pytest.raises(PersonalizeError) as caught:
            client.attributes.list()
        produced.add(caught.value)
        with pytest.raises(PersonalizeError) as caught:
            Sync(client, match_on="id", mapping={"plan": "plan"}).run([{"id": "u", "plan": 1}])
        produced.add(caught.value)
    return [token]


@scenario
def oauth_refresh_and_refused_refresh(produced: Produced, tmp: Path) -> list[str]:
    access, refresh, secret = marker("access"), marker("refresh"), marker("clientsecret")
    emulator = PersonalizeEmulator(seed=2)
    emulator.add_oauth_token(access, expires_in=3600)
    emulator.add_refresh_token(refresh, client_id="cid")
    refreshed: list[Any] = []
    oauth = OAuth(
        access_token=access,
        refresh_token=refresh,
        client_id="cid",
        app_id="app",
        client_secret=secret,
        expires_at=0,  # expired: the first call refreshes
        on_refresh=refreshed.append,
    )
    with make_client(emulator, auth=oauth) as client:
        hook_into(client, produced)
        produced.add(oauth, client)
        produced.add(client.attributes.list())
        produced.add(oauth, oauth.tokens, *refreshed)
        new_tokens = oauth.tokens
        assert new_tokens is not None and new_tokens.access_token != access
        # The rotated refresh token is refused now: the next refresh fails.
        emulator.revoke_token(new_tokens.access_token)
        if new_tokens.refresh_token:
            emulator.revoke_token(new_tokens.refresh_token)
        with pytest.raises(PersonalizeError) as caught:
            client.attributes.list()
        produced.add(caught.value, oauth)
    secrets = [access, refresh, secret, new_tokens.access_token]
    return secrets + ([new_tokens.refresh_token] if new_tokens.refresh_token else [])


@scenario
def oauth_code_exchange(produced: Produced, tmp: Path) -> list[str]:
    code, secret = marker("code"), marker("clientsecret")
    emulator = PersonalizeEmulator(seed=3)
    emulator.add_oauth_code(code, client_id="cid", client_secret=secret, redirect_uri="http://x/cb")
    kwargs: dict[str, Any] = {
        "client_id": "cid",
        "app_id": "app",
        "redirect_uri": "http://x/cb",
        "client_secret": secret,
        "transport": emulator.transport(),
    }
    oauth = exchange_code(code=code, **kwargs)
    produced.add(oauth, oauth.tokens)
    tokens = oauth.tokens
    assert tokens is not None
    with pytest.raises(PersonalizeError) as caught:
        exchange_code(code=code, **kwargs)  # codes are single use: refused
    produced.add(caught.value)
    return [
        code,
        secret,
        tokens.access_token,
        *([tokens.refresh_token] if tokens.refresh_token else []),
    ]


@scenario
def login_success_and_wrong_password(produced: Produced, tmp: Path) -> list[str]:
    password, wrong = marker("password"), marker("wrongpassword")
    emulator = PersonalizeEmulator(seed=4)
    emulator.add_user_login("me@example.com", password)
    token = login("me@example.com", password, transport=emulator.transport())
    produced.add(token)
    with pytest.raises(PersonalizeError) as caught:
        login("me@example.com", wrong, transport=emulator.transport())
    produced.add(caught.value)
    return [password, wrong, token.token]


@scenario
def transport_failures_with_credentials(produced: Produced, tmp: Path) -> list[str]:
    token = marker("authtoken")

    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    with PersonalizeClient(
        "0" * 24,
        auth=AuthToken(token),
        transport=httpx.MockTransport(broken),
        retry=FAST_RETRY,
        read_env=False,
        management_rate_limit=None,
    ) as client:
        hook_into(client, produced)
        with pytest.raises(PersonalizeError) as caught:
            client.attributes.list()
        produced.add(caught.value)
    return [token]


def test_a_transport_error_echoing_the_headers_does_not_leak_the_token(
    tmp_path: Path, every_log: _Everything
) -> None:
    token = marker("authtoken")

    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ProxyError(f"proxy refused {dict(request.headers)}")

    produced = Produced()
    with PersonalizeClient(
        "0" * 24,
        auth=AuthToken(token),
        transport=httpx.MockTransport(broken),
        retry=FAST_RETRY,
        read_env=False,
        management_rate_limit=None,
    ) as client:
        hook_into(client, produced)
        with pytest.raises(PersonalizeError) as caught:
            client.attributes.list()
        produced.add(caught.value)
    assert not [t for t in produced.texts + every_log.lines if token in t]


def debugger_scenario(produced: Produced, tmp: Path) -> list[str]:
    from contentstack_personalize.debugger import Debugger, read_jsonl

    token = marker("authtoken")
    emulator = PersonalizeEmulator(seed=5, unknown_attribute="reject")
    emulator.add_authtoken(token)
    emulator.set_faults(server_error=0.3, seed=1)
    export = tmp / "exchanges.jsonl"
    debugger = Debugger(export=export)
    with make_client(emulator, auth=AuthToken(token)) as client:
        client.add_exchange_hook(debugger)
        client.attributes.list()
        Sync(
            client, match_on="id", mapping={"x": "x"}, raise_on_abort=False, check_attributes=False
        ).run([{"id": f"u{i}", "x": i} for i in range(20)])
        emulator.revoke_token(token)
        with pytest.raises(PersonalizeError):
            client.attributes.list()
    debugger.close()
    produced.add(debugger, debugger.summary(), debugger.stats(), *debugger.records)
    produced.texts.append(export.read_text())
    produced.add(*read_jsonl(export))
    assert debugger.seen > 20
    return [token]


def alerts_scenario(produced: Produced, tmp: Path) -> list[str]:
    from contentstack_personalize import alerts as al

    slack_key, pd_key, twilio_token = marker("slackkey"), marker("pdkey"), marker("twilio")
    hook_key, smtp_password = marker("hookkey"), marker("smtp")
    sent: list[httpx.Request] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        # Every delivery fails, echoing what it was sent: the errors must still be clean.
        return httpx.Response(500, text=f"nope {request.url} {request.content!r}")

    transport = httpx.MockTransport(endpoint)
    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    captured: list[Any] = []
    sinks: list[Any] = [
        al.SlackWebhook(f"https://hooks.slack.com/services/T0/B0/{slack_key}", transport=transport),
        al.PagerDuty(pd_key, transport=transport),
        al.Webhook(f"https://example.com/hook?key={hook_key}", transport=transport),
        al.TwilioSMS(
            "AC123", twilio_token, sender="+15005550006", to=["+15005550001"], transport=transport
        ),
        al.Email(
            "127.0.0.1",
            closed_port,
            sender="a@example.com",
            to=["b@example.com"],
            username="user",
            password=smtp_password,
            security="none",
            timeout=2,
        ),
        al.CallableSink(captured.append, name="capture"),
    ]
    alerts = al.Alerts(rules=[al.RunFailed(), al.RejectedAbove(percent=1)], sinks=sinks)
    produced.add(alerts, *sinks)
    emulator = PersonalizeEmulator(seed=6, unknown_attribute="reject")
    with make_client(emulator) as client:
        sync = Sync(client, match_on="id", mapping={"x": "x"}, state=MemoryState())
        result = sync.run([{"id": "u1", "x": 1}])
        outcomes = alerts.evaluate(result, sync.state)
    assert captured and any(not o.ok for o in outcomes)
    produced.add(*outcomes, *captured)
    for alert in captured:
        produced.add_json(alert.to_dict())
        produced.texts.append(alert.text())
    for request in sent:
        # What a sink posts is an alert payload, except where the protocol itself carries the
        # key: PagerDuty's body holds the routing key, Twilio's basic auth the auth token.
        if "pagerduty" not in request.url.host:
            produced.texts.append(request.content.decode("utf-8", "replace"))
    return [slack_key, pd_key, twilio_token, hook_key, smtp_password]


def optional_scenarios() -> Iterator[Scenario]:
    """Cases for modules other engineers are adding: included once they exist."""
    if importlib.util.find_spec("contentstack_personalize.debugger") is not None:
        yield debugger_scenario
    if importlib.util.find_spec("contentstack_personalize.alerts") is not None:
        yield alerts_scenario


SCENARIOS.extend(optional_scenarios())


class _Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # includes the traceback of exc_info
        self.lines.append(repr(record.args))


@pytest.fixture
def every_log() -> Iterator[_Everything]:
    handler = _Everything()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


@pytest.mark.parametrize("flow", SCENARIOS, ids=lambda f: f.__name__)
def test_no_secret_in_anything_a_flow_produces(
    flow: Scenario, tmp_path: Path, every_log: _Everything
) -> None:
    produced = Produced()
    secrets = [s for s in flow(produced, tmp_path) if s]
    assert secrets and produced.texts
    ours = [line for line in every_log.lines if line.startswith("contentstack_personalize")]
    assert ours or flow in (oauth_code_exchange, login_success_and_wrong_password), "no logs?"
    haystacks = {"produced": produced.texts, "logs": every_log.lines}
    for where, texts in haystacks.items():
        for text in texts:
            for secret in secrets:
                assert secret not in text, f"a secret leaked into {where}: {text[:300]}"


def test_the_scan_would_see_a_leak(tmp_path: Path, every_log: _Everything) -> None:
    """The scanner itself: a secret put where it looks is found (so the test above can fail)."""
    secret = marker("canary")
    logging.getLogger("contentstack_personalize.test").debug("token=%s", secret)
    produced = Produced()
    produced.add(ValueError(secret))
    assert any(secret in line for line in every_log.lines)
    assert any(secret in text for text in produced.texts)


def test_tls_verification_is_on_by_default_and_off_only_explicitly() -> None:
    client = PersonalizeClient("0" * 24, read_env=False)
    try:
        assert client.config.verify is True
    finally:
        client.close()
    insecure = PersonalizeClient("0" * 24, read_env=False, verify=False)
    try:
        assert insecure.config.verify is False
    finally:
        insecure.close()
