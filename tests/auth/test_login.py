"""CMA login and logout: bodies, regions, errors without the password, the request pipeline."""

from __future__ import annotations

import json
import logging

import attrs
import httpx
import pytest
import respx

from contentstack_personalize._http import AUTH_RETRY, Exchange
from contentstack_personalize.auth import AuthToken, alogin, alogout, login, logout
from contentstack_personalize.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
)
from tests.auth._support import AUTHTOKEN, CMA, PASSWORD, WRONG_PASSWORD, login_ok

# ---------------------------------------------------------------------------- login / logout


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
