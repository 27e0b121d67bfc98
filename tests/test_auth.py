"""Tests for contentstack_personalize.auth: headers, OAuth refresh (proactive, on 401, under
concurrency), PKCE, login/logout, environment variables, and secrets kept out of sight."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import attrs
import httpx
import pytest
import respx

from contentstack_personalize._http import AUTH_RETRY, Exchange
from contentstack_personalize.auth import (
    PKCE,
    AuthToken,
    ManagementToken,
    OAuth,
    OAuthTokens,
    aexchange_code,
    alogin,
    alogout,
    auth_from_env,
    authorization_url,
    exchange_code,
    login,
    logout,
)
from contentstack_personalize.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ServerError,
)

API = "https://personalize-api.contentstack.com"
TOKEN_URL = "https://developerhub-api.contentstack.com/token"
CMA = "https://api.contentstack.io"

ACCESS = "MARK-access-0001"
REFRESH = "MARK-refresh-0002"
SECRET = "MARK-secret-0003"
NEW_ACCESS = "MARK-access-new-0004"
NEW_REFRESH = "MARK-refresh-new-0005"
PASSWORD = "MARK-password-0006"
AUTHTOKEN = "MARK-authtoken-0007"
VERIFIER_MARK = "MARK-verifier-0008"
CODE = "MARK-code-0009"
ALL_MARKS = (ACCESS, REFRESH, SECRET, NEW_ACCESS, NEW_REFRESH, PASSWORD, AUTHTOKEN, CODE)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_oauth(clock: Clock | None = None, **overrides: Any) -> OAuth:
    kwargs: dict[str, Any] = {
        "access_token": ACCESS,
        "refresh_token": REFRESH,
        "client_id": "client-1",
        "app_id": "app-1",
        "client_secret": SECRET,
        "expires_at": (clock.now if clock else time.time()) + 3600,
        "clock": clock or time.time,
    }
    kwargs.update(overrides)
    return OAuth(**kwargs)


def token_answer(
    access: str = NEW_ACCESS, refresh: str = NEW_REFRESH, expires_in: int = 3600
) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": expires_in,
            "organization_uid": "org-9",
            "user_uid": "user-7",
            "token_type": "Bearer",
        },
    )


def bearer_api(valid: Callable[[], str]) -> Callable[[httpx.Request], httpx.Response]:
    """An API that accepts only the token ``valid()`` names at the time of the call."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") == f"Bearer {valid()}":
            return httpx.Response(200, json=[])
        return httpx.Response(401, json={"error": "unauthorized", "message": "bad token"})

    return handler


def form_of(request: httpx.Request) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(request.content.decode()))


# ---------------------------------------------------------------------------- AuthToken


@respx.mock
def test_authtoken_sends_header_and_org() -> None:
    route = respx.get(f"{API}/projects").respond(200, json=[])
    with httpx.Client(auth=AuthToken(AUTHTOKEN, organization_uid="org-1")) as client:
        client.get(f"{API}/projects")
    sent = route.calls.last.request
    assert sent.headers["authtoken"] == AUTHTOKEN
    assert sent.headers["organization_uid"] == "org-1"
    assert "authorization" not in sent.headers


@respx.mock
async def test_authtoken_async_keeps_explicit_org_header() -> None:
    route = respx.get(f"{API}/projects").respond(200, json=[])
    async with httpx.AsyncClient(auth=AuthToken(AUTHTOKEN, organization_uid="org-1")) as client:
        await client.get(f"{API}/projects", headers={"organization_uid": "org-2"})
    assert route.calls.last.request.headers["organization_uid"] == "org-2"
    assert route.calls.last.request.headers["authtoken"] == AUTHTOKEN


def test_authtoken_without_org_sends_no_org_header() -> None:
    request = httpx.Request("GET", f"{API}/attributes")
    flow = AuthToken(AUTHTOKEN).sync_auth_flow(request)
    sent = next(flow)
    assert "organization_uid" not in sent.headers


