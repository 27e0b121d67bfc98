"""Credentials from environment variables."""

from __future__ import annotations

import datetime as dt

import pytest

from contentstack_personalize.auth import AuthToken, OAuth, auth_from_env
from contentstack_personalize.errors import ConfigurationError
from tests.auth._support import ACCESS, ALL_MARKS, AUTHTOKEN, REFRESH, SECRET

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
