"""The abort policy alone: the rejection ratio over a recent window, an unreachable edge, and
connection failures in a row; systemic failures."""

from __future__ import annotations

import httpx
import pytest

from contentstack_personalize.errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from contentstack_personalize.sync._abort import CONNECT_FAILURES, AbortRule, is_systemic

URL = "https://edge.example/"


def refused() -> APIConnectionError:
    connect = httpx.ConnectError("[Errno 111] Connection refused")
    connect.__cause__ = ConnectionRefusedError(111, "Connection refused")
    error = APIConnectionError("could not connect")
    error.__cause__ = connect
    return error


def rejected() -> APIStatusError:
    return APIStatusError("bad value", status_code=422)


def test_stops_once_more_than_the_ratio_of_the_window_failed() -> None:
    rule = AbortRule(0.5, 4, URL)
    assert rule.failure(rejected(), "bad value") is None  # the window is not full yet
    rule.success()
    assert rule.failure(rejected(), "bad value") is None
    assert rule.failure(rejected(), "bad value") == (
        "3 of the last 4 requests failed, more than 50%; last error: bad value"
    )


def test_the_window_forgets_old_failures() -> None:
    rule = AbortRule(0.5, 4, URL)
    rule.failure(rejected(), "x")
    rule.failure(rejected(), "x")
    for _ in range(4):
        rule.success()
    assert rule.failed == 0
    assert rule.failure(rejected(), "x") is None
    assert rule.failure(rejected(), "x") is None  # 2 of 4: not more than half


def test_an_edge_never_reached_stops_at_the_first_connection_failure() -> None:
    rule = AbortRule(1.0, 100, URL)
    verdict = rule.failure(refused(), "refused")
    assert verdict is not None
    assert verdict.startswith(f"cannot reach the Edge API at {URL}: it refuses connections")


def test_after_a_success_only_consecutive_connection_failures_stop() -> None:
    rule = AbortRule(1.0, 100, URL)
    rule.success()
    for _ in range(CONNECT_FAILURES - 1):
        assert rule.failure(refused(), "refused") is None
    rule.failure(rejected(), "x")  # an answer resets the streak
    for _ in range(CONNECT_FAILURES - 1):
        assert rule.failure(refused(), "refused") is None
    verdict = rule.failure(refused(), "refused")
    assert verdict is not None and f"{CONNECT_FAILURES} requests in a row" in verdict


@pytest.mark.parametrize(
    ("error", "systemic"),
    [
        (AuthenticationError("no", status_code=401), True),
        (PermissionDeniedError("no", status_code=403), True),
        (NotFoundError("no", status_code=404), True),
        (RateLimitError("slow", status_code=429), False),
        (APIStatusError("bad", status_code=422), False),
        (None, False),
    ],
)
def test_systemic_failures(error: APIStatusError | None, systemic: bool) -> None:
    assert is_systemic(error) is systemic
