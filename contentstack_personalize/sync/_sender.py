"""The Edge fan-out behind a small interface: build a ``PATCH /user-attributes`` for one user,
send many concurrently, get one outcome per user. The engine knows nothing else about HTTP, so a
faster sender can replace the default without touching it.

Senders here:

- :class:`HttpxSender`: an ``AsyncPersonalizeClient`` (ours or the caller's), with the client's
  retry policy, timeouts, TLS settings and exchange hooks. The default.
- :class:`ThreadedSender`: a blocking ``PersonalizeClient`` driven from a thread pool, used when
  the caller injected a blocking ``httpx.Client`` or transport the async stack cannot use.
- :class:`~contentstack_personalize.sync._fast.FastEdgeSender`: a lean HTTP/1.1 keep-alive client
  on asyncio, several times faster than httpx per request. :func:`make_sender` picks it whenever
  the client talks to the edge directly: no injected ``http_client`` or transport (the emulator
  transport, mocks, custom proxies) and no proxy (environment variable or operating-system
  setting, the rule httpx uses) that applies to the edge.

Which one a run uses can be forced with ``make_sender(client, concurrency=..., kind=...)`` passed
as ``Sync(..., sender=...)``, or for every sync in the process with the environment variable
``CONTENTSTACK_PERSONALIZE_SENDER=httpx`` (or ``fast``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import urllib.parse
import urllib.request
from typing import Literal

import httpx

from ..client import AsyncPersonalizeClient, PersonalizeClient, SenderSettings
from ..errors import ConfigurationError, PersonalizeError
from ._fast import FastEdgeSender
from ._sending import EdgeSender, SendOutcome

__all__ = [
    "EdgeSender",
    "HttpxSender",
    "SenderKind",
    "SendOutcome",
    "ThreadedSender",
    "make_sender",
]

logger = logging.getLogger("contentstack_personalize.sync")

SenderKind = Literal["auto", "fast", "httpx"]
ENV_SENDER = "CONTENTSTACK_PERSONALIZE_SENDER"


class HttpxSender:
    """The default sender, over an :class:`AsyncPersonalizeClient`.

    ``owns_client=True`` closes the client in :meth:`aclose`.

    Example::

        async with AsyncPersonalizeClient(project_uid) as client:
            sync = Sync(client, match_on="id", mapping={"plan": "plan"},
                        sender=HttpxSender(client))
    """

    def __init__(self, client: AsyncPersonalizeClient, *, owns_client: bool = False) -> None:
        self._client = client
        self._owns = owns_client

    async def send(self, user_uid: str, body: bytes) -> SendOutcome:
        """Send one user's JSON body through the client (its retries included)."""
        try:
            await self._client._send_user_attributes(user_uid, body)
        except PersonalizeError as exc:
            return SendOutcome(False, getattr(exc, "attempts", 1), exc)
        return SendOutcome(True, 1)

    async def aclose(self) -> None:
        """Close the client if this sender owns it."""
        if self._owns:
            await self._client.aclose()


