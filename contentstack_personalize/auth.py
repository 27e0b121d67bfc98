"""Authentication for the Personalize Management API: authtokens, OAuth, login and PKCE.

This module owns every credential the library handles: the ``httpx.Auth`` classes that put them
on requests (:class:`AuthToken`, :class:`OAuth`), the refusal of management tokens
(:class:`ManagementToken`), the CMA login/logout calls that mint authtokens, the OAuth
authorization-code helpers (:class:`PKCE`, :func:`authorization_url`, :func:`exchange_code`) and
the resolution of credentials from environment variables (:func:`auth_from_env`).

The Edge API needs no authentication; nothing here is used for it.

Secrets (authtokens, access and refresh tokens, client secrets, PKCE verifiers, passwords) never
appear in a ``repr``, a ``str``, a log record or an exception message.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as _dt
import hashlib
import json
import logging
import os
import secrets
import threading
import time
import urllib.parse
import weakref
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Mapping
from typing import Any

import attrs
import httpx

from ._http import (
    AUTH_RETRY,
    REDACTED,
    USER_AGENT,
    Attempt,
    ExchangeHook,
    Observer,
    RetryPolicy,
    asend_with_retries,
    describe_exception,
    make_exchange,
    scrub,
    send_with_retries,
)
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    PersonalizeError,
    RateLimitError,
    ServerError,
    error_from_response,
)
from .regions import Region

__all__ = [
    "PKCE",
    "AuthToken",
    "ManagementToken",
    "OAuth",
    "OAuthTokens",
    "aexchange_code",
    "alogin",
    "alogout",
    "auth_from_env",
    "authorization_url",
    "exchange_code",
    "login",
    "logout",
]

_log = logging.getLogger("contentstack_personalize.auth")

_REDACTED = REDACTED
_USER_AGENT = USER_AGENT
DEFAULT_SCOPE: tuple[str, ...] = ("personalize:manage", "personalize:read")

_MANAGEMENT_TOKEN_MESSAGE = (
    "Contentstack Personalize does not accept management tokens. Authenticate with a user "
    "authtoken (AuthToken(...), or login(email, password)) or with an OAuth user token "
    "(OAuth(...), exchange_code(...))."
)


# --------------------------------------------------------------------------------------------
# Small pure helpers
# --------------------------------------------------------------------------------------------


def _clean_secret(value: object, what: str) -> str:
    """Strip a credential and check it can travel in a header, never echoing it."""
    if not isinstance(value, str):
        raise ConfigurationError(f"{what} must be a string, not {type(value).__name__}")
    cleaned = value.strip()
    if not cleaned:
        raise ConfigurationError(
            f"{what} is empty; pass the credential itself (check the variable or environment "
            "variable it was read from)"
        )
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in cleaned):
        raise ConfigurationError(
            f"{what} contains control characters and cannot be sent; remove any line break or "
            "tab copied along with it"
        )
    return cleaned


def _optional_text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{what} must be a string, not {type(value).__name__}")
    cleaned = value.strip()
    if not cleaned:
        return None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in cleaned):
        raise ConfigurationError(f"{what} contains control characters and cannot be sent")
    return cleaned


def _base_url(value: str, what: str) -> str:
    text = value.strip().rstrip("/")
    if not (text.startswith("http://") or text.startswith("https://")):
        raise ConfigurationError(f"{what} must start with http:// or https://, got {value!r}")
    return text


def _epoch(value: float | _dt.datetime | None, what: str = "expires_at") -> float | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ConfigurationError(f"{what} must be timezone-aware (e.g. datetime.UTC)")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{what} must be epoch seconds or an aware datetime")
    return float(value)


def _redact_bytes(content: bytes, secret_values: Iterable[str | None]) -> bytes:
    forms = [f for v in secret_values if v for f in (v, json.dumps(v)[1:-1])]
    if not content or not forms:
        return content
    return scrub(content.decode("utf-8", errors="replace"), secrets=forms).encode("utf-8")


def _safe_error(
    response: httpx.Response,
    *,
    secret_values: Iterable[str | None],
    as_auth_error: bool = False,
) -> APIStatusError:
    """The typed error for a failed credential call, carrying no secret.

    The request the error keeps is a bare copy (method and URL): the original carried a password,
    a refresh token or a client secret in its body. Any secret the server echoed back is blanked
    out of the body before it is parsed into the message.
    """
    try:
        original_request: httpx.Request | None = response.request
    except RuntimeError:
        original_request = None
    bare_request = (
        httpx.Request(original_request.method, original_request.url)
        if original_request is not None
        else None
    )
    extensions = {
        k: v for k, v in response.extensions.items() if k in ("http_version", "reason_phrase")
    }
    clean = httpx.Response(
        response.status_code,
        headers=response.headers,
        content=_redact_bytes(response.content, secret_values),
        request=bare_request,
        extensions=extensions,
    )
    error = error_from_response(clean)
    # A refused refresh or code exchange means "authenticate again", whatever status the token
    # endpoint chose (400 invalid_grant is usual). Rate limits and 5xx stay what they are:
    # those are transient and a retry may succeed.
    if as_auth_error and not isinstance(error, (AuthenticationError, RateLimitError, ServerError)):
        error = AuthenticationError(
            error.message,
            status_code=error.status_code,
            code=error.code,
            field_errors=error.field_errors,
            request_id=error.request_id,
            request=error.request,
            response=error.response,
            body=error.body,
            attempts=error.attempts,
        )
    return error


def _transport_error(exc: BaseException, what: str, attempts: int = 1) -> PersonalizeError:
    # The original request is not attached: it may carry a password or a token in its body.
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(
            f"{what} timed out{tries} ({type(exc).__name__}); try again, or pass a larger timeout=",
            attempts=attempts,
        )
    return APIConnectionError(
        f"{what} failed{tries}: no answer ({describe_exception(exc)}); check the network, any "
        "proxy and the region",
        attempts=attempts,
    )


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = json.loads(response.content)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


# --------------------------------------------------------------------------------------------
# AuthToken and ManagementToken
# --------------------------------------------------------------------------------------------


class AuthToken(httpx.Auth):
    """A Contentstack user authtoken, sent as the ``authtoken`` header.

    Get one with :func:`login` (or copy it from an existing CMA session). The token never shows
    in ``repr`` or ``str``; read it with :attr:`token` when you must store it.

    ``organization_uid`` is sent as the ``organization_uid`` header when given: the Management
    API needs it on organization calls (``/projects``). A request that already carries that
    header keeps its own value.

    Example::

        client = PersonalizeClient(project_uid="...", auth=AuthToken("blt..."))
    """

    def __init__(self, token: str, *, organization_uid: str | None = None) -> None:
        self._token = _clean_secret(token, "authtoken")
        self._organization_uid = _optional_text(organization_uid, "organization_uid")

    @property
    def token(self) -> str:
        """The authtoken itself (a secret: do not log it)."""
        return self._token

    @property
    def organization_uid(self) -> str | None:
        """The organization UID sent with each request, if known."""
        return self._organization_uid

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Put the ``authtoken`` (and ``organization_uid``) headers on the request."""
        request.headers["authtoken"] = self._token
        if self._organization_uid is not None:
            request.headers.setdefault("organization_uid", self._organization_uid)
        yield request

    def __repr__(self) -> str:
        return f"AuthToken(token={_REDACTED!r}, organization_uid={self._organization_uid!r})"


