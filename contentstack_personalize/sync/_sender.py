"""The Edge fan-out behind a small interface: build a ``PATCH /user-attributes`` for one user,
send many concurrently, get one outcome per user. The engine knows nothing else about HTTP, so a
faster sender can replace the default without touching it.

Senders here:

- :class:`HttpxSender`: an ``AsyncPersonalizeClient`` (ours or the caller's), with the client's
  retry policy, timeouts, TLS settings and exchange hooks. The default.
- :class:`ThreadedSender`: a blocking ``PersonalizeClient`` driven from a thread pool, used when
  the caller injected a blocking ``httpx.Client`` or transport the async stack cannot use.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Protocol, runtime_checkable

import attrs
import httpx

from ..client import AsyncPersonalizeClient, PersonalizeClient
from ..errors import PersonalizeError

__all__ = ["EdgeSender", "HttpxSender", "SendOutcome", "ThreadedSender", "make_sender"]


@attrs.frozen
class SendOutcome:
    """What happened to one user's request: acknowledged (``ok``) or the error that ended it."""

    ok: bool
    attempts: int
    error: PersonalizeError | None = None


@runtime_checkable
class EdgeSender(Protocol):
    """Sends ``PATCH /user-attributes`` requests; one call per user, many in flight."""

    async def send(self, user_uid: str, body: bytes) -> SendOutcome:
        """Send one user's JSON body; never raises for API or transport failures."""
        ...

    async def aclose(self) -> None:
        """Release connections the sender opened."""
        ...


class HttpxSender:
    """The default sender, over an :class:`AsyncPersonalizeClient`."""

    def __init__(self, client: AsyncPersonalizeClient, *, owns_client: bool = False) -> None:
        self._client = client
        self._owns = owns_client

    async def send(self, user_uid: str, body: bytes) -> SendOutcome:
        client = self._client
        request = client._user_attributes_request(client._http, user_uid, body)
        try:
            response = await client._send("edge", request)
        except PersonalizeError as exc:
            return SendOutcome(False, getattr(exc, "attempts", 1), exc)
        await response.aclose()
        return SendOutcome(True, 1)

    async def aclose(self) -> None:
        if self._owns:
            await self._client.aclose()


class ThreadedSender:
    """Drives a blocking :class:`PersonalizeClient` from a pool of ``concurrency`` threads."""

    def __init__(self, client: PersonalizeClient, *, concurrency: int) -> None:
        self._client = client
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="personalize-sync"
        )

    def _send_blocking(self, user_uid: str, body: bytes) -> SendOutcome:
        client = self._client
        request = client._user_attributes_request(client._http, user_uid, body)
        try:
            response = client._send("edge", request)
        except PersonalizeError as exc:
            return SendOutcome(False, getattr(exc, "attempts", 1), exc)
        response.close()
        return SendOutcome(True, 1)

    async def send(self, user_uid: str, body: bytes) -> SendOutcome:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._send_blocking, user_uid, body)

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def make_sender(
    client: PersonalizeClient | AsyncPersonalizeClient, *, concurrency: int
) -> EdgeSender:
    """The right sender for ``client`` (see the module docs)."""
    if isinstance(client, AsyncPersonalizeClient):
        return HttpxSender(client)
    transport = client._transport
    if client._user_http_client or (
        transport is not None and not isinstance(transport, httpx.AsyncBaseTransport)
    ):
        return ThreadedSender(client, concurrency=concurrency)
    async_transport = transport if isinstance(transport, httpx.AsyncBaseTransport) else None
    twin = AsyncPersonalizeClient._twin_of(
        client, transport=async_transport, max_connections=concurrency
    )
    return HttpxSender(twin, owns_client=True)