class ThreadedSender:
    """Drives a blocking :class:`PersonalizeClient` from a pool of ``concurrency`` threads.

    Example::

        client = PersonalizeClient(project_uid, http_client=my_httpx_client)
        sender = ThreadedSender(client, concurrency=16)
        Sync(client, match_on="id", mapping={"plan": "plan"}, sender=sender).run(rows)
    """

    def __init__(self, client: PersonalizeClient, *, concurrency: int) -> None:
        self._client = client
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="personalize-sync"
        )

    def _send_blocking(self, user_uid: str, body: bytes) -> SendOutcome:
        try:
            self._client._send_user_attributes(user_uid, body)
        except PersonalizeError as exc:
            return SendOutcome(False, getattr(exc, "attempts", 1), exc)
        return SendOutcome(True, 1)

    async def send(self, user_uid: str, body: bytes) -> SendOutcome:
        """Send one user's JSON body on a pool thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._send_blocking, user_uid, body)

    async def aclose(self) -> None:
        """Shut the thread pool down (the client stays open: it is the caller's)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def proxy_for(url: str) -> str | None:
    """The proxy httpx would use for ``url``, or ``None`` when it would connect directly.

    The same rule as httpx (``trust_env=True``, its default): ``urllib.request.getproxies()``,
    which reads ``HTTPS_PROXY``, ``HTTP_PROXY`` and ``ALL_PROXY`` and, when none is set, the
    operating system's proxy settings (macOS System Settings, the Windows registry); hosts
    listed in ``NO_PROXY`` go direct.

    Example::

        proxy_for("https://personalize-edge.contentstack.com")   # None without a proxy
    """
    proxies = urllib.request.getproxies()
    parsed = urllib.parse.urlsplit(url)
    proxy = proxies.get(parsed.scheme) or proxies.get("all")
    if not proxy:
        return None
    bypass = getattr(urllib.request, "proxy_bypass_environment")  # noqa: B009 (untyped in stubs)
    if proxies.get("no") and bypass(parsed.netloc, proxies):
        return None
    return proxy


def fast_sender_problem(client: PersonalizeClient | AsyncPersonalizeClient) -> str | None:
    """Why the fast sender cannot serve ``client`` (then httpx must), or ``None`` when it can.

    Example::

        fast_sender_problem(PersonalizeClient("p", transport=emulator.transport()))
        # -> "the client has its own httpx transport or http_client"
    """
    return _fast_problem(client._sender_settings())


def _fast_problem(settings: SenderSettings) -> str | None:
    if not settings.own_connections:
        return "the client has its own httpx transport or http_client"
    if proxy_for(settings.config.edge_url) is not None:
        return "a proxy (environment or system setting) applies to the edge URL"
    return None


def make_sender(
    client: PersonalizeClient | AsyncPersonalizeClient,
    *,
    concurrency: int,
    kind: SenderKind | None = None,
) -> EdgeSender:
    """The right sender for ``client`` (see the module docs).

    ``kind``: ``"auto"`` (default: the fast sender when the client talks to the edge directly,
    else httpx), ``"fast"`` (refused with :class:`ConfigurationError` when the client has its
    own transport or ``http_client``) or ``"httpx"``. Without ``kind``, the environment variable
    ``CONTENTSTACK_PERSONALIZE_SENDER`` decides, then ``"auto"``.

    Example::

        sender = make_sender(client, concurrency=64, kind="httpx")
        Sync(client, match_on="id", mapping={"plan": "plan"}, sender=sender).run(rows)
    """
    if kind is None:
        kind = os.environ.get(ENV_SENDER, "auto").strip().lower() or "auto"  # type: ignore[assignment]
    if kind not in ("auto", "fast", "httpx"):
        raise ConfigurationError(
            f"unknown sender kind {kind!r} (from the argument or {ENV_SENDER}); "
            "use 'auto', 'fast' or 'httpx'"
        )
    settings = client._sender_settings()
    if kind != "httpx":
        problem = _fast_problem(settings)
        if problem is None:
            return FastEdgeSender(client, concurrency=concurrency)
        if kind == "fast" and not settings.own_connections:
            raise ConfigurationError(
                f"the fast sender cannot be used: {problem}; use kind='httpx' (or 'auto')"
            )
        logger.debug("using the httpx sender: %s", problem)
    return _httpx_sender(client, settings, concurrency=concurrency)


def _httpx_sender(
    client: PersonalizeClient | AsyncPersonalizeClient,
    settings: SenderSettings,
    *,
    concurrency: int,
) -> EdgeSender:
    if isinstance(client, AsyncPersonalizeClient):
        return HttpxSender(client)
    transport = settings.transport
    if settings.user_http_client or (
        transport is not None and not isinstance(transport, httpx.AsyncBaseTransport)
    ):
        return ThreadedSender(client, concurrency=concurrency)
    return HttpxSender(client._async_twin(max_connections=concurrency), owns_client=True)
