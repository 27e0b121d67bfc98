"""What the auth tests share: marked secrets (any of them in an output is a leak), a settable
clock, an OAuth factory and canned answers of the token endpoint and the CMA."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import httpx

from contentstack_personalize.auth import OAuth

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


def login_ok(token: str = AUTHTOKEN) -> httpx.Response:
    return httpx.Response(
        200, json={"notice": "Login Successful.", "user": {"uid": "u1", "authtoken": token}}
    )


WRONG_PASSWORD = {
    "error_message": "Looks like your email or password is invalid. Please try again.",
    "error_code": 104,
    "errors": {},
}
