"""The pure HTTP core: retry decisions, Retry-After, rate limiter, redaction, UID checks, JSON."""

from __future__ import annotations

import asyncio
import email.utils
import random
import threading
import time
from typing import Any

import httpx
import pytest

from contentstack_personalize._http import (
    USER_AGENT,
    Attempt,
    RateLimiter,
    RetryPolicy,
    asend_with_retries,
    check_user_uid,
    connect_failure,
    encode_json,
    redact_body,
    redact_headers,
    send_with_retries,
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


# ---------------------------------------------------------------------------------------------
# The one request pipeline
# ---------------------------------------------------------------------------------------------


class TestPipeline:
    SCRIPT = (503, 429, 200)

    def _scripted(self) -> list[Attempt]:
        return [
            Attempt(object(), status=s, retry_after="0" if s == 429 else None) for s in self.SCRIPT
        ]

    def test_sync_and_async_drivers_decide_alike(self) -> None:
        seen_sync: list[tuple[int, int | None, bool]] = []
        seen_async: list[tuple[int, int | None, bool]] = []
        policy = RetryPolicy(sleep=False)
        answers = iter(self._scripted())
        last, attempts = send_with_retries(
            policy,
            lambda n: next(answers),
            observe=lambda n, a, t, d, again: seen_sync.append((n, a.status, again)),
        )
        assert last.ok and attempts == 3
        answers = iter(self._scripted())

        async def send(n: int) -> Attempt:
            return next(answers)

        last, attempts = asyncio.run(
            asend_with_retries(
                policy,
                send,
                observe=lambda n, a, t, d, again: seen_async.append((n, a.status, again)),
            )
        )
        assert last.ok and attempts == 3
        assert seen_sync == seen_async == [(1, 503, True), (2, 429, True), (3, 200, False)]

    def test_connection_failures_of_each_kind(self) -> None:
        import socket
        import ssl

        def wrapped(cause: BaseException) -> httpx.ConnectError:
            exc = httpx.ConnectError("failed")
            exc.__cause__ = cause
            return exc

        policy = RetryPolicy(jitter=0)  # 5 attempts for anything else
        refused = wrapped(ConnectionRefusedError(111, "refused"))
        dns = wrapped(socket.gaierror(-2, "Name or service not known"))
        tls = wrapped(ssl.SSLCertVerificationError("certificate verify failed"))
        assert connect_failure(refused) == "refused" and connect_failure(dns) == "dns"
        assert connect_failure(tls) == "tls" and connect_failure(httpx.ConnectError("x")) is None
        assert (
            policy.next_delay(1, exc=refused) == 0.25 and policy.next_delay(2, exc=refused) is None
        )
        assert policy.next_delay(1, exc=dns) == 0.25 and policy.next_delay(2, exc=dns) is None
        assert policy.next_delay(1, exc=tls) is None
        assert policy.next_delay(4, exc=httpx.ConnectError("x")) is not None

    def test_retry_after_send_off_only_retries_what_was_not_sent(self) -> None:
        policy = RetryPolicy(retry_after_send=False)
        assert policy.next_delay(1, exc=httpx.ConnectError("x")) is not None
        assert policy.next_delay(1, exc=httpx.ConnectTimeout("x")) is not None
        assert policy.next_delay(1, exc=httpx.ReadTimeout("x")) is None
        assert policy.next_delay(1, exc=httpx.ReadError("x")) is None

    def test_one_user_agent_everywhere(self) -> None:
        from contentstack_personalize import PersonalizeClient
        from contentstack_personalize.alerts import SlackWebhook
        from contentstack_personalize.auth import login

        agents: list[str] = []

        def handler(request: httpx.Request) -> httpx.Response:
            agents.append(request.headers["user-agent"])
            if request.url.path == "/v3/user-session":
                return httpx.Response(200, json={"user": {"authtoken": "t" * 20}})
            return httpx.Response(200, json=[])

        transport = httpx.MockTransport(handler)
        with PersonalizeClient("p" * 24, auth="a" * 20, transport=transport, read_env=False) as c:
            c.attributes.list()
        login("me@example.com", "pw-123456", cma_url="http://cma.test", transport=transport)
        SlackWebhook("https://hooks.slack.test/services/T0/B0/XYZ", transport=transport).send(
            _an_alert()
        )
        assert agents == [USER_AGENT] * 3

    def test_an_alert_sink_keeps_one_http_client(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from contentstack_personalize.alerts import SlackWebhook

        made: list[httpx.Client] = []
        real_init = httpx.Client.__init__

        def counting_init(self: httpx.Client, *args: object, **kwargs: object) -> None:
            made.append(self)
            real_init(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(httpx.Client, "__init__", counting_init)
        transport = httpx.MockTransport(lambda request: httpx.Response(200))
        sink = SlackWebhook("https://hooks.slack.test/services/T0/B0/XYZ", transport=transport)
        for _ in range(3):
            sink.send(_an_alert())
        assert len(made) == 1
        sink.close()
        assert made[0].is_closed

    def test_an_alert_sink_retries_only_what_was_not_delivered(self) -> None:
        from contentstack_personalize.alerts import AlertDeliveryError, SlackWebhook

        answers = [503, 200, 500, 500]
        calls: list[int] = []

        def handler(request: httpx.Request) -> httpx.Response:
            calls.append(1)
            return httpx.Response(answers.pop(0), headers={"retry-after": "0"})

        sink = SlackWebhook(
            "https://hooks.slack.test/services/T0/B0/XYZ", transport=httpx.MockTransport(handler)
        )
        sink.send(_an_alert())  # 503 then 200: delivered once
        with pytest.raises(AlertDeliveryError, match="HTTP 500"):
            sink.send(_an_alert())  # a 500 may have been acted on: not resent
        assert len(calls) == 3


def _an_alert() -> Any:
    from contentstack_personalize.alerts import Alert

    return Alert(
        sync_name="users",
        rule="run_failed",
        severity="critical",
        action="trigger",
        message="the run failed",
        run_id="r1",
        run_status="failed",
        at=0.0,
        dedup_key="users/run_failed",
    )


class TestManagementLimiter:
    def test_a_new_process_starts_with_a_full_window(self) -> None:
        """Nothing carries over between processes: a rerun in a new process sends its first ten
        Management calls at once, and sustained traffic stays at 10 per second."""
        now = [100.0]
        limiter = RateLimiter(10, 1.0, clock=lambda: now[0])
        waits = [limiter.reserve() for _ in range(10)]
        assert waits == [0.0] * 10
        starts = [now[0] + w for w in waits]
        for _ in range(20):
            starts.append(now[0] + limiter.reserve())
        starts.sort()
        for i in range(len(starts) - 10):
            assert starts[i + 10] - starts[i] >= 1.0  # never 11 starts within one second
        assert starts[-1] - starts[0] < 2 * 1.05 + 1e-9  # and no slower than the window allows


def test_an_echoed_secret_is_masked_in_every_encoded_form() -> None:
    """A server may echo a secret URL-encoded or inside a JSON string (non-ASCII and ``/``
    escaped or not): the exchange record masks every form, not only the raw text."""
    import json as _json
    from urllib.parse import quote, quote_plus

    from contentstack_personalize._http import REDACTED, make_exchange

    secret = 'pässwörd/"x" 1'
    forms = [
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        _json.dumps(secret)[1:-1],
        _json.dumps(secret, ensure_ascii=False)[1:-1],
        _json.dumps(secret)[1:-1].replace("/", "\\/"),
    ]
    request = httpx.Request("POST", "https://example.test/login")
    response = httpx.Response(400, content=" | ".join(forms).encode(), request=request)
    exchange = make_exchange(
        api="cma",
        request=request,
        response=response,
        started_at=0.0,
        duration=0.0,
        attempt=1,
        error=None,
        will_retry=False,
        max_body_bytes=10_000,
        secrets=[secret],
    )
    body = exchange.response_body or ""
    assert body.count(REDACTED) == len(forms), body
    assert "ss" not in body.replace(REDACTED, "")


@pytest.mark.parametrize(
    ("rate", "n", "seconds"), [(0.5, 3, 4.0), (1.5, 4, 2.0), (2.5, 6, 1.6), (10, 25, 2.0)]
)
def test_fractional_rate_limits(rate: float, n: int, seconds: float) -> None:
    now = [0.0]
    limiter = RateLimiter(rate, 1.0, margin=0.0, clock=lambda: now[0])
    starts = [limiter.reserve() for _ in range(n)]
    # the long-run rate is exactly `rate`: the n-th start is no earlier than (n - burst) / rate
    assert starts[-1] == pytest.approx(seconds)
    assert starts == sorted(starts)
    burst = max(1, int(rate))
    assert starts[:burst] == [0.0] * burst
