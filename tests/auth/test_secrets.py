"""No secret in any repr, str, log record or error."""

from __future__ import annotations

import logging

import httpx
import pytest
import respx

from contentstack_personalize.auth import (
    PKCE,
    AuthToken,
    OAuthTokens,
    login,
)
from tests.auth._support import (
    ACCESS,
    ALL_MARKS,
    API,
    AUTHTOKEN,
    CMA,
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
