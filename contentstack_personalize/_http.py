"""The pure HTTP core shared by the sync and async clients.

Owns: the retry policy and its decisions (backoff with jitter, ``Retry-After``), the client-side
rate limiter for the Management API, header and body redaction, the exchange records handed to
observers (the debugger), user UID checks, and the mapping of transport failures to our errors.
Nothing here performs I/O; the thin shells in ``client.py`` do.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal

import attrs
import httpx

from ._version import __version__
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
    TransportError,
    ValidationError,
    error_from_response,
    parse_retry_after,
)

__all__ = [
    "USER_AGENT",
    "Attempt",
    "Exchange",
    "ExchangeHook",
    "RateLimiter",
    "RetryPolicy",
    "check_header",
    "check_user_uid",
    "connect_failure",
    "redact_body",
    "redact_headers",
    "scrub",
    "send_with_retries",
    "asend_with_retries",
    "shared_rate_limiter",
    "user_uid_problem",
]

#: Which API a request goes to: the clients' three, and ``oauth`` for token calls of auth/.
Api = Literal["edge", "management", "cma", "oauth"]
#: The APIs a client sends to (what a resource call names).
ClientApi = Literal["edge", "management", "cma"]

#: The one user agent of every request the package sends (clients, auth, alert sinks).
USER_AGENT = f"contentstack-personalize-python/{__version__}"

#: Header names whose values are credentials.
SECRET_HEADERS = frozenset(
    {"authtoken", "authorization", "cookie", "set-cookie", "proxy-authorization", "x-api-key"}
)
#: JSON keys whose values are credentials, wherever they appear in a body.
SECRET_KEYS = (
    "authtoken",
    "password",
    "access_token",
    "refresh_token",
    "client_secret",
    "tfa_token",
    "code_verifier",
)
REDACTED = "[REDACTED]"
_SECRET_NAMES_LOWER = tuple(sorted({*SECRET_KEYS, *SECRET_HEADERS}))

_SECRET_KEY_RE = re.compile(
    r'("(?:' + "|".join(SECRET_KEYS) + r')"\s*:\s*)"(?:[^"\\]|\\.)*"', re.IGNORECASE
)
_SECRET_FORM_RE = re.compile(r"(?<![A-Za-z_])(" + "|".join(SECRET_KEYS) + r")=[^&\s]*")
_ALL_SECRET_NAMES = "|".join(sorted({*SECRET_KEYS, *SECRET_HEADERS}, key=len, reverse=True))
# 'authtoken': 'x' and "authtoken": 'x' as in a Python dict repr
_SECRET_QUOTED_RE = re.compile(
    r"""(['"](?:""" + _ALL_SECRET_NAMES + r""")['"]\s*:\s*)(['"])(?:\\.|(?!\2).)*\2""",
    re.IGNORECASE,
)
# authtoken: x   /   Authorization: Bearer x   (raw header lines)
_SECRET_LINE_RE = re.compile(r"(?im)^(\s*(?:" + _ALL_SECRET_NAMES + r")\s*:\s*)(?!\[REDACTED\]).+$")


def redact_headers(
    headers: Mapping[str, str] | httpx.Headers | list[tuple[str, str]],
) -> dict[str, str]:
    """A copy of ``headers`` with lowercase names (one casing for every API and sender) and
    credential values replaced by ``[REDACTED]``."""
    if isinstance(headers, httpx.Headers):
        items: Any = headers.multi_items()
    elif isinstance(headers, list):
        items = headers
    else:
        items = headers.items()
    out: dict[str, str] = {}
    for k, v in items:
        name = k.lower()
        out[name] = REDACTED if name in SECRET_HEADERS else v
    return out


# ---------------------------------------------------------------------------------------------
# Header names and values
# ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def header_problem(name: object, value: object) -> str | None:
    """Why ``name: value`` cannot be sent as an HTTP header, or ``None`` when it can. The value
    is never quoted (it may be a credential)."""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        return f"header name {name!r} is not a valid HTTP token (letters, digits, -_.!#$%&'*+^`|~)"
    if not isinstance(value, str):
        return f"header {name!r} must have a string value, not {type(value).__name__}"
    if _BAD_VALUE.search(value):
        return (
            f"header {name!r} has a line break or control character in its value, which would "
            "let it write other headers"
        )
    if not value.isascii():
        return f"header {name!r} has a non-ASCII value; HTTP header values must be ASCII"
    return None


def check_header(name: object, value: object) -> None:
    """Raise :class:`ConfigurationError` when ``name: value`` is not a sendable header."""
    problem = header_problem(name, value)
    if problem is not None:
        raise ConfigurationError(f"{problem}; fix the client's headers=")


def redact_body(text: str) -> str:
    """Mask credential values in a JSON or form-encoded body (login, OAuth token answers)."""
    lowered = text.lower()
    if not any(key in lowered for key in _SECRET_NAMES_LOWER):
        return text
    text = _SECRET_KEY_RE.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)
    text = _SECRET_QUOTED_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}{m.group(2)}", text)
    text = _SECRET_LINE_RE.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return _SECRET_FORM_RE.sub(lambda m: f"{m.group(1)}={REDACTED}", text)


# ---------------------------------------------------------------------------------------------
# User UIDs
# ---------------------------------------------------------------------------------------------

#: Longest user UID accepted. Not a documented API limit: it keeps the header far below the
#: 8 KiB header limits common in proxies and load balancers.
MAX_USER_UID_LENGTH = 1024

_UID_OK = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


def user_uid_problem(uid: object) -> str | None:
    """Why ``uid`` cannot be sent as a Personalize user UID, or ``None`` when it can.

    A UID travels in the ``x-cs-personalize-user-uid`` header, so it must be a non-empty string
    of printable ASCII (spaces allowed inside, not at either end), at most
    :data:`MAX_USER_UID_LENGTH` characters. Non-ASCII is refused rather than guessed at: header
    encodings beyond ASCII are not interoperable, and the API documents none.
    """
    if not isinstance(uid, str):
        return f"user UID must be a string, not {type(uid).__name__}"
    if not uid:
        return "user UID is empty"
    if len(uid) > MAX_USER_UID_LENGTH:
        return f"user UID is longer than {MAX_USER_UID_LENGTH} characters"
    if _UID_OK.fullmatch(uid):
        return None
    if not uid.strip():
        return "user UID is only whitespace"
    if uid != uid.strip():
        return "user UID has leading or trailing whitespace"
    for ch in uid:
        code = ord(ch)
        if code < 0x20 or code == 0x7F:
            return f"user UID contains control character {ch!r}"
        if code > 0x7E:
            return f"user UID contains non-ASCII character {ch!r}"
    return "user UID is not a valid header value"  # pragma: no cover - covered by the above


def check_user_uid(uid: object) -> str:
    """Return ``uid`` if it can be sent, else raise :class:`ValidationError` naming it."""
    problem = user_uid_problem(uid)
    if problem is not None:
        shown = repr(uid)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise ValidationError(
            f"{problem}: {shown}; nothing was sent. Pass the user's identifier as a non-empty "
            "string of printable ASCII (no control characters or surrounding whitespace)"
        )
    assert isinstance(uid, str)
    return uid


# ---------------------------------------------------------------------------------------------
# Retry policy
# ---------------------------------------------------------------------------------------------

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how long to wait before trying a request again.

    Retries 429, 500, 502, 503 and 504 answers, timeouts and dropped or refused connections;
    never another 4xx. The wait before attempt ``n+1`` is
    ``min(max_delay, initial_delay * multiplier ** (n-1))`` scaled by a random factor in
    ``[1 - jitter, 1]``, unless the server sent ``Retry-After`` (seconds or an HTTP date), which
    is honoured up to ``max_retry_after``.

    Example::

        client = PersonalizeClient(project_uid, retry=RetryPolicy(max_attempts=8, max_delay=60))
        RetryPolicy.disabled()            # one attempt only
        RetryPolicy(sleep=False)          # decide as usual but never wait (tests)
    """

    max_attempts: int = 5
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 120.0
    retry_statuses: frozenset[int] = RETRY_STATUSES
    retry_timeouts: bool = True
    retry_connection_errors: bool = True
    retry_after_send: bool = True
    sleep: bool = True

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError(
                f"RetryPolicy.max_attempts must be at least 1, got {self.max_attempts}; "
                "use RetryPolicy.disabled() for a single attempt"
            )
        if self.initial_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ConfigurationError(
                "RetryPolicy delays must not be negative; set initial_delay, max_delay and "
                "max_retry_after to 0 or more (sleep=False skips the waits)"
            )
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigurationError(
                f"RetryPolicy.jitter must be between 0 and 1, got {self.jitter}; "
                "use 0 for no jitter"
            )

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), with jitter."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** max(0, attempt - 1))
        if self.jitter:
            factor = 1.0 - self.jitter * (rng or random).random()
            base *= factor
        return base

    def retryable_status(self, status_code: int) -> bool:
        """Whether an answer with this status is worth another attempt."""
        return status_code in self.retry_statuses

    def retryable_exception(self, exc: BaseException) -> bool:
        """Whether this transport failure is worth another attempt."""
        if not self.retry_after_send and not isinstance(
            exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
        ):
            return False  # the server may have acted on the request: never send it twice
        if isinstance(exc, httpx.TimeoutException):
            return self.retry_timeouts
        if isinstance(exc, httpx.TransportError):
            # Connect errors, dropped connections, protocol errors. Not "unsupported protocol"
            # or proxy misconfiguration, which will not fix themselves.
            if isinstance(exc, (httpx.UnsupportedProtocol, httpx.ProxyError)):
                return False
            return self.retry_connection_errors
        return False

    def connect_attempts(self, exc: BaseException) -> int | None:
        """How many attempts a connection-level failure gets, when it differs from
        ``max_attempts``: a refused connection or an unresolvable host gets
        :data:`SYSTEMIC_CONNECT_ATTEMPTS` quick ones (such failures are systemic: burning the
        whole backoff schedule on each request only delays the run's abort), a failed
        certificate check one (it cannot fix itself)."""
        kind = connect_failure(exc)
        if kind == "tls":
            return 1
        if kind is not None:
            return min(self.max_attempts, SYSTEMIC_CONNECT_ATTEMPTS)
        return None

    def next_delay(
        self,
        attempt: int,
        *,
        status_code: int | None = None,
        exc: BaseException | None = None,
        retry_after: str | None = None,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to stop retrying.

        ``attempt`` is the number of the attempt that just failed (1-based).
        """
        if attempt >= self.max_attempts:
            return None
        if exc is not None:
            if not self.retryable_exception(exc):
                return None
            limit = self.connect_attempts(exc)
            if limit is not None:
                if attempt >= limit:
                    return None
                return min(self.backoff(attempt, rng), SYSTEMIC_CONNECT_DELAY)
        elif status_code is None or not self.retryable_status(status_code):
            return None
        server_wait = parse_retry_after(retry_after)
        if server_wait is not None:
            return min(server_wait, self.max_retry_after)
        return self.backoff(attempt, rng)


DEFAULT_RETRY = RetryPolicy()

#: Credential calls (login, logout, OAuth code exchange): retried only when the server surely
#: did not act (no connection, 429, 503), because a code or a login must not be used twice.
AUTH_RETRY = RetryPolicy(
    max_attempts=3,
    retry_statuses=frozenset({429, 503}),
    retry_after_send=False,
    max_retry_after=30.0,
)

#: Attempts for a refused connection or an unresolvable host (see ``connect_attempts``).
SYSTEMIC_CONNECT_ATTEMPTS = 2
#: The longest wait before that second attempt, in seconds.
SYSTEMIC_CONNECT_DELAY = 0.25


def connect_failure(exc: BaseException | None) -> Literal["refused", "dns", "tls"] | None:
    """What kind of connection-level failure ``exc`` is: ``"refused"``, ``"dns"`` (the host did
    not resolve), ``"tls"`` (the certificate check failed), or ``None`` for anything else,
    including every failure after connecting. ``exc`` is an ``httpx.ConnectError`` from either
    sender, or our ``APIConnectionError`` (whose cause is one): a sync can tell a dead endpoint
    from one bad request with ``connect_failure(outcome.error)``."""
    if isinstance(exc, APIConnectionError):
        exc = exc.__cause__
    if not isinstance(exc, httpx.ConnectError):
        return None
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        cur = stack.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLCertVerificationError):
            return "tls"
        if isinstance(cur, ConnectionRefusedError):
            return "refused"
        if isinstance(cur, socket.gaierror):
            return "dns"
        stack.extend((cur.__cause__, cur.__context__))
        stack.extend(getattr(cur, "exceptions", ()))
    return None


# ---------------------------------------------------------------------------------------------
# Rate limiting (Management API: 10 requests per second per organization)
# ---------------------------------------------------------------------------------------------


class RateLimiter:
    """A sliding-window limiter: at most ``rate`` requests start in any ``per`` seconds.

    Callers *reserve* a start time under a lock and then wait outside it, so the same limiter is
    safe from many threads and many event loops at once: ``acquire()`` sleeps with
    ``time.sleep``; ``await aacquire()`` with ``asyncio.sleep``.

    ``margin`` widens the window a little because requests reach the server later than they
    leave us, by a varying delay.
    """

    def __init__(
        self,
        rate: float,
        per: float = 1.0,
        *,
        margin: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or per <= 0:
            raise ConfigurationError(
                f"rate limit must be a positive number of requests per period, got rate={rate}, "
                f"per={per}; pass both above 0, e.g. RateLimiter(10, per=1.0)"
            )
        self.rate = rate
        self.per = per
        # A burst of floor(rate) (at least 1) per window, the window stretched so that the
        # long-run rate is exactly ``rate`` per ``per`` (0.5/s, 2.5/s...).
        self._capacity = max(1, int(rate))
        self._window = per * self._capacity / rate + margin
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: deque[float] = deque()

    def reserve(self) -> float:
        """Claim the next start slot; return how many seconds to wait until it."""
        with self._lock:
            now = self._clock()
            slot = now
            if len(self._slots) >= self._capacity:
                slot = max(now, self._slots[0] + self._window)
                self._slots.popleft()
            if self._slots and slot < self._slots[-1]:
                slot = self._slots[-1]
            self._slots.append(slot)
            return slot - now

    def acquire(self) -> float:
        """Block the calling thread until a request may start; return the time waited."""
        wait = self.reserve()
        if wait > 0:
            time.sleep(wait)
        return wait

    async def aacquire(self) -> float:
        """Wait (without blocking the event loop) until a request may start."""
        wait = self.reserve()
        if wait > 0:
            import asyncio

            await asyncio.sleep(wait)
        return wait

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate}, per={self.per})"


_LIMITERS: dict[tuple[str, str, float, float], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def shared_rate_limiter(
    base_url: str, organization: str, rate: float, per: float = 1.0
) -> RateLimiter:
    """The process-wide limiter for one organization on one Management API host.

    Every client object talking to the same organization shares it, so two clients (or two
    threads, or a sync and an async client) together stay under the organization's limit.
    """
    key = (base_url.rstrip("/"), organization, float(rate), float(per))
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None:
            limiter = _LIMITERS[key] = RateLimiter(rate, per)
        return limiter


# ---------------------------------------------------------------------------------------------
# Exchanges: what observers (the debugger, logs) see of each attempt
# ---------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Exchange:
    """One request/response attempt, with credentials already redacted.

    ``status`` is ``None`` when no answer came (``error`` then says why). Bodies are text,
    truncated to the client's ``max_body_bytes``; a cut body ends with ``... [N more bytes]``.

    Example::

        def log_exchange(exchange: Exchange) -> None:
            print(exchange.method, exchange.url, exchange.status, f"{exchange.duration:.3f}s")

        client = PersonalizeClient(project_uid, on_exchange=log_exchange)
    """

    api: str
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str | None
    status: int | None
    response_headers: dict[str, str]
    response_body: str | None
    started_at: float
    duration: float
    attempt: int
    user_uid: str | None = None
    error: str | None = None
    will_retry: bool = False

    @property
    def ok(self) -> bool:
        """Whether the API answered with a 2xx status."""
        return self.status is not None and 200 <= self.status < 300

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of this exchange."""
        return attrs.asdict(self)


ExchangeHook = Callable[[Exchange], None]


def _body_text(content: bytes | None, limit: int) -> str | None:
    if not content:
        return None
    cut = content[:limit]
    text = cut.decode("utf-8", errors="replace")
    text = redact_body(text)
    if len(content) > limit:
        text += f"... [{len(content) - limit} more bytes]"
    return text


def make_exchange(
    *,
    api: str,
    request: httpx.Request,
    response: httpx.Response | None,
    started_at: float,
    duration: float,
    attempt: int,
    error: BaseException | None,
    will_retry: bool,
    max_body_bytes: int,
    secrets: Iterable[str | None] = (),
) -> Exchange:
    """Build the redacted record of one attempt (called only when someone observes).

    ``secrets``: values to mask wherever they appear besides the known credential shapes (an
    OAuth authorization code, say)."""
    masks = [s for s in secrets if s]
    try:
        request_content: bytes | None = request.content
    except httpx.RequestNotRead:
        request_content = None
    exchange = Exchange(
        api=api,
        method=request.method,
        url=str(request.url),
        request_headers=redact_headers(request.headers),
        request_body=_body_text(request_content, max_body_bytes),
        status=response.status_code if response is not None else None,
        response_headers=redact_headers(response.headers) if response is not None else {},
        response_body=_body_text(response.content, max_body_bytes)
        if response is not None
        else None,
        started_at=started_at,
        duration=duration,
        attempt=attempt,
        user_uid=request.headers.get("x-cs-personalize-user-uid"),
        error=describe_exception(error, request) if error is not None else None,
        will_retry=will_retry,
    )
    if masks:
        exchange = attrs.evolve(
            exchange,
            request_body=_masked(exchange.request_body, masks),
            response_body=_masked(exchange.response_body, masks),
            error=_masked(exchange.error, masks),
        )
    return exchange


def encoded_forms(value: str) -> set[str]:
    """``value`` as a server may echo it: as it is, URL-encoded, or inside a JSON string as any
    encoder writes it (non-ASCII escaped or not, ``/`` escaped or not)."""
    forms = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
    for ensure_ascii in (True, False):
        escaped = json.dumps(value, ensure_ascii=ensure_ascii)[1:-1]
        forms |= {escaped, escaped.replace("/", "\\/")}
    return forms


def _masked(text: str | None, secrets: Iterable[str]) -> str | None:
    if text is None:
        return None
    # Longest first, so a secret inside another form of itself is masked whole.
    forms = sorted({form for secret in secrets for form in encoded_forms(secret)}, key=len)
    for form in reversed(forms):
        text = text.replace(form, REDACTED)
    return text


def _secret_values(request: httpx.Request | None) -> list[str]:
    if request is None:
        return []
    values = []
    for name, value in request.headers.items():
        if name.lower() in SECRET_HEADERS and value:
            values.append(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.lower() in ("bearer", "basic", "token"):
                values.append(token)
    # Longest first, so a token inside "Bearer <token>" is masked whole either way.
    return sorted((v for v in values if len(v) >= 6), key=len, reverse=True)


def scrub(
    text: str, request: httpx.Request | None = None, secrets: Iterable[str | None] = ()
) -> str:
    """``text`` with credentials masked as ``[REDACTED]``: JSON, form, header-line and
    dict-repr shapes, any credential header value of ``request`` wherever it appears (an error
    that echoes headers), and each of ``secrets`` (webhook keys, passwords, codes...). The one
    redaction helper of the package.

    Example::

        scrub('{"password": "hunter22"}')          # '{"password": "[REDACTED]"}'
        scrub("POST failed: key abc123", secrets=["abc123"])   # '... key [REDACTED]'
    """
    values = _secret_values(request)
    # Strings shorter than 6 characters are left alone: masking every "s" of a message would
    # hide the message, and no real key, token or password is that short.
    values += [v for v in secrets if v and len(v) >= 6]
    for secret in sorted(set(values), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return redact_body(text)


def describe_exception(exc: BaseException, request: httpx.Request | None = None) -> str:
    """A short, secret-free description of a transport failure."""
    name = type(exc).__name__
    text = str(exc)
    return f"{name}: {scrub(text, request)}" if text else name


def sanitized(exc: httpx.HTTPError, request: httpx.Request) -> httpx.HTTPError:
    """A copy of ``exc`` whose message has credentials masked, to chain as the cause of our
    error: a transport or proxy may echo the request headers in its message."""
    text = str(exc)
    clean = scrub(text, request)
    if clean == text:
        return exc
    copy: httpx.HTTPError
    try:
        copy = type(exc)(clean, request=request)  # type: ignore[call-arg]
    except Exception:  # an exception class with another signature
        copy = httpx.TransportError(clean, request=request)
    copy.__traceback__ = exc.__traceback__
    copy.__cause__ = exc.__cause__ or exc.__context__  # keeps connect_failure() working
    return copy


def transport_error(exc: httpx.HTTPError, request: httpx.Request, attempts: int) -> TransportError:
    """Our error for an httpx transport failure (the caller chains it with ``from``)."""
    where = f"{request.method} {request.url.copy_with(query=None)}"
    tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}"
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(
            f"request timed out{tries}: {where} ({type(exc).__name__})",
            request=request,
            attempts=attempts,
        )
    return APIConnectionError(
        f"connection failed{tries}: {where} ({describe_exception(exc, request)})",
        request=request,
        attempts=attempts,
    )


def status_error(response: httpx.Response, attempts: int) -> APIStatusError:
    """The typed error for a non-2xx answer. A redirect names where it points: requests are
    never followed (a PATCH would lose its body, a credential could go to another host)."""
    error = error_from_response(response, attempts=attempts)
    location = response.headers.get("location")
    if 300 <= response.status_code < 400 and location:
        error = error._rebuilt(
            message=f"the server redirects to {location} (HTTP {response.status_code}); "
            "redirects are not followed: point the client's URL (edge_url=, management_url=) "
            "there instead",
            attempts=attempts,
        )
    return error


# ---------------------------------------------------------------------------------------------
# The request pipeline: one retry loop for every request the package sends
# ---------------------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class Attempt:
    """What one attempt gave: an answer (``response``, whatever object the transport returns,
    with its ``status``) or the transport failure ``error``.

    Example: ``Attempt(response, status=response.status_code,
    retry_after=response.headers.get("retry-after"))``
    """

    response: Any = None
    status: int | None = None
    retry_after: str | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """An answer with a 2xx status."""
        return self.error is None and self.status is not None and 200 <= self.status < 300


#: ``observe(number, attempt, started_at, duration, will_retry)``, called after each attempt.
Observer = Callable[[int, Attempt, float, float, bool], None]


def _delay_after(policy: RetryPolicy, number: int, attempt: Attempt) -> float | None:
    if attempt.ok:
        return None
    if attempt.error is not None:
        return policy.next_delay(number, exc=attempt.error)
    if attempt.status is None:
        return None
    return policy.next_delay(number, status_code=attempt.status, retry_after=attempt.retry_after)


def send_with_retries(
    policy: RetryPolicy,
    send: Callable[[int], Attempt],
    *,
    observe: Observer | None = None,
    discard: Callable[[Attempt], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Attempt, int]:
    """Send with ``policy``'s retries (backoff, ``Retry-After``, the connection-failure
    rules); return the last attempt and how many were made. ``send(n)`` makes attempt ``n``
    and never raises for transport failures (it returns ``Attempt(error=...)``); ``observe``
    sees every attempt (hooks, logs), ``discard`` releases an answer that will be retried.

    Example::

        last, attempts = send_with_retries(RetryPolicy(), lambda n: Attempt(...))
    """
    number = 0
    while True:
        number += 1
        started_at, t0 = time.time(), time.perf_counter()
        attempt = send(number)
        delay = _delay_after(policy, number, attempt)
        if observe is not None:
            observe(number, attempt, started_at, time.perf_counter() - t0, delay is not None)
        if delay is None:
            return attempt, number
        if discard is not None and attempt.response is not None:
            discard(attempt)
        if policy.sleep and delay > 0:
            sleep(delay)


async def asend_with_retries(
    policy: RetryPolicy,
    send: Callable[[int], Awaitable[Attempt]],
    *,
    observe: Observer | None = None,
    discard: Callable[[Attempt], Awaitable[None]] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> tuple[Attempt, int]:
    """The asyncio twin of :func:`send_with_retries` (the same decisions, in the same order).

    Example::

        last, attempts = await asend_with_retries(RetryPolicy(), send_once)
    """
    if sleep is None:
        sleep = asyncio.sleep
    number = 0
    while True:
        number += 1
        started_at, t0 = time.time(), time.perf_counter()
        attempt = await send(number)
        delay = _delay_after(policy, number, attempt)
        if observe is not None:
            observe(number, attempt, started_at, time.perf_counter() - t0, delay is not None)
        if delay is None:
            return attempt, number
        if discard is not None and attempt.response is not None:
            await discard(attempt)
        if policy.sleep and delay > 0:
            await sleep(delay)


# ---------------------------------------------------------------------------------------------
# JSON bodies
# ---------------------------------------------------------------------------------------------


def _first_bad_value(obj: Any, path: str = "") -> tuple[str, Any] | None:
    """Locate the first value in ``obj`` that JSON cannot carry (for error messages)."""
    import math

    if obj is None or isinstance(obj, (str, bool, int)):
        return None
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (path or "value", obj)
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if not isinstance(key, str):
                return (f"{path}[{key!r}] (key)", key)
            found = _first_bad_value(value, f"{path}.{key}" if path else key)
            if found is not None:
                return found
        return None
    if isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            found = _first_bad_value(value, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    return (path or "value", obj)


def encode_json(obj: Any) -> bytes:
    """Compact UTF-8 JSON, refusing what JSON cannot carry (NaN, infinity, arbitrary objects)
    with a :class:`ValidationError` that names the offending value."""
    import json

    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode(
            "utf-8"
        )
    except (TypeError, ValueError) as exc:
        found = _first_bad_value(obj)
        if found is None:
            raise ValidationError(
                f"value cannot be encoded as JSON: {exc}; nothing was sent"
            ) from exc
        where, value = found
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise ValidationError(
            f"{where}: {shown} ({type(value).__name__}) is not JSON-serialisable; "
            "convert it to a string, number, boolean, list or object; nothing was sent"
        ) from exc
    except UnicodeEncodeError as exc:  # lone surrogates
        raise ValidationError(
            f"value contains characters that are not valid UTF-8 ({exc.reason}); nothing was sent"
        ) from exc
