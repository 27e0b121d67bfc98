"""The credential-call core: one operation per call, run by a blocking and an async driver.

The drivers must agree: for the same scripted answers they send the same requests, report the
same attempts and return the same result or raise the same error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Generator
from typing import Any

import attrs
import httpx
import pytest

from contentstack_personalize._http import AUTH_RETRY, Exchange
from contentstack_personalize.auth import AuthToken, OAuth
from contentstack_personalize.auth._core import Call, Op, run_async, run_blocking
from contentstack_personalize.auth._exchange import exchange_op
from contentstack_personalize.auth._login import login_op, logout_op
from contentstack_personalize.errors import ConfigurationError
from tests.auth._support import (
    ACCESS,
    ALL_MARKS,
    AUTHTOKEN,
    CMA,
    CODE,
    PASSWORD,
    REFRESH,
    SECRET,
    TOKEN_URL,
    WRONG_PASSWORD,
    login_ok,
    token_answer,
)

Answer = httpx.Response | Exception
NO_WAIT = attrs.evolve(AUTH_RETRY, sleep=False)


@attrs.define
class Outcome:
    """What a driver did: the result (or error), the requests sent, the attempts observed."""

    result: tuple[Any, ...]
    sent: list[tuple[str, str, bytes, str | None]]
    attempts: list[tuple[int | None, bool, int]]


def _describe(value: object) -> tuple[Any, ...]:
    if isinstance(value, AuthToken):
        return ("AuthToken", value.token, value.organization_uid)
    if isinstance(value, OAuth):
        tokens = value.tokens
        assert tokens is not None
        return ("OAuth", tokens.access_token, tokens.refresh_token, tokens.user_uid)
    return ("value", value)


def _scripted(answers: list[Answer], sent: list[httpx.Request]) -> Callable[..., httpx.Response]:
    queue = iter(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        answer = next(queue)
        if isinstance(answer, Exception):
            raise answer
        # a fresh copy: the same script is played to both drivers
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    return handler


def run_driver(driver: str, make_op: Callable[[], Op[Any]], answers: list[Answer]) -> Outcome:
    """Run a fresh operation from ``make_op`` with ``driver`` against scripted ``answers``."""
    sent: list[httpx.Request] = []
    seen: list[Exchange] = []
    handler = _scripted(answers, sent)
    try:
        if driver == "sync":
            value = run_blocking(
                make_op(),
                transport=httpx.MockTransport(handler),
                retry=NO_WAIT,
                on_exchange=seen.append,
            )
        else:
            value = asyncio.run(
                run_async(
                    make_op(),
                    transport=httpx.MockTransport(handler),
                    retry=NO_WAIT,
                    on_exchange=seen.append,
                )
            )
        result = _describe(value)
    except Exception as exc:
        result = (type(exc).__name__, str(exc), type(exc.__cause__).__name__)
    return Outcome(
        result=result,
        sent=[(r.method, str(r.url), r.content, r.headers.get("authtoken")) for r in sent],
        attempts=[(e.status, e.will_retry, e.attempt) for e in seen],
    )


def both(make_op: Callable[[], Op[Any]], answers: list[Answer]) -> Outcome:
    """Run with both drivers, check they agree, and return the (common) outcome."""
    blocking = run_driver("sync", make_op, answers)
    concurrent = run_driver("async", make_op, answers)
    assert blocking == concurrent
    return blocking


def _login() -> Op[AuthToken]:
    return login_op("me@example.com", PASSWORD, cma_url=CMA, organization_uid="org-1")


def _exchange() -> Op[OAuth]:
    return exchange_op(
        code=CODE, client_id="c", app_id="a", redirect_uri="http://x/cb", client_secret=SECRET
    )


# ---------------------------------------------------------------------------- login


def test_login_succeeds_alike() -> None:
    outcome = both(_login, [login_ok()])
    assert outcome.result == ("AuthToken", AUTHTOKEN, "org-1")
    [(method, url, body, authtoken)] = outcome.sent
    assert (method, url, authtoken) == ("POST", f"{CMA}/v3/user-session", None)
    assert json.loads(body) == {"user": {"email": "me@example.com", "password": PASSWORD}}
    assert outcome.attempts == [(200, False, 1)]


@pytest.mark.parametrize(
    ("answers", "error", "words"),
    [
        pytest.param(
            [httpx.Response(401, json={"error_message": f"no {PASSWORD}", "error_code": 105})],
            "AuthenticationError",
            "no",
            id="401",
        ),
        pytest.param(
            [httpx.Response(422, json=WRONG_PASSWORD)],
            "BadRequestError",
            "email or password is invalid",
            id="422",
        ),
        pytest.param(
            [httpx.Response(294, json={"error_message": "Two-Factor token needed"})],
            "AuthenticationError",
            "tfa_token",
            id="294-no-token",
        ),
        pytest.param(
            [httpx.Response(200, text="<html>not json</html>")],
            "AuthenticationError",
            "login gave no authtoken",
            id="not-json",
        ),
        pytest.param(
            [httpx.Response(503)] * 3,
            "ServerError",
            "503",
            id="503-until-the-retries-run-out",
        ),
    ],
)
def test_login_refusals_alike(answers: list[Answer], error: str, words: str) -> None:
    outcome = both(_login, answers)
    assert outcome.result[0] == error
    assert words in outcome.result[1]
    assert PASSWORD not in outcome.result[1]


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (httpx.ConnectError("refused"), "APIConnectionError"),
        (httpx.ReadTimeout("slow"), "APITimeoutError"),
    ],
)
def test_login_network_errors_alike(exc: Exception, error: str) -> None:
    outcome = both(_login, [exc, exc, exc, exc])
    assert outcome.result[0] == error
    assert outcome.result[2] == type(exc).__name__  # the httpx error is the cause
    assert PASSWORD not in outcome.result[1]
    assert all(status is None for status, _, _ in outcome.attempts)
    assert outcome.attempts[-1][1] is False  # the last attempt is not retried


def test_login_retries_alike_then_succeeds() -> None:
    outcome = both(_login, [httpx.Response(503), httpx.Response(429), login_ok()])
    assert outcome.result == ("AuthToken", AUTHTOKEN, "org-1")
    assert outcome.attempts == [(503, True, 1), (429, True, 2), (200, False, 3)]


# ---------------------------------------------------------------------------- logout and exchange


def test_logout_alike() -> None:
    def op() -> Op[None]:
        return logout_op(AuthToken(AUTHTOKEN), cma_url=CMA)

    done = both(op, [httpx.Response(200, json={"notice": "bye"})])
    assert done.result == ("value", None)
    assert done.sent == [("DELETE", f"{CMA}/v3/user-session", b"", AUTHTOKEN)]
    refused = both(op, [httpx.Response(401, json={"error_message": f"{AUTHTOKEN} expired"})])
    assert refused.result[0] == "AuthenticationError" and "expired" in refused.result[1]
    assert AUTHTOKEN not in refused.result[1]


def test_exchange_alike() -> None:
    outcome = both(_exchange, [token_answer(access=ACCESS, refresh=REFRESH)])
    assert outcome.result == ("OAuth", ACCESS, REFRESH, "user-7")
    assert [(method, url) for method, url, _, _ in outcome.sent] == [("POST", TOKEN_URL)]


@pytest.mark.parametrize(
    ("answers", "error", "calls"),
    [
        ([httpx.Response(400, json={"error": "invalid_grant"})], "AuthenticationError", 1),
        ([httpx.Response(200, json={"token_type": "Bearer"})], "AuthenticationError", 1),
        ([httpx.ReadTimeout("slow")], "APITimeoutError", 1),  # a code is never sent twice
    ],
)
def test_exchange_failures_alike(answers: list[Answer], error: str, calls: int) -> None:
    outcome = both(_exchange, answers)
    assert outcome.result[0] == error
    assert len(outcome.sent) == calls
    for mark in ALL_MARKS:
        assert mark not in outcome.result[1]


# ---------------------------------------------------------------------------- the drivers


def test_an_operation_of_several_calls_gets_each_answer() -> None:
    def op() -> Op[list[int]]:
        statuses = []
        for n in (1, 2):
            request = httpx.Request("GET", f"{CMA}/v3/step/{n}")
            response = yield Call(request=request, what=f"step {n}")
            statuses.append(response.status_code)
        return statuses

    outcome = both(op, [httpx.Response(204), httpx.Response(404)])
    assert outcome.result == ("value", [204, 404])
    assert [url for _, url, _, _ in outcome.sent] == [f"{CMA}/v3/step/1", f"{CMA}/v3/step/2"]


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_the_operation_is_closed_when_its_call_fails(driver: str) -> None:
    closed: list[bool] = []

    def op() -> Generator[Call, httpx.Response, None]:
        try:
            yield Call(request=httpx.Request("POST", f"{CMA}/v3/x"), what="the call")
        finally:
            closed.append(True)

    outcome = run_driver(driver, op, [httpx.ConnectError("down")] * 4)
    assert outcome.result[0] == "APIConnectionError"
    assert "the call failed" in outcome.result[1]
    assert closed == [True]


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_refused_argument_sends_nothing(driver: str) -> None:
    def op() -> Op[AuthToken]:
        return login_op("", PASSWORD, cma_url=CMA)

    outcome = run_driver(driver, op, [])
    assert outcome.result[0] == "ConfigurationError"
    assert outcome.sent == [] and outcome.attempts == []


async def test_client_and_transport_together_are_refused_by_both_drivers() -> None:
    transport = httpx.MockTransport(lambda request: login_ok())
    with httpx.Client() as client, pytest.raises(ConfigurationError, match="not both"):
        run_blocking(_login(), http_client=client, transport=transport)
    async with httpx.AsyncClient() as aclient:
        with pytest.raises(ConfigurationError, match="not both"):
            await run_async(_login(), http_client=aclient, transport=transport)


class ClosingTransport(httpx.MockTransport):
    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        super().__init__(handler)
        self.closed = 0

    def close(self) -> None:
        self.closed += 1

    async def aclose(self) -> None:
        self.closed += 1


async def test_a_driver_closes_the_client_it_made_and_leaves_yours_open() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return login_ok()

    own = ClosingTransport(handler)
    run_blocking(_login(), transport=own)
    await run_async(_login(), transport=own)
    assert own.closed == 2
    with httpx.Client(transport=ClosingTransport(handler)) as client:
        run_blocking(_login(), http_client=client)
        assert not client.is_closed
    async with httpx.AsyncClient(transport=ClosingTransport(handler)) as aclient:
        await run_async(_login(), http_client=aclient)
        assert not aclient.is_closed


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_broken_exchange_hook_is_logged_not_raised(
    driver: str, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(exchange: Exchange) -> None:
        raise RuntimeError("hook down")

    transport = httpx.MockTransport(lambda request: login_ok())
    if driver == "sync":
        token = run_blocking(_login(), transport=transport, on_exchange=broken)
    else:
        token = asyncio.run(run_async(_login(), transport=transport, on_exchange=broken))
    assert token.token == AUTHTOKEN
    assert "exchange hook" in caplog.text
    for mark in ALL_MARKS:
        assert mark not in caplog.text


def test_a_call_hides_its_secrets() -> None:
    op = login_op("me@example.com", PASSWORD, tfa_token="MARK-tfa-0011", cma_url=CMA)
    call = next(op)
    op.close()
    assert call.secrets == (PASSWORD, "MARK-tfa-0011")
    assert PASSWORD not in repr(call) and "MARK-tfa" not in repr(call)
    assert "secrets='[REDACTED]'" in repr(call)
