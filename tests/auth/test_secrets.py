"""No secret in any repr, str, log record or error."""

from __future__ import annotations

import inspect
import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

from contentstack_personalize._http import Exchange
from contentstack_personalize.auth import (
    PKCE,
    AuthToken,
    OAuthTokens,
    aexchange_code,
    alogin,
    alogout,
    exchange_code,
    login,
    logout,
)
from contentstack_personalize.auth._secrets import safe_error, transport_error
from contentstack_personalize.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
)
from tests.auth._support import (
    ACCESS,
    ALL_MARKS,
    API,
    AUTHTOKEN,
    CMA,
    CODE,
    PASSWORD,
    REFRESH,
    TOKEN_URL,
    VERIFIER_MARK,
    Clock,
    login_ok,
    make_oauth,
    token_answer,
)

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


# ---------------------------------------------------------------------------- every failure path

# A secret with characters JSON escapes: an echo in a JSON body shows it only escaped.
ODD_SECRET = 'MARK-odd-pässwörd"/0010'
MARKS = (*ALL_MARKS, ODD_SECRET, "pässwörd", "p\\u00e4ssw\\u00f6rd", "p%C3%A4ssw%C3%B6rd")


def _values(data: object) -> Iterator[str]:
    if isinstance(data, dict):
        for value in data.values():
            yield from _values(value)
    elif isinstance(data, str):
        yield data