class ManagementToken(httpx.Auth):
    """Refused on purpose: Contentstack Personalize does not accept stack management tokens.

    Constructing it raises :class:`~contentstack_personalize.errors.ConfigurationError` that
    says what to use instead: :class:`AuthToken` (see :func:`login`) or :class:`OAuth`. It
    exists so that the mistake fails at once, with a useful message, instead of as a 401 later.

    Example::

        ManagementToken("cs...")            # raises ConfigurationError: use AuthToken or OAuth
        auth = login(email, password)       # do this instead
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise ConfigurationError(_MANAGEMENT_TOKEN_MESSAGE)


# --------------------------------------------------------------------------------------------
# OAuth
# --------------------------------------------------------------------------------------------


def _redacted_repr(value: object) -> str:
    return "None" if value is None else repr(_REDACTED)


@attrs.frozen(kw_only=True)
class OAuthTokens:
    """A set of OAuth tokens as the Developer Hub token endpoint issued them.

    Handed to ``on_refresh`` callbacks so that callers can persist the (rotated) refresh token.
    ``expires_at`` is in epoch seconds, ``None`` when the server gave no ``expires_in``. The
    tokens are hidden from ``repr``.

    Example::

        def save_tokens(tokens: OAuthTokens) -> None:
            vault.store(tokens.access_token, tokens.refresh_token, tokens.expires_at)

        auth = OAuth(access_token=..., refresh_token=..., client_id=..., app_id=...,
                     on_refresh=save_tokens)
    """

    access_token: str = attrs.field(repr=_redacted_repr)
    refresh_token: str | None = attrs.field(default=None, repr=_redacted_repr)
    expires_at: float | None = None
    organization_uid: str | None = None
    user_uid: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any], *, now: float) -> OAuthTokens:
        """Build from a token endpoint answer; ``now`` is when the request was sent."""
        access = data.get("access_token")
        if not isinstance(access, str) or not access.strip():
            raise ValueError("the token endpoint answered without an access_token")
        refresh = data.get("refresh_token")
        expires_in = data.get("expires_in")
        expires_at: float | None = None
        if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
            expires_at = now + float(expires_in)
        elif isinstance(expires_in, str):
            try:
                expires_at = now + float(expires_in)
            except ValueError:
                expires_at = None
        org = data.get("organization_uid")
        user = data.get("user_uid")
        return cls(
            access_token=access.strip(),
            refresh_token=refresh.strip() if isinstance(refresh, str) and refresh.strip() else None,
            expires_at=expires_at,
            organization_uid=org if isinstance(org, str) and org else None,
            user_uid=user if isinstance(user, str) and user else None,
        )


OnRefresh = Callable[[OAuthTokens], None]


class OAuth(httpx.Auth):
    """An OAuth user access token from a Developer Hub app, refreshed when it expires.

    Sends ``authorization: Bearer <access token>`` and, when known, ``organization_uid``.

    Refreshing, when a refresh token, ``client_id`` and ``app_id`` are known:

    - *proactively*, before a request, once ``clock() >= expires_at - refresh_margin``;
    - *reactively*, once, when a request is answered 401: the token is refreshed and the request
      replayed once; a second 401 is returned to the caller as it is.

    The refresh request is sent through the same httpx client (and so its transport, proxies and
    mocks) as the request that needed it. However many requests run at once, in threads or in
    asyncio tasks, one expired token causes one refresh: the others wait for it and use the new
    token. (Within one event loop or one family of threads; a sync thread and an event loop
    refreshing at the very same moment may both refresh. If the server rejects the second one
    because the first rotated the refresh token, the loser silently uses the winner's token.)

    A refused refresh raises :class:`~contentstack_personalize.errors.AuthenticationError`
    (a 429 or 5xx from the token endpoint raises ``RateLimitError`` / ``ServerError`` instead,
    being transient). ``on_refresh(tokens)`` is called with the new :class:`OAuthTokens` after
    each refresh, for instance to persist the rotated refresh token; an exception it raises is
    logged and does not fail the request. :attr:`tokens` gives the current tokens at any time.

    Example::

        auth = OAuth(
            access_token=saved.access_token,
            refresh_token=saved.refresh_token,
            expires_at=saved.expires_at,
            client_id="...", app_id="...",
            on_refresh=save_tokens,
        )
    """

    requires_request_body = True  # buffered, so that a request answered 401 can be replayed

    def __init__(
        self,
        *,
        access_token: str | None,
        refresh_token: str | None = None,
        client_id: str | None = None,
        app_id: str | None = None,
        client_secret: str | None = None,
        expires_at: float | _dt.datetime | None = None,
        organization_uid: str | None = None,
        region: Region | str | None = None,
        token_url: str | None = None,
        on_refresh: OnRefresh | None = None,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        access = (
            _clean_secret(access_token, "OAuth access_token")
            if access_token is not None and str(access_token).strip()
            else None
        )
        refresh = (
            _clean_secret(refresh_token, "OAuth refresh_token")
            if refresh_token is not None and str(refresh_token).strip()
            else None
        )
        if access is None and refresh is None:
            raise ConfigurationError("OAuth needs an access_token (or a refresh_token to get one)")
        self._client_id = _optional_text(client_id, "client_id")
        self._app_id = _optional_text(app_id, "app_id")
        if refresh is not None and (self._client_id is None or self._app_id is None):
            raise ConfigurationError(
                "OAuth refresh needs client_id and app_id along with the refresh_token"
            )
        self._client_secret = (
            _clean_secret(client_secret, "OAuth client_secret")
            if client_secret is not None
            else None
        )
        if refresh_margin < 0:
            raise ConfigurationError("refresh_margin must be >= 0 seconds")
        if token_url is not None:
            self._token_url = _base_url(token_url, "token_url")
        else:
            self._token_url = Region.parse(region).developerhub_url + "/token"
        self._access_token = access
        self._refresh_token = refresh
        self._expires_at = _epoch(expires_at)
        self._organization_uid = _optional_text(organization_uid, "organization_uid")
        self._user_uid: str | None = None
        self._on_refresh = on_refresh
        self._refresh_margin = float(refresh_margin)
        self._clock = clock
        # Bumped on every successful refresh; a request remembers the generation it was sent
        # with, so a waiter can tell that someone else already refreshed.
        self._generation = 0
        self._state_lock = threading.Lock()  # guards the fields above, never held across I/O
        self._thread_lock = threading.Lock()  # one sync refresh at a time
        self._loop_locks_guard = threading.Lock()
        # An asyncio.Lock belongs to one event loop, and one OAuth object may outlive many
        # loops (each blocking run() starts one): keep one lock per running loop.
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._strong_loop_locks: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}

    # -- public state ------------------------------------------------------------------------

    @property
    def access_token(self) -> str | None:
        """The current access token (a secret: do not log it)."""
        with self._state_lock:
            return self._access_token

    @property
    def organization_uid(self) -> str | None:
        """The organization UID, as given or as the token endpoint last reported it."""
        with self._state_lock:
            return self._organization_uid

    @property
    def expires_at(self) -> float | None:
        """When the access token expires, in epoch seconds (``None`` if unknown)."""
        with self._state_lock:
            return self._expires_at

    @property
    def tokens(self) -> OAuthTokens | None:
        """The current tokens, for persisting; ``None`` before the first access token."""
        with self._state_lock:
            if self._access_token is None:
                return None
            return OAuthTokens(
                access_token=self._access_token,
                refresh_token=self._refresh_token,
                expires_at=self._expires_at,
                organization_uid=self._organization_uid,
                user_uid=self._user_uid,
            )

    def __repr__(self) -> str:
        with self._state_lock:
            return (
                f"OAuth(access_token={_redacted_repr(self._access_token)}, "
                f"refresh_token={_redacted_repr(self._refresh_token)}, "
                f"client_id={self._client_id!r}, app_id={self._app_id!r}, "
                f"client_secret={_redacted_repr(self._client_secret)}, "
                f"expires_at={self._expires_at!r}, "
                f"organization_uid={self._organization_uid!r}, token_url={self._token_url!r})"
            )

    # -- pure pieces shared by the sync and async flows ----------------------------------------

    def _can_refresh(self) -> bool:
        return self._refresh_token is not None

    def _needs_refresh(self) -> bool:
        with self._state_lock:
            if self._refresh_token is None:
                return False
            if self._access_token is None:
                return True
            if self._expires_at is None:
                return False
            return self._clock() >= self._expires_at - self._refresh_margin

    def _current_generation(self) -> int:
        with self._state_lock:
            return self._generation

    def _apply(self, request: httpx.Request) -> int:
        """Put the current token on ``request``; return the generation it belongs to."""
        with self._state_lock:
            token, org, generation = self._access_token, self._organization_uid, self._generation
        if token is not None:
            request.headers["authorization"] = f"Bearer {token}"
        if org is not None:
            request.headers.setdefault("organization_uid", org)
        return generation

    def _refresh_request(self) -> httpx.Request:
        with self._state_lock:
            refresh_token = self._refresh_token
        assert refresh_token is not None and self._client_id and self._app_id
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self._client_id,
            "app_id": self._app_id,
        }
        if self._client_secret is not None:
            form["client_secret"] = self._client_secret
        return httpx.Request(
            "POST",
            self._token_url,
            data=form,
            headers={"accept": "application/json", "user-agent": _USER_AGENT},
        )

    def _secret_values(self) -> list[str | None]:
        with self._state_lock:
            return [self._access_token, self._refresh_token, self._client_secret]

    def _finish_refresh(self, response: httpx.Response, started: float, seen: int) -> None:
        """Take the token endpoint's answer: update the state or raise (unless stale)."""
        if not response.is_success:
            if self._current_generation() != seen:
                # Someone else refreshed meanwhile (and probably rotated our refresh token).
                return
            raise _safe_error(response, secret_values=self._secret_values(), as_auth_error=True)
        data = _json_object(response)
        try:
            tokens = OAuthTokens.from_api(data or {}, now=started)
        except ValueError as exc:
            raise AuthenticationError(
                f"{exc} — POST {self._token_url}",
                status_code=response.status_code,
                request=httpx.Request("POST", self._token_url),
            ) from None
        with self._state_lock:
            self._access_token = tokens.access_token
            if tokens.refresh_token is not None:
                self._refresh_token = tokens.refresh_token
            self._expires_at = tokens.expires_at
            if tokens.organization_uid is not None:
                self._organization_uid = tokens.organization_uid
            if tokens.user_uid is not None:
                self._user_uid = tokens.user_uid
            self._generation += 1
            snapshot = OAuthTokens(
                access_token=self._access_token,
                refresh_token=self._refresh_token,
                expires_at=self._expires_at,
                organization_uid=self._organization_uid,
                user_uid=self._user_uid,
            )
        _log.info(
            "OAuth access token refreshed (organization %s, expires in %s s)",
            snapshot.organization_uid,
            None if snapshot.expires_at is None else round(snapshot.expires_at - started),
        )
        if self._on_refresh is not None:
            try:
                self._on_refresh(snapshot)
            except Exception:
                _log.exception("the OAuth on_refresh callback failed; the new tokens are kept")

    def _loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._loop_locks_guard:
            try:
                lock = self._loop_locks.get(loop)
                if lock is None:
                    lock = self._loop_locks[loop] = asyncio.Lock()
                return lock
            except TypeError:  # a loop type that cannot be weakly referenced
                entry = self._strong_loop_locks.get(id(loop))
                if entry is None or entry[0] is not loop:
                    self._strong_loop_locks = {
                        k: v for k, v in self._strong_loop_locks.items() if not v[0].is_closed()
                    }
                    entry = self._strong_loop_locks[id(loop)] = (loop, asyncio.Lock())
                return entry[1]

    # -- the flows -----------------------------------------------------------------------------

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Only put the current token on the request (httpx calls the sync/async flows)."""
        self._apply(request)
        yield request

    def _sync_refresh(self, seen: int) -> Generator[httpx.Request, httpx.Response, None]:
        started = self._clock()
        response = yield self._refresh_request()
        response.read()
        self._finish_refresh(response, started, seen)

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Refresh if due, send with the token, and refresh and replay once on a 401."""
        request.read()
        if self._needs_refresh():
            seen = self._current_generation()
            with self._thread_lock:
                if self._current_generation() == seen and self._needs_refresh():
                    yield from self._sync_refresh(seen)
        sent_with = self._apply(request)
        response = yield request
        if response.status_code != 401 or not self._can_refresh():
            return
        with self._thread_lock:
            if self._current_generation() == sent_with:
                yield from self._sync_refresh(sent_with)
        self._apply(request)
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Async twin of :meth:`sync_auth_flow`."""
        await request.aread()
        if self._needs_refresh():
            seen = self._current_generation()
            async with self._loop_lock():
                if self._current_generation() == seen and self._needs_refresh():
                    started = self._clock()
                    token_response = yield self._refresh_request()
                    await token_response.aread()
                    self._finish_refresh(token_response, started, seen)
        sent_with = self._apply(request)
        response = yield request
        if response.status_code != 401 or not self._can_refresh():
            return
        async with self._loop_lock():
            if self._current_generation() == sent_with:
                started = self._clock()
                token_response = yield self._refresh_request()
                await token_response.aread()
                self._finish_refresh(token_response, started, sent_with)
        self._apply(request)
        yield request


# --------------------------------------------------------------------------------------------
# PKCE and the authorization-code grant
# --------------------------------------------------------------------------------------------

_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@attrs.frozen(kw_only=True)
class PKCE:
    """A PKCE pair (RFC 7636): keep ``verifier`` secret, send ``challenge`` in the authorize URL.

    Example::

        pkce = PKCE.generate()
        url = authorization_url(app_uid=..., client_id=..., redirect_uri=...,
                                state=state, code_challenge=pkce.challenge)
        # ... later, with the code from the redirect:
        auth = exchange_code(code=code, client_id=..., app_id=..., redirect_uri=...,
                             code_verifier=pkce.verifier)
    """

    verifier: str = attrs.field(repr=_redacted_repr)
    challenge: str
    method: str = "S256"

    @classmethod
    def generate(cls, length: int = 64) -> PKCE:
        """A fresh random verifier of ``length`` (43 to 128) unreserved characters."""
        if not 43 <= length <= 128:
            raise ConfigurationError("a PKCE verifier is 43 to 128 characters long (RFC 7636)")
        verifier = "".join(secrets.choice(_UNRESERVED) for _ in range(length))
        return cls(verifier=verifier, challenge=_s256(verifier))

    @classmethod
    def from_verifier(cls, verifier: str) -> PKCE:
        """The pair for an existing verifier (checked against RFC 7636's rules)."""
        if not 43 <= len(verifier) <= 128 or any(ch not in _UNRESERVED for ch in verifier):
            raise ConfigurationError(
                "a PKCE verifier is 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_', '~'"
            )
        return cls(verifier=verifier, challenge=_s256(verifier))


def authorization_url(
    *,
    app_uid: str,
    client_id: str,
    redirect_uri: str,
    state: str,
    scope: Iterable[str] | str = DEFAULT_SCOPE,
    code_challenge: str | None = None,
    region: Region | str | None = None,
    app_url: str | None = None,
) -> str:
    """The URL of the Contentstack page where a user authorizes your Developer Hub app.

    ``state`` is required: generate it per attempt (``secrets.token_urlsafe(16)``), keep it, and
    check that the redirect brings it back unchanged. ``scope`` is a sequence of scopes (joined
    with spaces) or one space-separated string. Pass ``code_challenge`` (``PKCE.challenge``) for
    the PKCE flow; the method is always S256. ``app_url`` overrides the region's app host.

    Example::

        authorization_url(app_uid="6400...", client_id="abc", state="xyz",
                          redirect_uri="http://localhost:8184/callback")
        # 'https://app.contentstack.com/#!/apps/6400.../authorize?response_type=code&...'
    """
    for name, value in (("app_uid", app_uid), ("client_id", client_id), ("state", state)):
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"authorization_url needs a non-empty {name}")
    if not isinstance(redirect_uri, str) or not redirect_uri.strip():
        raise ConfigurationError("authorization_url needs a non-empty redirect_uri")
    scopes = scope.split() if isinstance(scope, str) else [s for s in scope if s]
    base = _base_url(app_url, "app_url") if app_url else Region.parse(region).app_url
    params: list[tuple[str, str]] = [
        ("response_type", "code"),
        ("client_id", client_id.strip()),
        ("redirect_uri", redirect_uri.strip()),
        ("scope", " ".join(scopes)),
        ("state", state),
    ]
    if code_challenge is not None:
        if not code_challenge.strip():
            raise ConfigurationError(
                "code_challenge is empty; pass PKCE.generate().challenge, or leave it out"
            )
        params.append(("code_challenge", code_challenge.strip()))
        params.append(("code_challenge_method", "S256"))
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    app = urllib.parse.quote(app_uid.strip(), safe="")
    return f"{base}/#!/apps/{app}/authorize?{query}"


def _exchange_request(
    *,
    code: str,
    client_id: str,
    app_id: str,
    redirect_uri: str,
    client_secret: str | None,
    code_verifier: str | None,
    token_url: str,
) -> httpx.Request:
    if (client_secret is None) == (code_verifier is None):
        raise ConfigurationError(
            "exchange_code needs exactly one of client_secret (confidential apps) or "
            "code_verifier (PKCE)"
        )
    if not isinstance(redirect_uri, str) or not redirect_uri.strip():
        raise ConfigurationError("exchange_code needs the redirect_uri used to authorize")
    form = {
        "grant_type": "authorization_code",
        "code": _clean_secret(code, "authorization code"),
        "redirect_uri": redirect_uri.strip(),
        "client_id": _clean_secret(client_id, "client_id"),
        "app_id": _clean_secret(app_id, "app_id"),
    }
    if client_secret is not None:
        form["client_secret"] = _clean_secret(client_secret, "client_secret")
    if code_verifier is not None:
        form["code_verifier"] = _clean_secret(code_verifier, "code_verifier")
    return httpx.Request(
        "POST",
        token_url,
        data=form,
        headers={"accept": "application/json", "user-agent": _USER_AGENT},
    )


def _oauth_from_exchange(
    response: httpx.Response,
    *,
    started: float,
    client_id: str,
    app_id: str,
    client_secret: str | None,
    code_secrets: list[str | None],
    token_url: str,
    on_refresh: OnRefresh | None,
) -> OAuth:
    if not response.is_success:
        raise _safe_error(response, secret_values=code_secrets, as_auth_error=True)
    try:
        tokens = OAuthTokens.from_api(_json_object(response) or {}, now=started)
    except ValueError as exc:
        raise AuthenticationError(
            f"{exc} — POST {token_url}",
            status_code=response.status_code,
            request=httpx.Request("POST", token_url),
        ) from None
    oauth = OAuth(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        client_id=client_id,
        app_id=app_id,
        client_secret=client_secret,
        expires_at=tokens.expires_at,
        organization_uid=tokens.organization_uid,
        token_url=token_url,
        on_refresh=on_refresh,
    )
    oauth._user_uid = tokens.user_uid
    return oauth


def _token_url(region: Region | str | None, token_url: str | None) -> str:
    if token_url is not None:
        return _base_url(token_url, "token_url")
    return Region.parse(region).developerhub_url + "/token"


def _check_client_args(http_client: object, transport: object) -> None:
    if http_client is not None and transport is not None:
        raise ConfigurationError("pass http_client or transport, not both")


def _auth_observer(
    on_exchange: ExchangeHook | None, request: httpx.Request, secret_values: Iterable[str | None]
) -> Observer | None:
    """Exchange records of a credential call for ``on_exchange`` (a debugger's hook, say), with
    the password, codes and tokens masked."""
    if on_exchange is None:
        return None
    masks = list(secret_values)
    api = "oauth" if request.method == "POST" and request.url.path.endswith("/token") else "cma"

    def observe(
        number: int, attempt: Attempt, started_at: float, duration: float, will_retry: bool
    ) -> None:
        exchange = make_exchange(
            api=api,
            request=request,
            response=attempt.response,
            started_at=started_at,
            duration=duration,
            attempt=number,
            error=attempt.error,
            will_retry=will_retry,
            max_body_bytes=4096,
            secrets=masks,
        )
        try:
            on_exchange(exchange)
        except Exception:
            _log.exception("exchange hook %r failed; ignoring it", on_exchange)

    return observe


def _answer(response: httpx.Response) -> Attempt:
    return Attempt(
        response, status=response.status_code, retry_after=response.headers.get("retry-after")
    )


def _send_sync(
    request: httpx.Request,
    *,
    http_client: httpx.Client | None,
    transport: httpx.BaseTransport | None,
    timeout: float,
    what: str,
    auth: httpx.Auth | None = None,
    retry: RetryPolicy | None = None,
    on_exchange: ExchangeHook | None = None,
    secret_values: Iterable[str | None] = (),
) -> httpx.Response:
    """Send a credential call through the package's one request pipeline (``AUTH_RETRY``
    unless ``retry`` is given, ``on_exchange`` observing)."""
    _check_client_args(http_client, transport)
    client = http_client if http_client is not None else httpx.Client(transport=transport)
    request.extensions["timeout"] = httpx.Timeout(timeout).as_dict()

    def send(number: int) -> Attempt:
        try:
            response = client.send(request, auth=auth)
            response.read()
        except httpx.TransportError as exc:
            return Attempt(error=exc)
        return _answer(response)

    try:
        last, attempts = send_with_retries(
            retry or AUTH_RETRY,
            send,
            observe=_auth_observer(on_exchange, request, secret_values),
            discard=lambda attempt: attempt.response.close(),
        )
    finally:
        if http_client is None:
            client.close()
    if last.error is not None:
        raise _transport_error(last.error, what, attempts) from last.error
    response: httpx.Response = last.response
    return response


async def _send_async(
    request: httpx.Request,
    *,
    http_client: httpx.AsyncClient | None,
    transport: httpx.AsyncBaseTransport | None,
    timeout: float,
    what: str,
    auth: httpx.Auth | None = None,
    retry: RetryPolicy | None = None,
    on_exchange: ExchangeHook | None = None,
    secret_values: Iterable[str | None] = (),
) -> httpx.Response:
    _check_client_args(http_client, transport)
    client = http_client if http_client is not None else httpx.AsyncClient(transport=transport)
    request.extensions["timeout"] = httpx.Timeout(timeout).as_dict()

    async def send(number: int) -> Attempt:
        try:
            response = await client.send(request, auth=auth)
            await response.aread()
        except httpx.TransportError as exc:
            return Attempt(error=exc)
        return _answer(response)

    async def discard(attempt: Attempt) -> None:
        await attempt.response.aclose()

    try:
        last, attempts = await asend_with_retries(
            retry or AUTH_RETRY,
            send,
            observe=_auth_observer(on_exchange, request, secret_values),
            discard=discard,
        )
    finally:
        if http_client is None:
            await client.aclose()
    if last.error is not None:
        raise _transport_error(last.error, what, attempts) from last.error
    response: httpx.Response = last.response
    return response


def exchange_code(
    *,
    code: str,
    client_id: str,
    app_id: str,
    redirect_uri: str,
    client_secret: str | None = None,
    code_verifier: str | None = None,
    region: Region | str | None = None,
    token_url: str | None = None,
    http_client: httpx.Client | None = None,
    transport: httpx.BaseTransport | None = None,
    on_refresh: OnRefresh | None = None,
    timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    on_exchange: ExchangeHook | None = None,
) -> OAuth:
    """Trade the authorization code from the redirect for tokens; return a ready :class:`OAuth`.

    Give exactly one of ``client_secret`` (confidential app) or ``code_verifier`` (PKCE, the
    ``PKCE.verifier`` whose challenge went into :func:`authorization_url`). ``on_refresh`` is
    passed on to the OAuth object (it is not called for these first tokens: persist
    ``oauth.tokens`` yourself). A refused code raises ``AuthenticationError``.

    Example::

        auth = exchange_code(code=code, client_id="abc", app_id="6400...",
                             redirect_uri="http://localhost:8184/callback",
                             code_verifier=pkce.verifier)
        save_tokens(auth.tokens)
        client = PersonalizeClient(project_uid, auth=auth)
    """
    url = _token_url(region, token_url)
    request = _exchange_request(
        code=code,
        client_id=client_id,
        app_id=app_id,
        redirect_uri=redirect_uri,
        client_secret=client_secret,
        code_verifier=code_verifier,
        token_url=url,
    )
    started = time.time()
    response = _send_sync(
        request,
        http_client=http_client,
        transport=transport,
        timeout=timeout,
        what="OAuth code exchange",
        retry=retry,
        on_exchange=on_exchange,
        secret_values=[code, client_secret, code_verifier],
    )
    return _oauth_from_exchange(
        response,
        started=started,
        client_id=client_id,
        app_id=app_id,
        client_secret=client_secret,
        code_secrets=[code, client_secret, code_verifier],
        token_url=url,
        on_refresh=on_refresh,
    )


async def aexchange_code(
    *,
    code: str,
    client_id: str,
    app_id: str,
    redirect_uri: str,
    client_secret: str | None = None,
    code_verifier: str | None = None,
    region: Region | str | None = None,
    token_url: str | None = None,
    http_client: httpx.AsyncClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    on_refresh: OnRefresh | None = None,
    timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    on_exchange: ExchangeHook | None = None,
) -> OAuth:
    """Async twin of :func:`exchange_code`.

    Example::

        auth = await aexchange_code(code=code, client_id="abc", app_id="6400...",
                                    redirect_uri="http://localhost:8184/callback",
                                    client_secret=client_secret)
    """
    url = _token_url(region, token_url)
    request = _exchange_request(
        code=code,
        client_id=client_id,
        app_id=app_id,
        redirect_uri=redirect_uri,
        client_secret=client_secret,
        code_verifier=code_verifier,
        token_url=url,
    )
    started = time.time()
    response = await _send_async(
        request,
        http_client=http_client,
        transport=transport,
        timeout=timeout,
        what="OAuth code exchange",
        retry=retry,
        on_exchange=on_exchange,
        secret_values=[code, client_secret, code_verifier],
    )
    return _oauth_from_exchange(
        response,
        started=started,
        client_id=client_id,
        app_id=app_id,
        client_secret=client_secret,
        code_secrets=[code, client_secret, code_verifier],
        token_url=url,
        on_refresh=on_refresh,
    )


# --------------------------------------------------------------------------------------------
# CMA login / logout
# --------------------------------------------------------------------------------------------


def _cma_base(region: Region | str | None, cma_url: str | None) -> str:
    if cma_url is not None:
        return _base_url(cma_url, "cma_url")
    return Region.parse(region).cma_url


def _login_request(email: str, password: str, tfa_token: str | None, base: str) -> httpx.Request:
    if not isinstance(email, str) or not email.strip():
        raise ConfigurationError("login needs an email")
    if not isinstance(password, str) or not password:
        raise ConfigurationError("login needs a password")
    user: dict[str, str] = {"email": email.strip(), "password": password}
    if tfa_token is not None:
        user["tfa_token"] = _clean_secret(tfa_token, "tfa_token")
    return httpx.Request(
        "POST",
        f"{base}/v3/user-session",
        json={"user": user},
        headers={"accept": "application/json", "user-agent": _USER_AGENT},
    )


def _authtoken_from_login(
    response: httpx.Response,
    *,
    secret_values: list[str | None],
    organization_uid: str | None,
) -> AuthToken:
    if not response.is_success:
        raise _safe_error(response, secret_values=secret_values)
    data = _json_object(response) or {}
    user = data.get("user")
    token = user.get("authtoken") if isinstance(user, dict) else None
    if not isinstance(token, str) or not token.strip():
        # The CMA answers 294 (a 2xx) with no authtoken when a two-factor token is required.
        error = _safe_error(response, secret_values=secret_values)
        raise AuthenticationError(
            f"login gave no authtoken: {error.message}"
            + (" (pass tfa_token=...)" if response.status_code == 294 else ""),
            status_code=response.status_code,
            code=error.code,
            request_id=error.request_id,
            request=error.request,
            response=error.response,
            body=error.body,
        )
    return AuthToken(token, organization_uid=organization_uid)


def login(
    email: str,
    password: str,
    *,
    tfa_token: str | None = None,
    organization_uid: str | None = None,
    region: Region | str | None = None,
    cma_url: str | None = None,
    http_client: httpx.Client | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    on_exchange: ExchangeHook | None = None,
) -> AuthToken:
    """Log in to the Content Management API and return the user's :class:`AuthToken`.

    ``POST {cma}/v3/user-session``. ``tfa_token`` is the two-factor code, when the account has
    2FA. ``organization_uid`` is stored on the returned token (needed on organization calls).
    Wrong credentials raise ``BadRequestError`` (422) with the API's message; network failures
    raise ``APITimeoutError`` / ``APIConnectionError``. No error carries the password.

    At most 20 authtokens per user are valid at once: the 21st login silently expires the
    oldest. Reuse a token (or :func:`logout` when done) rather than logging in on every run.
    SSO users get no authtoken unless they own the organization: use :class:`OAuth` then.

    Example::

        auth = login("me@example.com", password, organization_uid="blt...", region="eu")
        with PersonalizeClient(project_uid, auth=auth, region="eu") as client:
            client.attributes.list()
        logout(auth, region="eu")
    """
    base = _cma_base(region, cma_url)
    request = _login_request(email, password, tfa_token, base)
    response = _send_sync(
        request,
        http_client=http_client,
        transport=transport,
        timeout=timeout,
        what="login",
        retry=retry,
        on_exchange=on_exchange,
        secret_values=[password, tfa_token],
    )
    return _authtoken_from_login(
        response, secret_values=[password, tfa_token], organization_uid=organization_uid
    )


async def alogin(
    email: str,
    password: str,
    *,
    tfa_token: str | None = None,
    organization_uid: str | None = None,
    region: Region | str | None = None,
    cma_url: str | None = None,
    http_client: httpx.AsyncClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    on_exchange: ExchangeHook | None = None,
) -> AuthToken:
    """Async twin of :func:`login` (same 20-authtokens-per-user limit).

    Example::

        auth = await alogin("me@example.com", password, tfa_token="123456")
    """
    base = _cma_base(region, cma_url)
    request = _login_request(email, password, tfa_token, base)
    response = await _send_async(
        request,
        http_client=http_client,
        transport=transport,
        timeout=timeout,
        what="login",
        retry=retry,
        on_exchange=on_exchange,
        secret_values=[password, tfa_token],
    )
    return _authtoken_from_login(
        response, secret_values=[password, tfa_token], organization_uid=organization_uid
    )


def _logout_request(token: AuthToken, base: str) -> httpx.Request:
    if not isinstance(token, AuthToken):
        raise ConfigurationError("logout needs the AuthToken that login() returned")
    return httpx.Request(
        "DELETE",
        f"{base}/v3/user-session",
        headers={"accept": "application/json", "user-agent": _USER_AGENT},
    )


def logout(
    token: AuthToken,
    *,
    region: Region | str | None = None,
    cma_url: str | None = None,
    http_client: httpx.Client | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
) -> None:
    """End the CMA session of ``token`` (``DELETE {cma}/v3/user-session``).

    Frees one of the user's 20 concurrent authtoken slots; the token is invalid afterwards.

    Example::

        auth = login(email, password)
        try:
            run_the_sync(auth)
        finally:
            logout(auth)
    """
    request = _logout_request(token, _cma_base(region, cma_url))
    response = _send_sync(
        request,
        http_client=http_client,
        transport=transport,
        timeout=timeout,
        what="logout",
        auth=token,
    )
    if not response.is_success:
        raise _safe_error(response, secret_values=[token.token])


async def alogout(
    token: AuthToken,
    *,
    region: Region | str | None = None,
    cma_url: str | None = None,
    http_client: httpx.AsyncClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 30.0,
) -> None:
    """Async twin of :func:`logout`.

    Example::

        await alogout(auth)
    """
    request = _logout_request(token, _cma_base(region, cma_url))
    response = await _send_async(
        request,
        http_client=http_client,
        transport=transport,
        timeout=timeout,
        what="logout",
        auth=token,
    )
    if not response.is_success:
        raise _safe_error(response, secret_values=[token.token])


# --------------------------------------------------------------------------------------------
# Environment variables
# --------------------------------------------------------------------------------------------

ENV_AUTHTOKEN = "CONTENTSTACK_AUTHTOKEN"
ENV_MANAGEMENT_TOKEN = "CONTENTSTACK_MANAGEMENT_TOKEN"
ENV_ORGANIZATION_UID = "CONTENTSTACK_ORGANIZATION_UID"
ENV_REGION = "CONTENTSTACK_REGION"
ENV_OAUTH_ACCESS_TOKEN = "CONTENTSTACK_OAUTH_ACCESS_TOKEN"
ENV_OAUTH_REFRESH_TOKEN = "CONTENTSTACK_OAUTH_REFRESH_TOKEN"
ENV_OAUTH_CLIENT_ID = "CONTENTSTACK_OAUTH_CLIENT_ID"
ENV_OAUTH_APP_ID = "CONTENTSTACK_OAUTH_APP_ID"
ENV_OAUTH_CLIENT_SECRET = "CONTENTSTACK_OAUTH_CLIENT_SECRET"
ENV_OAUTH_EXPIRES_AT = "CONTENTSTACK_OAUTH_EXPIRES_AT"


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _parse_expires_at(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"{ENV_OAUTH_EXPIRES_AT} must be epoch seconds or an ISO 8601 time with a zone"
        ) from None
    if when.tzinfo is None:
        raise ConfigurationError(f"{ENV_OAUTH_EXPIRES_AT} needs a time zone (e.g. ...Z)")
    return when.timestamp()


def auth_from_env(environ: Mapping[str, str] | None = None) -> httpx.Auth | None:
    """Build the Management API auth from environment variables, or ``None`` if none is set.

    In order of preference:

    - ``CONTENTSTACK_AUTHTOKEN`` -> :class:`AuthToken`;
    - ``CONTENTSTACK_OAUTH_ACCESS_TOKEN`` (and/or ``CONTENTSTACK_OAUTH_REFRESH_TOKEN``, with
      ``CONTENTSTACK_OAUTH_CLIENT_ID``, ``CONTENTSTACK_OAUTH_APP_ID``, optional
      ``CONTENTSTACK_OAUTH_CLIENT_SECRET`` and ``CONTENTSTACK_OAUTH_EXPIRES_AT``, epoch seconds
      or ISO 8601) -> :class:`OAuth`;
    - ``CONTENTSTACK_MANAGEMENT_TOKEN`` alone -> ``ConfigurationError`` (not accepted).

    ``CONTENTSTACK_ORGANIZATION_UID`` fills ``organization_uid``; ``CONTENTSTACK_REGION`` picks
    the OAuth token endpoint's region. Empty variables count as unset.

    Example::

        auth = auth_from_env({"CONTENTSTACK_AUTHTOKEN": "blt..."})  # AuthToken
        auth_from_env({})                                          # None
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    org = _env(env, ENV_ORGANIZATION_UID)
    authtoken = _env(env, ENV_AUTHTOKEN)
    if authtoken is not None:
        return AuthToken(authtoken, organization_uid=org)
    access = _env(env, ENV_OAUTH_ACCESS_TOKEN)
    refresh = _env(env, ENV_OAUTH_REFRESH_TOKEN)
    if access is not None or refresh is not None:
        expires = _env(env, ENV_OAUTH_EXPIRES_AT)
        return OAuth(
            access_token=access,
            refresh_token=refresh,
            client_id=_env(env, ENV_OAUTH_CLIENT_ID),
            app_id=_env(env, ENV_OAUTH_APP_ID),
            client_secret=_env(env, ENV_OAUTH_CLIENT_SECRET),
            expires_at=_parse_expires_at(expires) if expires is not None else None,
            organization_uid=org,
            region=_env(env, ENV_REGION),
        )
    if _env(env, ENV_MANAGEMENT_TOKEN) is not None:
        raise ConfigurationError(f"{ENV_MANAGEMENT_TOKEN} is set, but {_MANAGEMENT_TOKEN_MESSAGE}")
    return None
