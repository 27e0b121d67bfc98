"""What the engine needs from a client, in one place.

- :class:`ClientCalls`: the Management calls of the pre-flight, typed, on either kind of client
  and without blocking the event loop.
- :func:`has_own_http_client` and :func:`async_twin`: what a blocking run of an async client
  needs (a loop of its own, so a twin client for it), through the client's internal interface
  (``_sender_settings()``, ``_async_twin()``; see ``client.py``). Nothing in ``sync/`` reads a
  private attribute of a client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ..client import AsyncPersonalizeClient, PersonalizeClient
from ..models import Attribute, Audience

__all__ = ["AnyClient", "ClientCalls", "async_twin", "has_own_http_client"]

AnyClient = PersonalizeClient | AsyncPersonalizeClient


class ClientCalls:
    """The resource calls the engine makes, on a blocking client (in a worker thread) or an
    async one (awaited)."""

    def __init__(self, client: AnyClient) -> None:
        self.client = client

    async def list_attributes(self) -> list[Attribute]:
        client = self.client
        if isinstance(client, AsyncPersonalizeClient):
            return await client.attributes.list()
        return await asyncio.to_thread(client.attributes.list)

    async def ensure_attributes(self, keys: Sequence[str]) -> list[Attribute]:
        """Create the custom attributes among ``keys`` that do not exist; all attributes."""
        client = self.client
        if isinstance(client, AsyncPersonalizeClient):
            return await client.attributes.ensure(list(keys))
        return await asyncio.to_thread(client.attributes.ensure, list(keys))

    async def list_audiences(self) -> list[Audience]:
        client = self.client
        if isinstance(client, AsyncPersonalizeClient):
            return await client.audiences.list()
        return await asyncio.to_thread(client.audiences.list)


def has_own_http_client(client: AsyncPersonalizeClient) -> bool:
    """Whether the caller gave this client its own ``httpx.AsyncClient`` (which belongs to one
    event loop, so a blocking run cannot use it)."""
    return client._sender_settings().user_http_client


def async_twin(client: AsyncPersonalizeClient, *, max_connections: int) -> AsyncPersonalizeClient:
    """An async client with ``client``'s settings, credentials, transport and observers, for
    the event loop of one blocking run (close it with ``aclose()`` after the run)."""
    return client._async_twin(max_connections=max_connections)