def echo(status: int) -> Callable[[httpx.Request], httpx.Response]:
    """A server that answers ``status`` and echoes every credential it was sent."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("content-type") == "application/json":
            sent = list(_values(json.loads(request.content)))
        else:
            sent = [v for _, v in urllib.parse.parse_qsl(request.content.decode())]
        sent += [request.headers.get(h, "") for h in ("authtoken", "authorization")]
        return httpx.Response(
            status, json={"error": "invalid_grant", "message": "got " + " ".join(sent)}
        )

    return handler


def broken(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(f"refused while sending {request.method}", request=request)


Seen = list[Exchange]


def _login(
    transport: httpx.MockTransport, use_async: bool, seen: Seen
) -> Awaitable[object] | object:
    kwargs: dict[str, Any] = {
        "cma_url": CMA,
        "tfa_token": "MARK-tfa-0011",
        "on_exchange": seen.append,
    }
    if use_async:
        return alogin("me@example.com", ODD_SECRET, transport=transport, **kwargs)
    return login("me@example.com", ODD_SECRET, transport=transport, **kwargs)


def _exchange(
    transport: httpx.MockTransport, use_async: bool, seen: Seen
) -> Awaitable[object] | object:
    kwargs: dict[str, Any] = {
        "on_exchange": seen.append,
        "code": CODE,
        "client_id": "c",
        "app_id": "a",
        "redirect_uri": "http://x/cb",
        "client_secret": ODD_SECRET,
        "transport": transport,
    }
    return aexchange_code(**kwargs) if use_async else exchange_code(**kwargs)


def _logout(
    transport: httpx.MockTransport, use_async: bool, seen: Seen
) -> Awaitable[object] | object:
    token = AuthToken(AUTHTOKEN)
    if use_async:
        return alogout(token, cma_url=CMA, transport=transport)
    logout(token, cma_url=CMA, transport=transport)
    return None


def _refresh(
    transport: httpx.MockTransport, use_async: bool, seen: Seen
) -> Awaitable[object] | object:
    clock = Clock()
    oauth = make_oauth(clock, expires_at=clock.now - 1, client_secret=ODD_SECRET)
    if use_async:

        async def get() -> object:
            async with httpx.AsyncClient(auth=oauth, transport=transport) as client:
                return await client.get(f"{API}/attributes")

        return get()
    with httpx.Client(auth=oauth, transport=transport) as client:
        return client.get(f"{API}/attributes")


def _texts(error: BaseException) -> Iterator[str]:
    seen: BaseException | None = error
    while seen is not None:
        yield str(seen)
        yield repr(seen)
        yield from (str(arg) for arg in seen.args)
        if isinstance(seen, APIStatusError):
            yield json.dumps(seen.body)
            if seen.request is not None:
                yield seen.request.content.decode()
            if seen.response is not None:
                yield seen.response.content.decode()
        seen = seen.__cause__ or seen.__context__


@pytest.mark.parametrize("use_async", [False, True])
@pytest.mark.parametrize(
    ("call", "handler", "expected"),
    [
        (_login, echo(401), AuthenticationError),
        (_login, echo(422), BadRequestError),
        (_login, broken, APIConnectionError),
        (_exchange, echo(400), AuthenticationError),
        (_exchange, broken, APIConnectionError),
        (_logout, echo(401), AuthenticationError),
        (_refresh, echo(400), AuthenticationError),
    ],
)
async def test_no_secret_in_any_error_or_log(
    call: Callable[[httpx.MockTransport, bool, Seen], Awaitable[object] | object],
    handler: Callable[[httpx.Request], httpx.Response],
    expected: type[Exception],
    use_async: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: Seen = []
    with pytest.raises(expected) as info:
        result = call(httpx.MockTransport(handler), use_async, seen)
        if inspect.isawaitable(result):
            await result
    records = [json.dumps(e.to_dict(), ensure_ascii=False) for e in seen]
    assert bool(records) == (call in (_login, _exchange))  # the calls that take a hook
    for text in (*_texts(info.value), caplog.text, *records):
        for mark in MARKS:
            assert mark not in text, type(info.value).__name__


def _bodies(secret: str) -> list[bytes]:
    message = {"message": f"bad {secret}"}
    return [
        json.dumps(message).encode(),  # non-ASCII escaped
        json.dumps(message, ensure_ascii=False).encode(),
        json.dumps(message).replace("/", "\\/").encode(),  # an encoder that escapes "/"
        json.dumps(message, ensure_ascii=False).replace("/", "\\/").encode(),
        urllib.parse.urlencode({"echo": secret}).encode(),
        urllib.parse.urlencode({"echo": secret}, quote_via=urllib.parse.quote).encode(),
        f"bad {secret}".encode(),
    ]


@pytest.mark.parametrize(
    "content",
    _bodies(ODD_SECRET),
    ids=["json", "json-utf8", "json-slash", "json-utf8-slash", "form", "form-quote", "text"],
)
def test_safe_error_blanks_every_form_of_a_secret(content: bytes) -> None:
    request = httpx.Request("POST", TOKEN_URL, data={"client_secret": ODD_SECRET})
    response = httpx.Response(400, content=content, request=request)
    error = safe_error(response, secret_values=[ODD_SECRET, None], as_auth_error=True)
    assert isinstance(error, AuthenticationError)
    for text in _texts(error):
        for mark in MARKS:
            assert mark not in text
    assert error.request is not None and error.request.content == b""
    assert str(error.request.url) == TOKEN_URL


@pytest.mark.parametrize("status", [429, 503])
def test_safe_error_keeps_transient_refusals_transient(status: int) -> None:
    error = safe_error(httpx.Response(status), secret_values=[], as_auth_error=True)
    assert not isinstance(error, AuthenticationError)
    assert error.status_code == status


def test_transport_errors_name_the_call_not_the_request() -> None:
    request = httpx.Request("POST", f"{CMA}/v3/user-session", json={"password": PASSWORD})
    timeout = transport_error(httpx.ReadTimeout("slow", request=request), "login", attempts=3)
    assert isinstance(timeout, APITimeoutError)
    assert str(timeout).startswith("login timed out after 3 attempts")
    refused = transport_error(httpx.ConnectError("refused", request=request), "login")
    assert isinstance(refused, APIConnectionError) and "login failed: no answer" in str(refused)
    for error in (timeout, refused):
        assert error.request is None and PASSWORD not in repr(error)


@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(st.characters(exclude_categories=["Cs"]), min_size=6, max_size=40).filter(
        lambda s: s.strip() == s and "REDACTED" not in s
    ),
    shape=st.integers(min_value=0, max_value=6),
)
def test_any_echoed_secret_is_blanked(secret: str, shape: int) -> None:
    content = _bodies(secret)[shape]
    response = httpx.Response(400, content=content, request=httpx.Request("POST", TOKEN_URL))
    error = safe_error(response, secret_values=[secret])
    for text in _texts(error):
        assert secret not in text
