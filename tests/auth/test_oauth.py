"""OAuth through httpx: headers, refresh (proactive, on 401, refused), and one refresh however
many threads or asyncio tasks wait for it."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from contentstack_personalize.auth import OAuth, OAuthTokens
from contentstack_personalize.errors import AuthenticationError, ConfigurationError, ServerError
from tests.auth._support import (
    ACCESS,
    ALL_MARKS,
    API,
    NEW_ACCESS,
    NEW_REFRESH,
    REFRESH,
    SECRET,
    TOKEN_URL,
    Clock,
    bearer_api,
    form_of,
    make_oauth,
    token_answer,
)

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
