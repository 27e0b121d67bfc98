"""OAuth user tokens: the :class:`OAuth` ``httpx.Auth`` that refreshes its access token.

The refresh logic is written once, as a sans-I/O *flow* (:meth:`OAuth._flow`): a generator that
yields :class:`Send` steps (send this request, give me the answer) and :data:`TAKE_LOCK` /
:data:`RELEASE_LOCK` steps around a refresh. httpx calls one of two thin shells,
``sync_auth_flow`` and ``async_auth_flow``; they differ only in how they read a body and which
lock they take: a ``threading.Lock`` for threads, an ``asyncio.Lock`` of the running event loop
(from :class:`LoopLocks`) for tasks. A shell releases a lock it holds however the flow ends
(an error, a cancelled request), so the flow itself needs no ``try``.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import enum
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Final

import attrs
import httpx

from .._http import USER_AGENT
from ..errors import AuthenticationError, ConfigurationError
from ..regions import Region
from ._secrets import (
    LOG,
    base_url,
    clean_secret,
    epoch,
    json_object,
    optional_text,
    redacted_repr,
    safe_error,
)
from ._tokens import OAuthTokens, OnRefresh

__all__ = [
    "RELEASE_LOCK",
    "TAKE_LOCK",
    "Flow",
    "LockStep",
    "LoopLocks",
    "OAuth",
    "Send",
    "Step",
    "oauth_from_tokens",
    "token_endpoint",
]


def token_endpoint(region: Region | str | None, token_url: str | None) -> str:
    """The Developer Hub token endpoint: ``token_url`` if given, else the region's."""
    if token_url is not None:
        return base_url(token_url, "token_url")
    return Region.parse(region).developerhub_url + "/token"


# -- the steps of a flow -----------------------------------------------------------------------


@attrs.frozen
class Send:
    """Send ``request`` and answer the flow with its response (its body read if ``read``)."""

    request: httpx.Request
    read: bool = False


class LockStep(enum.Enum):
    """Take or release the refresh lock (a shell's own kind of lock)."""

    TAKE = "take"
    RELEASE = "release"


TAKE_LOCK: Final = LockStep.TAKE
RELEASE_LOCK: Final = LockStep.RELEASE

Step = Send | LockStep
Flow = Generator[Step, httpx.Response | None, None]
"""A refresh flow: yields steps; a :class:`Send` is answered with the response, a lock step
with ``None``."""


def _response(reply: httpx.Response | None) -> httpx.Response:
    if reply is None:
        raise TypeError("a Send step must be answered with the response")
    return reply