@pytest.mark.parametrize("bad", ["", "   ", "abc\r\nx-evil: 1"])
def test_authtoken_rejects_unusable_tokens(bad: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        AuthToken(bad)
    assert "x-evil" not in str(info.value)


def test_authtoken_repr_hides_token() -> None:
    token = AuthToken(f"  {AUTHTOKEN}\n", organization_uid="org-1")
    assert token.token == AUTHTOKEN
    assert repr(token) == "AuthToken(token='[REDACTED]', organization_uid='org-1')"
    assert AUTHTOKEN not in str(token)


def test_management_token_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        ManagementToken("cs-MARK-management")
    message = str(info.value)
    assert "management token" in message
    assert "AuthToken" in message and "OAuth" in message
    assert "MARK-management" not in message


# ---------------------------------------------------------------------------- OAuth: basics


@respx.mock
def test_oauth_sends_bearer_and_org() -> None:
    route = respx.get(f"{API}/attributes").respond(200, json=[])
    oauth = make_oauth(organization_uid="org-1")
    with httpx.Client(auth=oauth) as client:
        client.get(f"{API}/attributes")
    assert route.calls.last.request.headers["authorization"] == f"Bearer {ACCESS}"
    assert route.calls.last.request.headers["organization_uid"] == "org-1"


def test_oauth_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        OAuth(access_token="")
    with pytest.raises(ConfigurationError, match="client_id and app_id"):
        OAuth(access_token=ACCESS, refresh_token=REFRESH)
    with pytest.raises(ConfigurationError, match="aware"):
        OAuth(access_token=ACCESS, expires_at=dt.datetime(2030, 1, 1))
    with pytest.raises(ConfigurationError):
        OAuth(access_token=ACCESS, refresh_margin=-1)


def test_oauth_accepts_aware_datetime_and_region() -> None:
    when = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    oauth = OAuth(access_token=ACCESS, expires_at=when, region="eu")
    assert oauth.expires_at == when.timestamp()
    assert "eu-developerhub-api.contentstack.com/token" in repr(oauth)


@respx.mock
def test_proactive_refresh_before_expiry() -> None:
    clock = Clock()
    seen: list[OAuthTokens] = []
    oauth = make_oauth(clock, expires_at=clock.now + 3600, on_refresh=seen.append)
    token_route = respx.post(TOKEN_URL).mock(return_value=token_answer())
    api = respx.get(f"{API}/attributes").respond(200, json=[])
    with httpx.Client(auth=oauth) as client:
        client.get(f"{API}/attributes")
        assert token_route.call_count == 0
        clock.now += 3600 - 59  # inside the 60 s margin
        client.get(f"{API}/attributes")
    assert token_route.call_count == 1
    assert api.calls.last.request.headers["authorization"] == f"Bearer {NEW_ACCESS}"
    assert form_of(token_route.calls.last.request) == {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH,
        "client_id": "client-1",
        "app_id": "app-1",
        "client_secret": SECRET,
    }
    assert oauth.access_token == NEW_ACCESS
    assert oauth.organization_uid == "org-9"
    assert oauth.expires_at == clock.now + 3600
    assert api.calls.last.request.headers["organization_uid"] == "org-9"
    # on_refresh got the new tokens, rotated refresh token included
    assert len(seen) == 1
    assert seen[0].access_token == NEW_ACCESS
    assert seen[0].refresh_token == NEW_REFRESH
    assert seen[0].user_uid == "user-7"
    assert seen[0].expires_at == clock.now + 3600
    assert oauth.tokens == seen[0]


@respx.mock
def test_refresh_without_client_secret_omits_it() -> None:
    clock = Clock()
    oauth = make_oauth(clock, client_secret=None, expires_at=clock.now - 1)
    token_route = respx.post(TOKEN_URL).mock(return_value=token_answer())
    respx.get(f"{API}/attributes").respond(200, json=[])
    with httpx.Client(auth=oauth) as client:
        client.get(f"{API}/attributes")
    assert "client_secret" not in form_of(token_route.calls.last.request)


@respx.mock
def test_refresh_on_401_then_replay_once() -> None:
    current = {"token": NEW_ACCESS}
    oauth = make_oauth(expires_at=None)
    token_route = respx.post(TOKEN_URL).mock(return_value=token_answer())
    api = respx.post(f"{API}/attributes").mock(side_effect=bearer_api(lambda: current["token"]))
    with httpx.Client(auth=oauth) as client:
        response = client.post(f"{API}/attributes", json={"key": "plan", "name": "Plan"})
    assert response.status_code == 200
    assert token_route.call_count == 1
    assert api.call_count == 2
    assert [c.request.headers["authorization"] for c in api.calls] == [
        f"Bearer {ACCESS}",
        f"Bearer {NEW_ACCESS}",
    ]
    # the replay carries the same body
    assert json.loads(api.calls[1].request.content) == {"key": "plan", "name": "Plan"}


@respx.mock
async def test_refresh_on_401_async() -> None:
    oauth = make_oauth(expires_at=None)
    token_route = respx.post(TOKEN_URL).mock(return_value=token_answer())
    api = respx.get(f"{API}/attributes").mock(side_effect=bearer_api(lambda: NEW_ACCESS))
    async with httpx.AsyncClient(auth=oauth) as client:
        response = await client.get(f"{API}/attributes")
    assert response.status_code == 200
    assert token_route.call_count == 1
    assert api.call_count == 2


@respx.mock
def test_second_401_is_returned_not_looped() -> None:
    oauth = make_oauth(expires_at=None)
    token_route = respx.post(TOKEN_URL).mock(return_value=token_answer())
    api = respx.get(f"{API}/attributes").respond(401, json={"message": "no"})
    with httpx.Client(auth=oauth) as client:
        response = client.get(f"{API}/attributes")
    assert response.status_code == 401
    assert token_route.call_count == 1
    assert api.call_count == 2


@respx.mock
async def test_second_401_is_returned_not_looped_async() -> None:
    oauth = make_oauth(expires_at=None)
    token_route = respx.post(TOKEN_URL).mock(return_value=token_answer())
    api = respx.get(f"{API}/attributes").respond(401, json={"message": "no"})
    async with httpx.AsyncClient(auth=oauth) as client:
        response = await client.get(f"{API}/attributes")
    assert response.status_code == 401
    assert token_route.call_count == 1
    assert api.call_count == 2


@respx.mock
def test_401_without_refresh_token_is_returned() -> None:
    oauth = OAuth(access_token=ACCESS)
    api = respx.get(f"{API}/attributes").respond(401)
    with httpx.Client(auth=oauth) as client:
        assert client.get(f"{API}/attributes").status_code == 401
    assert api.call_count == 1


@respx.mock
def test_refresh_token_only_fetches_access_token_first() -> None:
    oauth = OAuth(access_token=None, refresh_token=REFRESH, client_id="c", app_id="a")
    token_route = respx.post(TOKEN_URL).mock(return_value=token_answer())
    api = respx.get(f"{API}/attributes").respond(200, json=[])
    with httpx.Client(auth=oauth) as client:
        client.get(f"{API}/attributes")
    assert token_route.call_count == 1
    assert api.calls.last.request.headers["authorization"] == f"Bearer {NEW_ACCESS}"


@respx.mock
@pytest.mark.parametrize("status", [400, 401])
def test_failed_refresh_raises_authentication_error_without_secrets(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    oauth = make_oauth(clock, expires_at=clock.now - 10)
    respx.post(TOKEN_URL).respond(
        status,
        # a server that echoes what it got must not leak it either
        json={"error": "invalid_grant", "message": f"refresh token {REFRESH} is revoked"},
    )
    api = respx.get(f"{API}/attributes").respond(200, json=[])
    with httpx.Client(auth=oauth) as client, pytest.raises(AuthenticationError) as info:
        client.get(f"{API}/attributes")
    error = info.value
    assert api.call_count == 0
    assert "revoked" in str(error)
    assert error.code == "invalid_grant"
    for text in (str(error), repr(error), json.dumps(error.body), caplog.text):
        for mark in ALL_MARKS:
            assert mark not in text
    assert error.request is not None and error.request.content == b""


@respx.mock
def test_refresh_server_error_stays_transient() -> None:
    clock = Clock()
    oauth = make_oauth(clock, expires_at=clock.now - 10)
    respx.post(TOKEN_URL).respond(503, text="unavailable")
    respx.get(f"{API}/attributes").respond(200, json=[])
    with httpx.Client(auth=oauth) as client, pytest.raises(ServerError):
        client.get(f"{API}/attributes")


@respx.mock
def test_refresh_answer_without_access_token() -> None:
    clock = Clock()
    oauth = make_oauth(clock, expires_at=clock.now - 10)
    respx.post(TOKEN_URL).respond(200, json={"refresh_token": NEW_REFRESH})
    respx.get(f"{API}/attributes").respond(200, json=[])
    with httpx.Client(auth=oauth) as client, pytest.raises(AuthenticationError) as info:
        client.get(f"{API}/attributes")
    assert NEW_REFRESH not in str(info.value)


@respx.mock
def test_on_refresh_failure_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()

    def broken(tokens: OAuthTokens) -> None:
        raise RuntimeError("disk full")

    oauth = make_oauth(clock, expires_at=clock.now - 10, on_refresh=broken)
    respx.post(TOKEN_URL).mock(return_value=token_answer())
    respx.get(f"{API}/attributes").respond(200, json=[])
    with httpx.Client(auth=oauth) as client:
        assert client.get(f"{API}/attributes").status_code == 200
    assert "on_refresh" in caplog.text
    assert oauth.access_token == NEW_ACCESS


@respx.mock
def test_refresh_is_logged_without_tokens(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    oauth = make_oauth(clock, expires_at=clock.now - 10)
    respx.post(TOKEN_URL).mock(return_value=token_answer())
    respx.get(f"{API}/attributes").respond(200, json=[])
    with httpx.Client(auth=oauth) as client:
        client.get(f"{API}/attributes")
    records = [r for r in caplog.records if r.name == "contentstack_personalize.auth"]
    assert any("refreshed" in r.getMessage() for r in records)
    for mark in ALL_MARKS:
        assert mark not in caplog.text


# ---------------------------------------------------------------------------- OAuth: concurrency


@respx.mock
def test_twenty_threads_one_refresh() -> None:
    clock = Clock()
    oauth = make_oauth(clock, expires_at=clock.now - 1)
    calls: list[int] = []

    def slow_token(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        time.sleep(0.05)  # long enough for every other thread to queue up behind the lock
        return token_answer()

    respx.post(TOKEN_URL).mock(side_effect=slow_token)
    api = respx.get(f"{API}/attributes").mock(side_effect=bearer_api(lambda: NEW_ACCESS))
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    errors: list[BaseException] = []

    with httpx.Client(auth=oauth) as client:

        def worker() -> None:
            try:
                barrier.wait()
                statuses.append(client.get(f"{API}/attributes").status_code)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert len(calls) == 1
    assert statuses == [200] * 20
    assert api.call_count == 20


@respx.mock
def test_twenty_threads_one_refresh_on_401() -> None:
    oauth = make_oauth(expires_at=None)
    calls: list[int] = []

    def slow_token(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        time.sleep(0.05)
        return token_answer()

    respx.post(TOKEN_URL).mock(side_effect=slow_token)
    respx.get(f"{API}/attributes").mock(side_effect=bearer_api(lambda: NEW_ACCESS))
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    with httpx.Client(auth=oauth) as client:

        def worker() -> None:
            barrier.wait()
            statuses.append(client.get(f"{API}/attributes").status_code)

        threads = [threading.Thread(target=worker) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(calls) == 1
    assert statuses == [200] * 20


async def _hammer(oauth: OAuth, n: int) -> list[int]:
    async with httpx.AsyncClient(auth=oauth) as client:
        responses = await asyncio.gather(*(client.get(f"{API}/attributes") for _ in range(n)))
    return [r.status_code for r in responses]


def _async_token_endpoint(
    calls: list[int], *, access: Callable[[], str] = lambda: NEW_ACCESS
) -> Callable[[httpx.Request], Any]:
    async def slow_token(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        await asyncio.sleep(0.05)  # let the other tasks pile up on the lock
        return token_answer(access=access())

    return slow_token


@respx.mock
async def test_fifty_tasks_one_refresh() -> None:
    clock = Clock()
    oauth = make_oauth(clock, expires_at=clock.now - 1)
    calls: list[int] = []
    respx.post(TOKEN_URL).mock(side_effect=_async_token_endpoint(calls))
    api = respx.get(f"{API}/attributes").mock(side_effect=bearer_api(lambda: NEW_ACCESS))
    assert await _hammer(oauth, 50) == [200] * 50
    assert len(calls) == 1
    assert api.call_count == 50


@respx.mock
async def test_fifty_tasks_one_refresh_on_401() -> None:
    oauth = make_oauth(expires_at=None)
    calls: list[int] = []
    respx.post(TOKEN_URL).mock(side_effect=_async_token_endpoint(calls))
    respx.get(f"{API}/attributes").mock(side_effect=bearer_api(lambda: NEW_ACCESS))
    assert await _hammer(oauth, 50) == [200] * 50
    assert len(calls) == 1


def test_lock_per_event_loop() -> None:
    """One OAuth object, two successive asyncio.run() calls, contention in both."""
    clock = Clock()
    oauth = make_oauth(clock, expires_at=clock.now - 1)
    calls: list[int] = []
    generation = {"n": 1}

    def access() -> str:
        return f"{NEW_ACCESS}-{generation['n']}"

    with respx.mock:
        respx.post(TOKEN_URL).mock(side_effect=_async_token_endpoint(calls, access=access))
        respx.get(f"{API}/attributes").mock(side_effect=bearer_api(access))
        assert asyncio.run(_hammer(oauth, 50)) == [200] * 50
        assert len(calls) == 1
        clock.now += 10 * 3600  # expired again
        generation["n"] = 2
        assert asyncio.run(_hammer(oauth, 50)) == [200] * 50
        assert len(calls) == 2
    assert oauth.access_token == f"{NEW_ACCESS}-2"


# ---------------------------------------------------------------------------- PKCE and authorize


def test_pkce_rfc7636_appendix_b() -> None:
    # The RFC's value (Appendix B); "...CB7pR2Kz2hZI4jKmDlVXc8c" seen in some notes is a typo.
    pkce = PKCE.from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    assert pkce.challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert pkce.method == "S256"
    assert "dBjftJeZ4CVP" not in repr(pkce)


def test_pkce_generate() -> None:
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    first, second = PKCE.generate(), PKCE.generate(length=43)
    assert 43 <= len(first.verifier) <= 128 and len(second.verifier) == 43
    assert set(first.verifier) <= allowed
    assert first.verifier != PKCE.generate().verifier
    assert PKCE.from_verifier(first.verifier) == first
    assert "=" not in first.challenge and len(first.challenge) == 43
    with pytest.raises(ConfigurationError):
        PKCE.generate(length=42)
    with pytest.raises(ConfigurationError):
        PKCE.from_verifier("short")
    with pytest.raises(ConfigurationError):
        PKCE.from_verifier("x" * 50 + "!")


def test_authorization_url() -> None:
    url = authorization_url(
        app_uid="app123",
        client_id="client-1",
        redirect_uri="http://localhost:8184/callback?x=1",
        state="st-1",
        code_challenge="E9Melhoa2OwvFrEMTJguCB7pR2Kz2hZI4jKmDlVXc8c",
    )
    prefix = "https://app.contentstack.com/#!/apps/app123/authorize?"
    assert url.startswith(prefix)
    query = urllib.parse.parse_qs(url[len(prefix) :])
    assert query == {
        "response_type": ["code"],
        "client_id": ["client-1"],
        "redirect_uri": ["http://localhost:8184/callback?x=1"],
        "scope": ["personalize:manage personalize:read"],
        "state": ["st-1"],
        "code_challenge": ["E9Melhoa2OwvFrEMTJguCB7pR2Kz2hZI4jKmDlVXc8c"],
        "code_challenge_method": ["S256"],
    }
    assert "scope=personalize%3Amanage%20personalize%3Aread" in url


def test_authorization_url_region_scope_and_no_pkce() -> None:
    url = authorization_url(
        app_uid="a",
        client_id="c",
        redirect_uri="https://x/cb",
        state="s",
        scope=["personalize:read"],
        region="eu",
    )
    assert url.startswith("https://eu-app.contentstack.com/#!/apps/a/authorize?")
    assert "code_challenge" not in url
    assert "scope=personalize%3Aread&" in url
    custom = authorization_url(
        app_uid="a",
        client_id="c",
        redirect_uri="https://x/cb",
        state="s",
        app_url="http://localhost:9/",
    )
    assert custom.startswith("http://localhost:9/#!/apps/a/authorize?")
    with pytest.raises(ConfigurationError):
        authorization_url(app_uid="a", client_id="c", redirect_uri="https://x/cb", state="")


# ---------------------------------------------------------------------------- exchange_code


@respx.mock
def test_exchange_code_with_secret() -> None:
    route = respx.post(TOKEN_URL).mock(return_value=token_answer(access=ACCESS, refresh=REFRESH))
    before = time.time()
    oauth = exchange_code(
        code=CODE,
        client_id="client-1",
        app_id="app-1",
        redirect_uri="http://localhost/cb",
        client_secret=SECRET,
    )
    assert form_of(route.calls.last.request) == {
        "grant_type": "authorization_code",
        "code": CODE,
        "redirect_uri": "http://localhost/cb",
        "client_id": "client-1",
        "app_id": "app-1",
        "client_secret": SECRET,
    }
    assert oauth.access_token == ACCESS
    assert oauth.organization_uid == "org-9"
    assert oauth.expires_at is not None and oauth.expires_at >= before + 3600
    tokens = oauth.tokens
    assert tokens is not None and tokens.refresh_token == REFRESH and tokens.user_uid == "user-7"


@respx.mock
async def test_aexchange_code_with_pkce_and_regional_endpoint() -> None:
    pkce = PKCE.generate()
    route = respx.post("https://eu-developerhub-api.contentstack.com/token").mock(
        return_value=token_answer()
    )
    oauth = await aexchange_code(
        code=CODE,
        client_id="client-1",
        app_id="app-1",
        redirect_uri="http://localhost/cb",
        code_verifier=pkce.verifier,
        region="eu",
    )
    form = form_of(route.calls.last.request)
    assert form["code_verifier"] == pkce.verifier
    assert "client_secret" not in form
    assert oauth.access_token == NEW_ACCESS
    # the OAuth object refreshes against the same regional endpoint, without a secret
    assert "eu-developerhub-api" in repr(oauth)


def test_exchange_code_with_transport_and_token_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return token_answer()

    oauth = exchange_code(
        code=CODE,
        client_id="c",
        app_id="a",
        redirect_uri="http://localhost/cb",
        code_verifier=PKCE.generate().verifier,
        token_url="http://127.0.0.1:9999/token",
        transport=httpx.MockTransport(handler),
    )
    assert str(seen[0].url) == "http://127.0.0.1:9999/token"
    assert oauth.access_token == NEW_ACCESS


@pytest.mark.parametrize(
    "extra",
    [{}, {"client_secret": SECRET, "code_verifier": "v" * 43}],
)
def test_exchange_code_needs_exactly_one_secret(extra: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="exactly one"):
        exchange_code(code=CODE, client_id="c", app_id="a", redirect_uri="http://x/cb", **extra)


@respx.mock
def test_exchange_code_refused() -> None:
    respx.post(TOKEN_URL).respond(400, json={"error": "invalid_grant", "message": "code expired"})
    with pytest.raises(AuthenticationError) as info:
        exchange_code(
            code=CODE, client_id="c", app_id="a", redirect_uri="http://x/cb", client_secret=SECRET
        )
    assert "code expired" in str(info.value)
    assert SECRET not in str(info.value) and CODE not in str(info.value)


# ---------------------------------------------------------------------------- login / logout


def login_ok(token: str = AUTHTOKEN) -> httpx.Response:
    return httpx.Response(
        200, json={"notice": "Login Successful.", "user": {"uid": "u1", "authtoken": token}}
    )


@respx.mock
def test_login_success() -> None:
    route = respx.post(f"{CMA}/v3/user-session").mock(return_value=login_ok())
    token = login("me@example.com", PASSWORD)
    assert isinstance(token, AuthToken)
    assert token.token == AUTHTOKEN
    assert json.loads(route.calls.last.request.content) == {
        "user": {"email": "me@example.com", "password": PASSWORD}
    }
    assert route.calls.last.request.headers["content-type"] == "application/json"


@respx.mock
async def test_alogin_sends_tfa_token_and_uses_region() -> None:
    route = respx.post("https://eu-api.contentstack.com/v3/user-session").mock(
        return_value=login_ok()
    )
    token = await alogin(
        "me@example.com", PASSWORD, tfa_token="123456", region="eu", organization_uid="org-1"
    )
    assert json.loads(route.calls.last.request.content)["user"]["tfa_token"] == "123456"
    assert token.organization_uid == "org-1"


WRONG_PASSWORD = {
    "error_message": "Looks like your email or password is invalid. Please try again.",
    "error_code": 104,
    "errors": {},
}


@respx.mock
@pytest.mark.parametrize("use_async", [False, True])
async def test_login_wrong_password(use_async: bool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    respx.post(f"{CMA}/v3/user-session").respond(422, json=WRONG_PASSWORD)
    with pytest.raises(BadRequestError) as info:
        if use_async:
            await alogin("me@example.com", PASSWORD)
        else:
            login("me@example.com", PASSWORD)
    error = info.value
    assert error.status_code == 422
    assert error.code == "104"
    assert "email or password is invalid" in str(error)
    for text in (str(error), repr(error), caplog.text):
        assert PASSWORD not in text
    # the error keeps no copy of the request body that carried the password
    assert error.request is not None and error.request.content == b""
    assert error.response is not None and PASSWORD.encode() not in error.response.content


@respx.mock
def test_login_two_factor_required() -> None:
    respx.post(f"{CMA}/v3/user-session").respond(
        294, json={"error_message": "Please login using the Two-Factor verification Token"}
    )
    with pytest.raises(AuthenticationError, match="tfa_token"):
        login("me@example.com", PASSWORD)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [(httpx.ConnectTimeout, APITimeoutError), (httpx.ConnectError, APIConnectionError)],
)
def test_login_transport_errors(exc: type[httpx.TransportError], expected: type[Exception]) -> None:
    with respx.mock:
        respx.post(f"{CMA}/v3/user-session").mock(side_effect=exc)
        with pytest.raises(expected) as info:
            login("me@example.com", PASSWORD)
    assert isinstance(info.value.__cause__, exc)
    assert PASSWORD not in str(info.value)


async def test_alogin_transport_error_through_transport() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(APITimeoutError):
        await alogin(
            "me@example.com",
            PASSWORD,
            cma_url="http://localhost:1",
            transport=httpx.MockTransport(handler),
        )


def test_login_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        login("", PASSWORD)
    with pytest.raises(ConfigurationError):
        login("me@example.com", "")
    with pytest.raises(ConfigurationError):
        login("me@example.com", PASSWORD, cma_url="api.contentstack.io")
    with pytest.raises(ConfigurationError):
        login(
            "me@example.com",
            PASSWORD,
            http_client=httpx.Client(),
            transport=httpx.MockTransport(lambda r: httpx.Response(200)),
        )


@respx.mock
def test_login_with_own_client_ignores_client_auth() -> None:
    route = respx.post(f"{CMA}/v3/user-session").mock(return_value=login_ok())
    with httpx.Client(auth=AuthToken("MARK-other")) as client:
        login("me@example.com", PASSWORD, http_client=client)
        assert not client.is_closed
    assert "authtoken" not in route.calls.last.request.headers


@respx.mock
def test_logout() -> None:
    route = respx.delete(f"{CMA}/v3/user-session").respond(200, json={"notice": "bye"})
    logout(AuthToken(AUTHTOKEN))
    assert route.calls.last.request.headers["authtoken"] == AUTHTOKEN


@respx.mock
async def test_alogout_error_hides_token() -> None:
    respx.delete(f"{CMA}/v3/user-session").respond(
        401, json={"error_message": f"token {AUTHTOKEN} is invalid", "error_code": 105}
    )
    with pytest.raises(AuthenticationError) as info:
        await alogout(AuthToken(AUTHTOKEN))
    assert AUTHTOKEN not in str(info.value)
    assert "invalid" in str(info.value)


# ---------------------------------------------------------------------------- environment


def test_env_nothing_set() -> None:
    assert auth_from_env({}) is None
    assert auth_from_env({"CONTENTSTACK_AUTHTOKEN": "  "}) is None


def test_env_authtoken_wins() -> None:
    auth = auth_from_env(
        {
            "CONTENTSTACK_AUTHTOKEN": AUTHTOKEN,
            "CONTENTSTACK_OAUTH_ACCESS_TOKEN": ACCESS,
            "CONTENTSTACK_MANAGEMENT_TOKEN": "cs-mgmt",
            "CONTENTSTACK_ORGANIZATION_UID": "org-1",
        }
    )
    assert isinstance(auth, AuthToken)
    assert auth.token == AUTHTOKEN and auth.organization_uid == "org-1"


def test_env_oauth() -> None:
    auth = auth_from_env(
        {
            "CONTENTSTACK_OAUTH_ACCESS_TOKEN": ACCESS,
            "CONTENTSTACK_OAUTH_REFRESH_TOKEN": REFRESH,
            "CONTENTSTACK_OAUTH_CLIENT_ID": "client-1",
            "CONTENTSTACK_OAUTH_APP_ID": "app-1",
            "CONTENTSTACK_OAUTH_CLIENT_SECRET": SECRET,
            "CONTENTSTACK_OAUTH_EXPIRES_AT": "2030-01-01T00:00:00Z",
            "CONTENTSTACK_ORGANIZATION_UID": "org-1",
            "CONTENTSTACK_REGION": "azure-eu",
        }
    )
    assert isinstance(auth, OAuth)
    assert auth.access_token == ACCESS
    assert auth.organization_uid == "org-1"
    assert auth.expires_at == dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc).timestamp()
    assert "azure-eu-developerhub-api.contentstack.com" in repr(auth)
    for mark in ALL_MARKS:
        assert mark not in repr(auth)


def test_env_oauth_epoch_expiry_and_bad_values() -> None:
    auth = auth_from_env(
        {"CONTENTSTACK_OAUTH_ACCESS_TOKEN": ACCESS, "CONTENTSTACK_OAUTH_EXPIRES_AT": "1700000000"}
    )
    assert isinstance(auth, OAuth) and auth.expires_at == 1_700_000_000.0
    with pytest.raises(ConfigurationError):
        auth_from_env(
            {"CONTENTSTACK_OAUTH_ACCESS_TOKEN": ACCESS, "CONTENTSTACK_OAUTH_EXPIRES_AT": "soon"}
        )
    with pytest.raises(ConfigurationError):
        auth_from_env({"CONTENTSTACK_OAUTH_ACCESS_TOKEN": ACCESS, "CONTENTSTACK_REGION": "mars"})
    with pytest.raises(ConfigurationError, match="client_id"):
        auth_from_env({"CONTENTSTACK_OAUTH_REFRESH_TOKEN": REFRESH})


def test_env_management_token_only_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        auth_from_env({"CONTENTSTACK_MANAGEMENT_TOKEN": "cs-MARK-mgmt"})
    assert "CONTENTSTACK_MANAGEMENT_TOKEN" in str(info.value)
    assert "AuthToken" in str(info.value)
    assert "MARK-mgmt" not in str(info.value)


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "CONTENTSTACK_OAUTH_ACCESS_TOKEN",
        "CONTENTSTACK_OAUTH_REFRESH_TOKEN",
        "CONTENTSTACK_MANAGEMENT_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONTENTSTACK_AUTHTOKEN", AUTHTOKEN)
    auth = auth_from_env()
    assert isinstance(auth, AuthToken) and auth.token == AUTHTOKEN


# ---------------------------------------------------------------------------- secrets everywhere


@respx.mock
def test_no_secret_in_any_repr_or_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    oauth = make_oauth(clock, expires_at=clock.now - 1, organization_uid="org-1")
    respx.post(TOKEN_URL).mock(return_value=token_answer())
    respx.get(f"{API}/attributes").respond(200, json=[])
    respx.post(f"{CMA}/v3/user-session").mock(return_value=login_ok())
    with httpx.Client(auth=oauth) as client:
        client.get(f"{API}/attributes")
    token = login("me@example.com", PASSWORD)
    pkce = PKCE.from_verifier(VERIFIER_MARK + "x" * 40)
    tokens = oauth.tokens
    assert tokens is not None
    objects: list[object] = [
        oauth,
        token,
        AuthToken(AUTHTOKEN),
        tokens,
        OAuthTokens(access_token=ACCESS, refresh_token=REFRESH),
        pkce,
        make_oauth(),
    ]
    for obj in objects:
        for text in (repr(obj), str(obj)):
            for mark in (*ALL_MARKS, VERIFIER_MARK):
                assert mark not in text, (type(obj).__name__, text)
    assert "org-9" in repr(oauth) and "'[REDACTED]'" in repr(tokens)
    for mark in ALL_MARKS:
        assert mark not in caplog.text


# ---------------------------------------------------------------------------- the one pipeline


@respx.mock
@pytest.mark.parametrize("use_async", [False, True])
async def test_login_goes_through_the_pipeline(use_async: bool) -> None:
    """Login is retried when the server surely did not act (503, 429) and is observed like any
    other request, the password masked in the records."""
    route = respx.post(f"{CMA}/v3/user-session").mock(
        side_effect=[httpx.Response(503), httpx.Response(429), login_ok()]
    )
    seen: list[Exchange] = []
    retry = attrs.evolve(AUTH_RETRY, sleep=False)
    if use_async:
        token = await alogin("me@example.com", PASSWORD, retry=retry, on_exchange=seen.append)
    else:
        token = login("me@example.com", PASSWORD, retry=retry, on_exchange=seen.append)
    assert token.token == AUTHTOKEN and route.call_count == 3
    assert [(e.status, e.will_retry, e.attempt) for e in seen] == [
        (503, True, 1),
        (429, True, 2),
        (200, False, 3),
    ]
    dumped = json.dumps([e.to_dict() for e in seen])
    assert PASSWORD not in dumped and AUTHTOKEN not in dumped
    assert seen[0].request_headers["user-agent"].startswith("contentstack-personalize-python/")


@respx.mock
def test_a_code_exchange_that_may_have_been_used_is_not_resent() -> None:
    route = respx.post(TOKEN_URL).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(APITimeoutError):
        exchange_code(
            code=CODE, client_id="c", app_id="a", redirect_uri="http://x/cb", client_secret=SECRET
        )
    assert route.call_count == 1  # an authorization code is single-use: never sent twice


@respx.mock
def test_a_code_exchange_is_observed_with_the_code_masked() -> None:
    respx.post(TOKEN_URL).mock(return_value=token_answer(access=ACCESS, refresh=REFRESH))
    seen: list[Exchange] = []
    exchange_code(
        code=CODE,
        client_id="c",
        app_id="a",
        redirect_uri="http://x/cb",
        client_secret=SECRET,
        on_exchange=seen.append,
    )
    assert len(seen) == 1 and seen[0].api == "oauth" and seen[0].status == 200
    dumped = json.dumps(seen[0].to_dict())
    for mark in (CODE, SECRET, ACCESS, REFRESH):
        assert mark not in dumped
