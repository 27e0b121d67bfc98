"""CMA login/logout and the Developer Hub OAuth token endpoint."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from contentstack_personalize.testing import PersonalizeEmulator

CMA = "https://api.contentstack.io"
DEVHUB = "https://developerhub-api.contentstack.com"
MANAGEMENT = "https://personalize-api.contentstack.com"


@pytest.fixture
def http(emulator: PersonalizeEmulator) -> Any:
    with httpx.Client(transport=emulator.transport()) as client:
        yield client


def _attributes(http: httpx.Client, emulator: PersonalizeEmulator, **headers: str) -> int:
    r = http.get(
        f"{MANAGEMENT}/attributes", headers={"x-project-uid": emulator.project_uid, **headers}
    )
    return r.status_code


def test_login_and_logout(http: httpx.Client, emulator: PersonalizeEmulator) -> None:
    emulator.add_user_login("ada@example.com", "s3cret")
    r = http.post(
        f"{CMA}/v3/user-session",
        json={"user": {"email": "ada@example.com", "password": "s3cret"}},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["notice"] == "Login Successful."
    assert body["user"]["email"] == "ada@example.com"
    token = body["user"]["authtoken"]
    assert _attributes(http, emulator, authtoken=token) == 200
    r = http.delete(f"{CMA}/v3/user-session", headers={"authtoken": token})
    assert r.status_code == 200
    assert _attributes(http, emulator, authtoken=token) == 401
    r = http.delete(f"{CMA}/v3/user-session", headers={"authtoken": token})
    assert r.status_code == 401


@pytest.mark.parametrize(
    "user",
    [
        {"email": "ada@example.com", "password": "wrong"},
        {"email": "bob@example.com", "password": "s3cret"},
    ],
)
def test_bad_login(http: httpx.Client, emulator: PersonalizeEmulator, user: dict[str, str]) -> None:
    emulator.add_user_login("ada@example.com", "s3cret")
    r = http.post(f"{CMA}/v3/user-session", json={"user": user})
    assert r.status_code == 422
    assert r.json() == {
        "error_message": "Looks like your email or password is invalid. Please try again or "
        "reset your password.",
        "error_code": 104,
        "errors": {},
    }


def test_login_with_two_factor(http: httpx.Client, emulator: PersonalizeEmulator) -> None:
    emulator.add_user_login("ada@example.com", "pw", tfa_token="123456")
    url = f"{CMA}/v3/user-session"
    r = http.post(url, json={"user": {"email": "ada@example.com", "password": "pw"}})
    assert r.status_code == 294
    assert r.json()["error_code"] == 294
    r = http.post(
        url, json={"user": {"email": "ada@example.com", "password": "pw", "tfa_token": "000000"}}
    )
    assert r.status_code == 422
    r = http.post(
        url, json={"user": {"email": "ada@example.com", "password": "pw", "tfa_token": "123456"}}
    )
    assert r.status_code == 200


def test_the_21st_login_expires_the_oldest(
    http: httpx.Client, emulator: PersonalizeEmulator
) -> None:
    emulator.add_user_login("ada@example.com", "pw")
    body = {"user": {"email": "ada@example.com", "password": "pw"}}
    tokens = [
        http.post(f"{CMA}/v3/user-session", json=body).json()["user"]["authtoken"]
        for _ in range(21)
    ]
    assert len(set(tokens)) == 21
    emulator_headers = {"x-project-uid": emulator.project_uid}
    r = http.get(f"{MANAGEMENT}/events", headers={**emulator_headers, "authtoken": tokens[0]})
    assert r.status_code == 401
    r = http.get(f"{MANAGEMENT}/events", headers={**emulator_headers, "authtoken": tokens[1]})
    assert r.status_code == 200


def test_cma_prefix_and_unknown_paths(emulator: PersonalizeEmulator) -> None:
    emulator.add_user_login("ada@example.com", "pw")
    with httpx.Client(transport=emulator.transport(), base_url="http://local/cma") as client:
        r = client.post(
            "/v3/user-session", json={"user": {"email": "ADA@example.com", "password": "pw"}}
        )
        assert r.status_code == 200
        assert client.get("/v3/stacks").status_code == 404
        assert client.post("/v3/user-session", json={}).status_code == 422


# ----------------------------------------------------------------------------- OAuth


def test_authorization_code_with_pkce(http: httpx.Client, emulator: PersonalizeEmulator) -> None:
    emulator.add_oauth_code("code-1", code_verifier="verifier", client_id="client")
    form = {
        "grant_type": "authorization_code",
        "code": "code-1",
        "client_id": "client",
        "app_id": "app",
        "redirect_uri": "http://localhost/cb",
    }
    r = http.post(f"{DEVHUB}/token", data={**form, "code_verifier": "wrong"})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    r = http.post(f"{DEVHUB}/token", data={**form, "code_verifier": "verifier"})
    assert r.status_code == 200
    tokens = r.json()
    assert set(tokens) >= {
        "access_token",
        "refresh_token",
        "expires_in",
        "organization_uid",
        "user_uid",
        "token_type",
    }
    assert tokens["expires_in"] == 3600
    assert tokens["token_type"] == "Bearer"
    assert tokens["organization_uid"] == emulator.organization_uid
    assert _attributes(http, emulator, authorization=f"Bearer {tokens['access_token']}") == 200
    # Codes are single use.
    r = http.post(f"{DEVHUB}/token", data={**form, "code_verifier": "verifier"})
    assert r.status_code == 400
    assert emulator.code_exchanges == 1


def test_authorization_code_with_client_secret(
    http: httpx.Client, emulator: PersonalizeEmulator
) -> None:
    emulator.add_oauth_code("c", client_id="cid", client_secret="shh", redirect_uri="http://cb")
    form = {"grant_type": "authorization_code", "code": "c", "client_id": "cid"}
    assert (
        http.post(f"{DEVHUB}/token", data={**form, "redirect_uri": "http://cb"}).status_code == 401
    )
    r = http.post(f"{DEVHUB}/token", data={**form, "client_secret": "shh"})
    assert r.status_code == 400  # redirect_uri missing
    r = http.post(
        f"{DEVHUB}/token", data={**form, "client_secret": "shh", "redirect_uri": "http://cb"}
    )
    assert r.status_code == 200


def test_refresh_rotates_tokens(clocked: PersonalizeEmulator, clock: Any) -> None:
    clocked.add_refresh_token("refresh-1")
    with httpx.Client(transport=clocked.transport()) as http:
        r = http.post(
            f"{DEVHUB}/token", data={"grant_type": "refresh_token", "refresh_token": "refresh-1"}
        )
        assert r.status_code == 200
        first = r.json()
        assert clocked.token_refreshes == 1
        bearer = f"Bearer {first['access_token']}"
        assert _attributes(http, clocked, authorization=bearer) == 200
        # The old refresh token was rotated away.
        r = http.post(
            f"{DEVHUB}/token", data={"grant_type": "refresh_token", "refresh_token": "refresh-1"}
        )
        assert r.status_code == 400
        assert r.json()["error"] == "invalid_grant"
        # The access token expires after expires_in seconds of the emulator's clock.
        clock.advance(3601)
        assert _attributes(http, clocked, authorization=bearer) == 401
        r = http.post(
            f"{DEVHUB}/token",
            data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        )
        assert r.status_code == 200
        assert _attributes(http, clocked, authorization=f"Bearer {r.json()['access_token']}") == 200
        assert clocked.token_refreshes == 2


def test_token_endpoint_errors(http: httpx.Client) -> None:
    r = http.post(f"{DEVHUB}/token", data={"grant_type": "password"})
    assert r.status_code == 400
    assert r.json()["error"] == "unsupported_grant_type"
    r = http.post(f"{DEVHUB}/token", data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    assert http.get(f"{DEVHUB}/token").status_code == 404
    r = http.post(
        "http://local/developerhub/token",
        json={"grant_type": "refresh_token", "refresh_token": "x"},
    )
    assert r.status_code == 400


def test_concurrent_refreshes_with_one_token_succeed_once(emulator: PersonalizeEmulator) -> None:
    emulator.add_refresh_token("shared")
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def refresh() -> None:
        with httpx.Client(transport=emulator.transport()) as http:
            barrier.wait()
            r = http.post(
                f"{DEVHUB}/token", data={"grant_type": "refresh_token", "refresh_token": "shared"}
            )
            statuses.append(r.status_code)

    threads = [threading.Thread(target=refresh) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [400] * 7
    assert emulator.token_refreshes == 1
