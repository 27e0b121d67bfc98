"""The authorization-code exchange: forms, regions, refusals, the request pipeline."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import respx

from contentstack_personalize._http import Exchange
from contentstack_personalize.auth import PKCE, aexchange_code, exchange_code
from contentstack_personalize.errors import APITimeoutError, AuthenticationError, ConfigurationError
from tests.auth._support import (
    ACCESS,
    CODE,
    NEW_ACCESS,
    REFRESH,
    SECRET,
    TOKEN_URL,
    form_of,
    token_answer,
)

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
