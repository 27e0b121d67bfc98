"""The pure HTTP core: retry decisions, Retry-After, rate limiter, redaction, UID checks, JSON."""

from __future__ import annotations

import asyncio
import email.utils
import random
import threading
import time

import httpx
import pytest

from contentstack_personalize._http import (
    RateLimiter,
    RetryPolicy,
    check_user_uid,
    encode_json,
    redact_body,
    redact_headers,
    shared_rate_limiter,
    user_uid_problem,
)
from contentstack_personalize.errors import ConfigurationError, ValidationError, parse_retry_after


class TestRetryPolicy:
    @pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
    def test_retries_transient_statuses(self, status: int) -> None:
        assert RetryPolicy(jitter=0).next_delay(1, status_code=status) == 0.5

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 501])
    def test_never_retries_other_statuses(self, status: int) -> None:
        assert RetryPolicy().next_delay(1, status_code=status) is None

    def test_stops_after_max_attempts(self) -> None:
        policy = RetryPolicy(max_attempts=3, jitter=0)
        assert policy.next_delay(2, status_code=503) is not None
        assert policy.next_delay(3, status_code=503) is None

    def test_exponential_backoff_is_capped(self) -> None:
        policy = RetryPolicy(initial_delay=1, multiplier=2, max_delay=5, jitter=0, max_attempts=10)
        assert [policy.backoff(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]

    def test_jitter_stays_within_bounds_and_varies(self) -> None:
        policy = RetryPolicy(initial_delay=1, jitter=0.5, max_attempts=10)
        rng = random.Random(7)
        delays = [policy.backoff(1, rng) for _ in range(200)]
        assert all(0.5 <= d <= 1.0 for d in delays)
        assert len(set(delays)) > 100

    def test_retry_after_seconds_wins_over_backoff(self) -> None:
        assert RetryPolicy().next_delay(1, status_code=429, retry_after="7") == 7.0

    def test_retry_after_http_date(self) -> None:
        when = email.utils.formatdate(time.time() + 30, usegmt=True)
        delay = RetryPolicy().next_delay(1, status_code=503, retry_after=when)
        assert delay is not None and 25 <= delay <= 30

    def test_retry_after_is_capped(self) -> None:
        assert (
            RetryPolicy(max_retry_after=10).next_delay(1, status_code=429, retry_after="3600") == 10
        )

    def test_garbage_retry_after_falls_back_to_backoff(self) -> None:
        assert RetryPolicy(jitter=0).next_delay(1, status_code=429, retry_after="soon") == 0.5

    def test_transport_errors(self) -> None:
        policy = RetryPolicy(jitter=0)
        assert policy.next_delay(1, exc=httpx.ReadTimeout("t")) == 0.5
        assert policy.next_delay(1, exc=httpx.ConnectError("c")) == 0.5
        assert policy.next_delay(1, exc=httpx.RemoteProtocolError("dropped")) == 0.5
        assert policy.next_delay(1, exc=httpx.UnsupportedProtocol("ftp")) is None
        assert RetryPolicy(retry_timeouts=False).next_delay(1, exc=httpx.ReadTimeout("t")) is None

    def test_disabled(self) -> None:
        assert RetryPolicy.disabled().next_delay(1, status_code=503) is None

    @pytest.mark.parametrize(
        "kwargs", [{"max_attempts": 0}, {"initial_delay": -1}, {"jitter": 2.0}]
    )
    def test_invalid_policy(self, kwargs: dict[str, float]) -> None:
        with pytest.raises(ConfigurationError):
            RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_parse_retry_after_edge_cases() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("-1") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after("1.5") == 1.5
    past = email.utils.formatdate(time.time() - 100, usegmt=True)
    assert parse_retry_after(past) == 0.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestRateLimiter:
    def test_allows_a_burst_then_spaces_requests(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(10, 1.0, margin=0.0, clock=clock)
        waits = [limiter.reserve() for _ in range(25)]
        assert waits[:10] == [0.0] * 10
        assert waits[10:20] == [1.0] * 10
        assert waits[20:] == [2.0] * 5

    def test_no_window_ever_holds_more_than_rate(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(10, 1.0, margin=0.0, clock=clock)
        starts = []
        for i in range(100):
            clock.now = 1000.0 + i * 0.03
            starts.append(clock.now + limiter.reserve())
        starts.sort()
        for i in range(len(starts) - 10):
            assert starts[i + 10] - starts[i] >= 1.0 - 1e-9

    def test_threads_share_the_budget(self) -> None:
        limiter = RateLimiter(10, 0.2, margin=0.0)
        starts: list[float] = []
        lock = threading.Lock()

        def worker() -> None:
            for _ in range(5):
                limiter.acquire()
                with lock:
                    starts.append(time.monotonic())

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        starts.sort()
        # 30 requests at 10 per 0.2 s: the 21st cannot start before two windows have passed.
        assert starts[20] - starts[0] >= 0.4 - 0.02

    async def test_asyncio_tasks_share_the_budget(self) -> None:
        limiter = RateLimiter(10, 0.1, margin=0.0)
        waited = await asyncio.gather(*(limiter.aacquire() for _ in range(25)))
        assert sorted(waited)[-1] >= 0.2 - 0.01
        assert sum(1 for w in waited if w == 0) == 10

    def test_shared_by_organization(self) -> None:
        a = shared_rate_limiter("https://m.example/", "org-shared-test", 10)
        b = shared_rate_limiter("https://m.example", "org-shared-test", 10)
        c = shared_rate_limiter("https://m.example", "other-org", 10)
        assert a is b and a is not c

    def test_invalid(self) -> None:
        with pytest.raises(ConfigurationError):
            RateLimiter(0)


class TestRedaction:
    def test_headers(self) -> None:
        out = redact_headers(
            httpx.Headers({"authtoken": "s1", "Authorization": "Bearer s2", "x-project-uid": "p"})
        )
        assert out == {
            "authtoken": "[REDACTED]",
            "authorization": "[REDACTED]",
            "x-project-uid": "p",
        }

    def test_json_and_form_bodies(self) -> None:
        body = '{"user": {"authtoken": "SECRET1", "email": "a@b"}, "refresh_token":"SECRET\\"2"}'
        out = redact_body(body)
        assert "SECRET" not in out and "a@b" in out
        form = "grant_type=refresh_token&refresh_token=SECRET3&client_secret=SECRET4&app_id=x"
        out = redact_body(form)
        assert "SECRET" not in out and "grant_type=refresh_token" in out and "app_id=x" in out

    def test_plain_body_untouched(self) -> None:
        assert redact_body('{"plan": "gold"}') == '{"plan": "gold"}'


class TestUserUid:
    @pytest.mark.parametrize("uid", ["42", "user@example.com", "a b", "f47ac10b-58cc-4372", "~!"])
    def test_valid(self, uid: str) -> None:
        assert user_uid_problem(uid) is None
        assert check_user_uid(uid) == uid

    @pytest.mark.parametrize(
        ("uid", "reason"),
        [
            ("", "empty"),
            ("   ", "only whitespace"),
            (" x", "leading or trailing whitespace"),
            ("a\nb", "control character"),
            ("a\rb", "control character"),
            ("a\x00b", "control character"),
            ("a\tb", "control character"),
            ("usér", "non-ASCII"),
            ("x" * 1025, "longer than"),
            (42, "must be a string"),
            (None, "must be a string"),
        ],
    )
    def test_invalid(self, uid: object, reason: str) -> None:
        problem = user_uid_problem(uid)
        assert problem is not None and reason in problem
        with pytest.raises(ValidationError, match="nothing was sent"):
            check_user_uid(uid)


class TestEncodeJson:
    def test_compact_utf8(self) -> None:
        assert encode_json({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'.encode()

    @pytest.mark.parametrize(
        ("value", "where"),
        [
            ({"ltv": float("nan")}, "ltv"),
            ({"ltv": float("inf")}, "ltv"),
            ({"a": {"b": [1, object()]}}, "a.b[1]"),
            ({"when": {1, 2}}, "when"),
        ],
    )
    def test_rejects_with_location(self, value: object, where: str) -> None:
        with pytest.raises(ValidationError) as info:
            encode_json(value)
        assert where in str(info.value)
        assert "nothing was sent" in str(info.value)
