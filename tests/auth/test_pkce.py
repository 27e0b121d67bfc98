"""PKCE pairs and the authorization URL."""

from __future__ import annotations

import urllib.parse

import pytest

from contentstack_personalize.auth import PKCE, authorization_url
from contentstack_personalize.errors import ConfigurationError

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
