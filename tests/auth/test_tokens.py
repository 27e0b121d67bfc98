"""AuthToken headers and reprs, ManagementToken refused, OAuthTokens from the token endpoint."""

from __future__ import annotations

import httpx
import pytest
import respx

from contentstack_personalize.auth import AuthToken, ManagementToken, OAuthTokens
from contentstack_personalize.errors import ConfigurationError
from tests.auth._support import ACCESS, API, AUTHTOKEN, NEW_ACCESS, NEW_REFRESH

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


# ---------------------------------------------------------------------------- OAuthTokens


def test_tokens_from_the_token_endpoint() -> None:
    tokens = OAuthTokens.from_api(
        {
            "access_token": f" {NEW_ACCESS} ",
            "refresh_token": NEW_REFRESH,
            "expires_in": "3600",
            "organization_uid": "org-9",
            "user_uid": "user-7",
        },
        now=1000.0,
    )
    assert tokens == OAuthTokens(
        access_token=NEW_ACCESS,
        refresh_token=NEW_REFRESH,
        expires_at=4600.0,
        organization_uid="org-9",
        user_uid="user-7",
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"expires_in": 60.5}, {"expires_at": 1060.5}),
        ({"expires_in": True}, {"expires_at": None}),
        ({"expires_in": "soon"}, {"expires_at": None}),
        ({"refresh_token": "  "}, {"refresh_token": None}),
        ({"refresh_token": 42}, {"refresh_token": None}),
        ({"organization_uid": "", "user_uid": 7}, {"organization_uid": None, "user_uid": None}),
    ],
)
def test_tokens_ignore_what_they_cannot_use(
    extra: dict[str, object], expected: dict[str, object]
) -> None:
    tokens = OAuthTokens.from_api({"access_token": ACCESS, **extra}, now=1000.0)
    for name, value in expected.items():
        assert getattr(tokens, name) == value


@pytest.mark.parametrize("data", [{}, {"access_token": "  "}, {"access_token": 1}])
def test_tokens_need_an_access_token(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="without an access_token"):
        OAuthTokens.from_api(data, now=0.0)