class LoopLocks:
    """One ``asyncio.Lock`` per running event loop.

    An ``asyncio.Lock`` belongs to one event loop, and one OAuth object may outlive many loops
    (each blocking ``run()`` starts one). Loops are held weakly; a loop type that cannot be
    weakly referenced is held strongly until it is closed.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._weak: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._strong: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}

    def get(self) -> asyncio.Lock:
        """The lock of the running event loop (made on first use)."""
        loop = asyncio.get_running_loop()
        with self._guard:
            try:
                lock = self._weak.get(loop)
                if lock is None:
                    lock = self._weak[loop] = asyncio.Lock()
                return lock
            except TypeError:  # a loop type that cannot be weakly referenced
                entry = self._strong.get(id(loop))
                if entry is None or entry[0] is not loop:
                    self._strong = {k: v for k, v in self._strong.items() if not v[0].is_closed()}
                    entry = self._strong[id(loop)] = (loop, asyncio.Lock())
                return entry[1]


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
            clean_secret(access_token, "OAuth access_token")
            if access_token is not None and str(access_token).strip()
            else None
        )
        refresh = (
            clean_secret(refresh_token, "OAuth refresh_token")
            if refresh_token is not None and str(refresh_token).strip()
            else None
        )
        if access is None and refresh is None:
            raise ConfigurationError("OAuth needs an access_token (or a refresh_token to get one)")
        self._client_id = optional_text(client_id, "client_id")
        self._app_id = optional_text(app_id, "app_id")
        if refresh is not None and (self._client_id is None or self._app_id is None):
            raise ConfigurationError(
                "OAuth refresh needs client_id and app_id along with the refresh_token"
            )
        self._client_secret = (
            clean_secret(client_secret, "OAuth client_secret")
            if client_secret is not None
            else None
        )
        if refresh_margin < 0:
            raise ConfigurationError("refresh_margin must be >= 0 seconds")
        self._token_url = token_endpoint(region, token_url)
        self._access_token = access
        self._refresh_token = refresh
        self._expires_at = epoch(expires_at)
        self._organization_uid = optional_text(organization_uid, "organization_uid")
        self._user_uid: str | None = None
        self._on_refresh = on_refresh
        self._refresh_margin = float(refresh_margin)
        self._clock = clock
        # Bumped on every successful refresh; a request remembers the generation it was sent
        # with, so a waiter can tell that someone else already refreshed.
        self._generation = 0
        self._state_lock = threading.Lock()  # guards the fields above, never held across I/O
        self._thread_lock = threading.Lock()  # one sync refresh at a time
        self._loop_locks = LoopLocks()  # one async refresh at a time, per event loop

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
                f"OAuth(access_token={redacted_repr(self._access_token)}, "
                f"refresh_token={redacted_repr(self._refresh_token)}, "
                f"client_id={self._client_id!r}, app_id={self._app_id!r}, "
                f"client_secret={redacted_repr(self._client_secret)}, "
                f"expires_at={self._expires_at!r}, "
                f"organization_uid={self._organization_uid!r}, token_url={self._token_url!r})"
            )

    # -- pure pieces the flow is made of -------------------------------------------------------

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
            headers={"accept": "application/json", "user-agent": USER_AGENT},
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
            raise safe_error(response, secret_values=self._secret_values(), as_auth_error=True)
        data = json_object(response)
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
        LOG.info(
            "OAuth access token refreshed (organization %s, expires in %s s)",
            snapshot.organization_uid,
            None if snapshot.expires_at is None else round(snapshot.expires_at - started),
        )
        if self._on_refresh is not None:
            try:
                self._on_refresh(snapshot)
            except Exception:
                LOG.exception("the OAuth on_refresh callback failed; the new tokens are kept")

    # -- the flow: the one refresh logic -----------------------------------------------------

    def _flow(self, request: httpx.Request) -> Flow:
        """Refresh if due, send with the token, and refresh and replay once on a 401.

        The refresh happens under the lock, and only if nobody refreshed since this request
        looked (the generation it saw): however many requests wait, one refresh is sent.
        """
        if self._needs_refresh():
            seen = self._current_generation()
            yield TAKE_LOCK
            if self._current_generation() == seen and self._needs_refresh():
                yield from self._refresh(seen)
            yield RELEASE_LOCK
        sent_with = self._apply(request)
        response = _response((yield Send(request)))
        if response.status_code != 401 or not self._can_refresh():
            return
        yield TAKE_LOCK
        if self._current_generation() == sent_with:
            yield from self._refresh(sent_with)
        yield RELEASE_LOCK
        self._apply(request)
        yield Send(request)

    def _refresh(self, seen: int) -> Flow:
        started = self._clock()
        response = _response((yield Send(self._refresh_request(), read=True)))
        self._finish_refresh(response, started, seen)

    # -- the shells httpx calls ----------------------------------------------------------------

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Only put the current token on the request (httpx calls the sync/async flows)."""
        self._apply(request)
        yield request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Refresh if due, send with the token, and refresh and replay once on a 401 (threads)."""
        request.read()
        flow = self._flow(request)
        held = False
        try:
            step = next(flow)
            while True:
                reply: httpx.Response | None = None
                if isinstance(step, Send):
                    reply = yield step.request
                    if step.read:
                        reply.read()
                elif step is TAKE_LOCK:
                    self._thread_lock.acquire()
                    held = True
                elif held:
                    held = False
                    self._thread_lock.release()
                step = flow.send(reply)
        except StopIteration:
            return
        finally:
            if held:
                self._thread_lock.release()
            flow.close()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Async twin of :meth:`sync_auth_flow` (the same flow; one lock per event loop)."""
        await request.aread()
        flow = self._flow(request)
        held: asyncio.Lock | None = None
        try:
            step = next(flow)
            while True:
                reply: httpx.Response | None = None
                if isinstance(step, Send):
                    reply = yield step.request
                    if step.read:
                        await reply.aread()
                elif step is TAKE_LOCK:
                    lock = self._loop_locks.get()
                    await lock.acquire()
                    held = lock
                elif held is not None:
                    lock, held = held, None
                    lock.release()
                step = flow.send(reply)
        except StopIteration:
            return
        finally:
            if held is not None:
                held.release()
            flow.close()


def oauth_from_tokens(
    tokens: OAuthTokens,
    *,
    client_id: str,
    app_id: str,
    client_secret: str | None,
    token_url: str,
    on_refresh: OnRefresh | None,
) -> OAuth:
    """An :class:`OAuth` holding tokens the token endpoint just issued (``user_uid`` too)."""
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
